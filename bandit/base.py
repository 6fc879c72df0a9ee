"""The policy contract: a small abstract base that every routing policy subclasses.

A policy holds, per model, separate estimates of quality and of cost, and trades them at decision time:
``score = quality_estimate - lam * cost_estimate / cost_scale (+ exploration)``. It returns a distribution
over the candidate models (never zero for a candidate: ``explore_floor`` is mixed in uniformly), samples
the choice with its own seeded generator and reports the choice's probability (its propensity), as Vowpal
Wabbit's ``cb_explore`` does. Policies do no I/O; their state is plain arrays plus JSON scalars.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from banditroute.bandit.errors import InvalidHyperparameterError, InvalidInputError, StateError, UnknownModelError

TIE_TOL = 1e-12


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


@dataclass(frozen=True)
class Decision:
    """One routing decision.

    Attributes:
        model: the chosen model's name.
        index: its column in the policy's ``models``.
        pmf: ``(k,)`` probability of every model (0 for non-candidates); sums to 1.
        propensity: ``pmf[index]``, > 0.
        models: the policy's models, naming ``pmf``'s entries.
        lam: the lambda the decision was made with.
    """

    model: str
    index: int
    pmf: np.ndarray
    propensity: float
    models: tuple[str, ...]
    lam: float

    def pmf_dict(self) -> dict[str, float]:
        """The distribution over the candidates (models with probability > 0)."""
        return {m: float(p) for m, p in zip(self.models, self.pmf, strict=True) if p > 0}


def uniform_pmf(mask: np.ndarray) -> np.ndarray:
    """Uniform over the candidates of each row of ``mask: (n, k)``, as ``(n, k)``."""
    return mask / mask.sum(axis=1, keepdims=True)


def greedy_pmf(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Uniform over the maximisers of ``scores: (n, k)`` among ``mask: (n, k)``, as ``(n, k)``."""
    s = np.where(mask, scores, -np.inf)
    best = s.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):  # inf - inf when the best is +inf (an untried arm under UCB1)
        threshold = best - TIE_TOL * np.maximum(1.0, np.abs(best))
    threshold = np.where(np.isposinf(best), np.inf, threshold)
    top = mask & (s >= threshold)
    return top / top.sum(axis=1, keepdims=True)


