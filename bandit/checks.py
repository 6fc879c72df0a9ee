"""Input validation of the policy contract: hyperparameters, contexts, lambda, feedback and state dicts.

Every check raises one of :mod:`bandit.errors`' classes with a message that names the value and what it must be;
none changes anything, so a policy validates a whole call before it applies any of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from banditroute.bandit.errors import InvalidHyperparameterError, InvalidInputError, StateError


def check_scalar(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    integer: bool = False,
) -> float:
    """Validate a hyperparameter (as OBP's ``check_scalar``); the error names it and the allowed range."""
    ok_type = isinstance(value, int | np.integer) if integer else isinstance(value, int | float | np.number)
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise InvalidHyperparameterError(f"{name} must be {kind}, got {value!r}")
    v = float(value)
    lo = "[" if low_inclusive else "("
    hi = "]" if high_inclusive else ")"
    rng = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if not math.isfinite(v):
        raise InvalidHyperparameterError(f"{name} must be finite, in {rng}; got {value!r}")
    if low is not None and (v < low or (v == low and not low_inclusive)):
        raise InvalidHyperparameterError(f"{name} must be in {rng}, got {value!r}")
    if high is not None and (v > high or (v == high and not high_inclusive)):
        raise InvalidHyperparameterError(f"{name} must be in {rng}, got {value!r}")
    return v


_FLOAT64 = np.dtype(np.float64)


def check_context(x: Any, dim: int, *, batch: bool = False) -> np.ndarray:
    """``x`` as float64 of shape ``(dim,)`` (or ``(n, dim)`` with ``batch``), finite."""
    # the served case, one vector already as wanted: the finite entries counted (a third of asarray + all())
    if not batch and type(x) is np.ndarray and x.dtype is _FLOAT64 and x.shape == (dim,):
        if np.count_nonzero(np.isfinite(x)) == dim:
            return x
        raise InvalidInputError("context has NaN or infinite entries")
    arr = np.asarray(x, dtype=np.float64)
    want = 2 if batch else 1
    if arr.ndim != want or arr.shape[-1] != dim:
        shape = "(n, dim)" if batch else "(dim,)"
        raise InvalidInputError(f"context must have shape {shape} with dim={dim}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidInputError("context has NaN or infinite entries")
    return arr


def _number(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not math.isfinite(float(v)):
        raise InvalidInputError(f"{name} must be a finite number, got {v!r}")
    return float(v)


def check_lam(lam: Any) -> float:
    """The price of a dollar: a finite number >= 0."""
    if type(lam) is float and 0.0 <= lam < math.inf:  # the usual case in one comparison (nan fails it)
        return lam
    if isinstance(lam, bool) or not isinstance(lam, int | float | np.number) or not math.isfinite(lam) or lam < 0:
        raise InvalidInputError(f"lam must be a finite number >= 0, got {lam!r}")
    return float(lam)


def check_max_cost(max_cost: Any) -> float:
    """A cost cap in USD: a finite number > 0."""
    v = _number(max_cost, "max_cost")
    if v <= 0:
        raise InvalidInputError(f"max_cost must be > 0, got {v}")
    return v


def check_feedback(quality: Any, cost: Any, weight: Any) -> tuple[float, float, float]:
    """One observation: quality in [0, 1], cost >= 0, weight > 0, all finite."""
    q, c, w = _number(quality, "quality"), _number(cost, "cost"), _number(weight, "weight")
    if not 0.0 <= q <= 1.0:
        raise InvalidInputError(f"quality must be in [0, 1], got {q}")
    if c < 0:
        raise InvalidInputError(f"cost must be >= 0, got {c}")
    if w <= 0:
        raise InvalidInputError(f"weight must be > 0, got {w}")
    return q, c, w


def check_observations(
    n: int, idx: np.ndarray, quality: Any, cost: Any, weight: Any | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch of ``n`` observations of the arms ``idx: (n,)``: ``quality, cost, weight: (n,)`` as float64."""
    q = np.asarray(quality, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    if idx.shape != (n,) or q.shape != (n,) or c.shape != (n,) or w.shape != (n,):
        raise InvalidInputError(f"models, quality, cost and weight must each have length {n}")
    for name, a in (("quality", q), ("cost", c)):
        if not np.isfinite(a).all() or (a < 0.0).any():
            raise InvalidInputError(f"{name} must be finite and >= 0.0")
    if (q > 1).any():
        raise InvalidInputError("quality must be in [0, 1]")
    if not np.isfinite(w).all() or (w <= 0).any():
        raise InvalidInputError("weight must be finite and > 0")
    return q, c, w


def check_full_information(n: int, k: int, quality: Any, cost: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every model's ``quality, cost: (n, k)``: quality in [0, 1], cost >= 0, all finite."""
    q = np.asarray(quality, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    if q.shape != (n, k) or c.shape != q.shape:
        raise InvalidInputError(f"quality and cost must be (n, k) = ({n}, {k})")
    if not (np.isfinite(q).all() and np.isfinite(c).all()) or (q < 0).any() or (q > 1).any() or (c < 0).any():
        raise InvalidInputError("quality must be in [0, 1] and cost >= 0, all finite")
    return q, c


@dataclass(frozen=True)
class CheckedState:
    """A state dict that fits a policy, ready to install."""

    meta: dict[str, Any]
    models: tuple[str, ...]
    arrays: dict[str, np.ndarray]
    rng: np.random.Generator
    n_updates: int


def _check_array(name: str, value: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    a = np.asarray(value)
    kind_ok = a.dtype.kind in "fiu" if dtype.kind == "f" else np.can_cast(a.dtype, dtype, casting="safe")
    if a.shape != shape or not kind_ok:
        raise StateError(f"state array {name!r} has shape {a.shape} and dtype {a.dtype}, want {shape} of {dtype}")
    if not np.isfinite(a).all():
        raise StateError(f"state array {name!r} has NaN or infinite entries")
    return np.array(a, dtype=dtype)


def check_state(
    state: Mapping[str, Any],
    *,
    name: str,
    dim: int,
    shapes: Callable[[int], dict[str, tuple[int, ...]]],
    dtypes: Mapping[str, str],
) -> CheckedState:
    """Check a policy's ``state_dict()`` whole: its policy name and dim, its models, every array's shape
    (``shapes(k)`` for ``k`` models) and dtype (``dtypes``, float64 when not listed), its generator and counter."""
    try:
        meta, arrays = dict(state["meta"]), dict(state["arrays"])
    except (KeyError, TypeError) as exc:
        raise StateError(f"state must have 'meta' and 'arrays', got {type(state).__name__}") from exc
    if meta.get("policy") != name:
        raise StateError(f"state is of policy {meta.get('policy')!r}, not {name!r}")
    if meta.get("dim") != dim:
        raise StateError(f"state has dim {meta.get('dim')!r}, this policy {dim}")
    models: Sequence[Any] | None = meta.get("models")
    if not isinstance(models, list) or not models or len(set(models)) != len(models):
        raise StateError("state 'models' must be a non-empty list of distinct names")
    want = shapes(len(models))
    if set(arrays) != set(want):
        raise StateError(f"state arrays are {sorted(arrays)}, want {sorted(want)}")
    clean = {k: _check_array(k, arrays[k], s, np.dtype(dtypes.get(k, "float64"))) for k, s in want.items()}
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = meta["rng"]
        n_updates = int(meta["n_updates"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"state has a bad 'rng' or 'n_updates': {exc}") from exc
    return CheckedState(meta, tuple(str(m) for m in models), clean, rng, n_updates)