def sampled_argmax_pmf(samples: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Empirical distribution of the argmax of ``samples: (m, n, k)`` among ``mask: (n, k)``, as ``(n, k)``."""
    s = np.where(mask[None], samples, -np.inf)
    winners = s.argmax(axis=2)  # (m, n)
    n, k = mask.shape
    counts = np.zeros((n, k))
    np.add.at(counts, (np.broadcast_to(np.arange(n), winners.shape), winners), 1.0)
    return counts / samples.shape[0]


class Policy(ABC):
    """A routing policy over ``models`` with contexts of dimension ``dim``.

    Args:
        models: the model names (arms), in column order.
        dim: length of a context vector ``x: (dim,)``; its last entry is the bias 1.0 (as made by
            :class:`env.features.Featurizer`).
        cost_scale: USD; lambda = 1 prices ``cost_scale`` dollars at one quality unit. > 0.
        explore_floor: share of probability spread uniformly over the candidates, in [0, 1): every candidate's
            propensity is at least ``explore_floor / n_candidates``.
        seed: seed of the policy's one ``np.random.Generator``.

    Subclasses set ``name``, implement ``_pmf``, ``_estimates``, ``_update_arm``, ``_arrays``/``_set_arrays``
    and ``_new_arm``/``_drop_arm``, and list their own hyperparameters in ``_hyper``.
    """

    name: ClassVar[str]
    #: False for policies that need what production cannot know (the oracle).
    servable: ClassVar[bool] = True
    #: False for policies whose decisions ignore the context.
    contextual: ClassVar[bool] = True

    def __init__(
        self,
        models: Sequence[str],
        dim: int,
        *,
        cost_scale: float = 1.0,
        explore_floor: float = 0.01,
        seed: int | None = 0,
    ) -> None:
        models = tuple(str(m) for m in models)
        if len(models) < 1:
            raise InvalidHyperparameterError("models must name at least one model")
        if len(set(models)) != len(models):
            raise InvalidHyperparameterError(f"models must be distinct, got {list(models)}")
        self.dim = int(check_scalar(dim, "dim", low=1, integer=True))
        self.cost_scale = check_scalar(cost_scale, "cost_scale", low=0.0, low_inclusive=False)
        self.explore_floor = check_scalar(explore_floor, "explore_floor", low=0.0, high=1.0, high_inclusive=False)
        if seed is not None:
            check_scalar(seed, "seed", low=0, integer=True)
        self.seed = seed
        self.models: tuple[str, ...] = models
        self._index = {m: j for j, m in enumerate(models)}
        self.rng = np.random.default_rng(seed)
        self.n_updates = 0
        self._hyper: dict[str, Any] = {}

    # ---- introspection ---------------------------------------------------------------------------------
    @property
    def k(self) -> int:
        return len(self.models)

    def hyperparameters(self) -> dict[str, Any]:
        """Every constructor argument but ``models`` and ``dim``, JSON-serialisable."""
        return {
            "cost_scale": self.cost_scale,
            "explore_floor": self.explore_floor,
            "seed": self.seed,
            **self._hyper,
        }

    def index_of(self, model: str) -> int:
        try:
            return self._index[model]
        except KeyError:
            raise UnknownModelError(f"unknown model {model!r}; this policy routes to {list(self.models)}") from None

    # ---- validation ------------------------------------------------------------------------------------
    def _check_x(self, x: Any, *, batch: bool = False) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        want = 2 if batch else 1
        if arr.ndim != want or arr.shape[-1] != self.dim:
            shape = "(n, dim)" if batch else "(dim,)"
            raise InvalidInputError(f"context must have shape {shape} with dim={self.dim}, got {arr.shape}")
        if not np.isfinite(arr).all():
            raise InvalidInputError("context has NaN or infinite entries")
        return arr

    @staticmethod
    def _check_lam(lam: float) -> float:
        if isinstance(lam, bool) or not isinstance(lam, int | float | np.number) or not math.isfinite(lam) or lam < 0:
            raise InvalidInputError(f"lam must be a finite number >= 0, got {lam!r}")
        return float(lam)

    def candidate_mask(self, candidates: Sequence[str] | None) -> np.ndarray:
        """``(k,)`` bool mask of the candidates (all models when None)."""
        if candidates is None:
            return np.ones(self.k, dtype=bool)
        mask = np.zeros(self.k, dtype=bool)
        for m in candidates:
            mask[self.index_of(m)] = True
        if not mask.any():
            raise UnknownModelError("candidates must name at least one model")
        return mask

    @staticmethod
    def _check_feedback(quality: Any, cost: Any, weight: Any) -> tuple[float, float, float]:
        def num(v: Any, name: str) -> float:
            if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not math.isfinite(float(v)):
                raise InvalidInputError(f"{name} must be a finite number, got {v!r}")
            return float(v)

        q, c, w = num(quality, "quality"), num(cost, "cost"), num(weight, "weight")
        if not 0.0 <= q <= 1.0:
            raise InvalidInputError(f"quality must be in [0, 1], got {q}")
        if c < 0:
            raise InvalidInputError(f"cost must be >= 0, got {c}")
        if w <= 0:
            raise InvalidInputError(f"weight must be > 0, got {w}")
        return q, c, w

    # ---- deciding --------------------------------------------------------------------------------------
    @abstractmethod
    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        """The policy's own distribution ``(n, k)`` on contexts ``X: (n, d)``, zero outside ``mask: (n, k)``."""

    @abstractmethod
    def _estimates(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Point estimates of quality and cost ``(n, k)`` each."""

    def estimates(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Estimated quality and cost ``(n, k)`` on contexts ``X: (n, d)`` (no exploration)."""
        return self._estimates(self._check_x(X, batch=True))

    def pmf_batch(self, X: Any, lam: float = 0.0, candidates: Sequence[str] | None = None) -> np.ndarray:
        """The decision distributions ``(n, k)`` on contexts ``X: (n, d)``, exploration floor included.

        Randomised policies (Thompson sampling) draw from the policy's generator, as ``select`` does.
        """
        X = self._check_x(X, batch=True)
        lam = self._check_lam(lam)
        mask = np.broadcast_to(self.candidate_mask(candidates), (X.shape[0], self.k))
        p = self._pmf(X, mask, lam)
        if self.explore_floor > 0:
            p = (1.0 - self.explore_floor) * p + self.explore_floor * uniform_pmf(mask)
        return p

    def select(self, x: Any, candidates: Sequence[str] | None = None, lam: float = 0.0) -> Decision:
        """Choose a model for context ``x: (dim,)`` among ``candidates`` (default all) at price ``lam``."""
        x = self._check_x(x)
        p = self.pmf_batch(x[None, :], lam, candidates)[0]
        j = int(self.rng.choice(self.k, p=p / p.sum()))
        return Decision(self.models[j], j, p, float(p[j]), self.models, float(lam))

    # ---- learning --------------------------------------------------------------------------------------
    @abstractmethod
    def _update_arm(self, X: np.ndarray, j: int, quality: np.ndarray, cost: np.ndarray, weight: np.ndarray) -> None:
        """Apply observations of arm ``j``: ``X: (m, d)``, ``quality, cost, weight: (m,)``."""

    def update(self, x: Any, model: str, quality: float, cost: float, weight: float = 1.0) -> None:
        """Apply one observation: ``model`` answered context ``x`` with ``quality`` at ``cost`` USD."""
        x = self._check_x(x)
        j = self.index_of(model)
        q, c, w = self._check_feedback(quality, cost, weight)
        self._update_arm(x[None, :], j, np.array([q]), np.array([c]), np.array([w]))
        self.n_updates += 1

    def update_batch(
        self,
        X: Any,
        models: Sequence[str] | np.ndarray,
        quality: Any,
        cost: Any,
        weight: Any | None = None,
    ) -> None:
        """Apply many observations at once (validated all first: on an error nothing is applied)."""
        X = self._check_x(X, batch=True)
        n = X.shape[0]
        idx = np.array([self.index_of(m) for m in models], dtype=np.int64)
        q = np.asarray(quality, dtype=np.float64)
        c = np.asarray(cost, dtype=np.float64)
        w = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
        if idx.shape != (n,) or q.shape != (n,) or c.shape != (n,) or w.shape != (n,):
            raise InvalidInputError(f"models, quality, cost and weight must each have length {n}")
        for name, a, lo in (("quality", q, 0.0), ("cost", c, 0.0)):
            if not np.isfinite(a).all() or (a < lo).any():
                raise InvalidInputError(f"{name} must be finite and >= {lo}")
        if (q > 1).any():
            raise InvalidInputError("quality must be in [0, 1]")
        if not np.isfinite(w).all() or (w <= 0).any():
            raise InvalidInputError("weight must be finite and > 0")
        for j in np.unique(idx):
            rows = idx == j
            self._update_arm(X[rows], int(j), q[rows], c[rows], w[rows])
        self.n_updates += n

    def fit_full(self, X: Any, quality: Any, cost: Any) -> None:
        """Warm start from full-information records: every model's ``quality, cost: (n, k)`` on ``X: (n, d)``."""
        X = self._check_x(X, batch=True)
        q = np.asarray(quality, dtype=np.float64)
        c = np.asarray(cost, dtype=np.float64)
        if q.shape != (X.shape[0], self.k) or c.shape != q.shape:
            raise InvalidInputError(f"quality and cost must be (n, k) = ({X.shape[0]}, {self.k})")
        if not (np.isfinite(q).all() and np.isfinite(c).all()) or (q < 0).any() or (q > 1).any() or (c < 0).any():
            raise InvalidInputError("quality must be in [0, 1] and cost >= 0, all finite")
        w = np.ones(X.shape[0])
        for j in range(self.k):
            self._update_arm(X, j, q[:, j], c[:, j], w)
        self.n_updates += X.shape[0] * self.k

    # ---- arms at runtime -------------------------------------------------------------------------------
    @abstractmethod
    def _new_arm(self) -> None:
        """Append the prior state of one new arm to every per-arm array."""

    @abstractmethod
    def _drop_arm(self, j: int) -> None:
        """Delete arm ``j`` from every per-arm array."""

    def add_model(self, model: str) -> None:
        """Add a model at runtime; it starts from the prior (cold start)."""
        if model in self._index:
            raise InvalidInputError(f"model {model!r} is already routed to")
        self._new_arm()
        self.models = (*self.models, str(model))
        self._index = {m: j for j, m in enumerate(self.models)}

    def remove_model(self, model: str) -> None:
        """Stop routing to ``model`` and forget its estimates."""
        j = self.index_of(model)
        if self.k == 1:
            raise InvalidInputError("cannot remove the last model")
        self._drop_arm(j)
        self.models = tuple(m for m in self.models if m != model)
        self._index = {m: i for i, m in enumerate(self.models)}

    # ---- state -----------------------------------------------------------------------------------------
    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """The learned arrays (references, not copies)."""

    @abstractmethod
    def _set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Install arrays already checked against ``_array_shapes``."""

    def _array_shapes(self, k: int) -> dict[str, tuple[int, ...]]:
        return {name: (k, *a.shape[1:]) for name, a in self._arrays().items()}

    def state_dict(self) -> dict[str, Any]:
        """Everything learned, as copies: ``arrays`` (numpy) and ``meta`` (JSON)."""
        return {
            "arrays": {k: v.copy() for k, v in self._arrays().items()},
            "meta": {
                "policy": self.name,
                "models": list(self.models),
                "dim": self.dim,
                "n_updates": self.n_updates,
                "rng": self.rng.bit_generator.state,
                **self._meta_extra(),
            },
        }

    def _meta_extra(self) -> dict[str, Any]:
        """Learned JSON scalars of a subclass (counters), saved in ``meta``."""
        return {}

    def _set_meta_extra(self, meta: Mapping[str, Any]) -> None:
        """Install what ``_meta_extra`` saved; raise ``StateError`` if it is malformed."""
        return None

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Install a state from :meth:`state_dict`; checked whole before anything changes."""
        try:
            meta, arrays = dict(state["meta"]), dict(state["arrays"])
        except (KeyError, TypeError) as exc:
            raise StateError(f"state must have 'meta' and 'arrays', got {type(state).__name__}") from exc
        if meta.get("policy") != self.name:
            raise StateError(f"state is of policy {meta.get('policy')!r}, not {self.name!r}")
        if meta.get("dim") != self.dim:
            raise StateError(f"state has dim {meta.get('dim')!r}, this policy {self.dim}")
        models = meta.get("models")
        if not isinstance(models, list) or not models or len(set(models)) != len(models):
            raise StateError("state 'models' must be a non-empty list of distinct names")
        shapes = self._array_shapes(len(models))
        if set(arrays) != set(shapes):
            raise StateError(f"state arrays are {sorted(arrays)}, want {sorted(shapes)}")
        clean = {}
        for name, want in shapes.items():
            a = np.asarray(arrays[name])
            if a.shape != want or a.dtype.kind not in "fiu":
                raise StateError(f"state array {name!r} has shape {a.shape} and dtype {a.dtype}, want {want}")
            if not np.isfinite(a).all():
                raise StateError(f"state array {name!r} has NaN or infinite entries")
            clean[name] = np.array(a, dtype=np.float64)
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = meta["rng"]
            n_updates = int(meta["n_updates"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"state has a bad 'rng' or 'n_updates': {exc}") from exc
        self._set_meta_extra(meta)
        self.models = tuple(models)
        self._index = {m: j for j, m in enumerate(self.models)}
        self._set_arrays(clean)
        self.rng = rng
        self.n_updates = n_updates
