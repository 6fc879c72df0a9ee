"""The policy contract: a small abstract base that every routing policy subclasses.

A policy holds, per model, separate estimates of quality and of cost, and trades them at decision time:
``score = quality_estimate - lam * cost_estimate / cost_scale (+ exploration)``. It returns a distribution
over the candidate models (never zero for a candidate: ``explore_floor`` is mixed in uniformly), samples
the choice with its own seeded generator and reports the choice's probability (its propensity), as Vowpal
Wabbit's ``cb_explore`` does. Policies do no I/O; their state is plain arrays plus JSON scalars.

The pmf helpers live in :mod:`bandit.pmf`, the input checks in :mod:`bandit.checks`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from banditroute.bandit.checks import (
    check_context,
    check_feedback,
    check_full_information,
    check_lam,
    check_max_cost,
    check_observations,
    check_scalar,
    check_state,
)
from banditroute.bandit.errors import InvalidHyperparameterError, InvalidInputError, StateError, UnknownModelError
from banditroute.bandit.pmf import draw, greedy_pmf, sampled_argmax_pmf, uniform_pmf

# check_scalar and the pmf helpers live in bandit.checks and bandit.pmf; they stay importable from here too.
__all__ = ["Decision", "Policy", "check_scalar", "greedy_pmf", "sampled_argmax_pmf", "uniform_pmf"]


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
    and ``_new_arm``/``_drop_arm``, and list their own hyperparameters in ``_hyper``. Every learned array is
    per model (first axis ``k``) and float64 unless the subclass says otherwise (``_array_shapes``,
    ``array_dtypes``).
    """

    name: ClassVar[str]
    #: False for policies that need what production cannot know (the oracle).
    servable: ClassVar[bool] = True
    #: False for policies whose decisions ignore the context.
    contextual: ClassVar[bool] = True
    #: False for policies that ``make_policy`` cannot build from hyperparameters alone (onnx-static needs a
    #: trained network): evaluations that build every registered policy skip them.
    from_hyperparameters: ClassVar[bool] = True
    #: False for baselines that learn nothing worth reporting as a router (random, best single, oracle, a fixed
    #: ONNX agent): evaluations report them apart.
    learns: ClassVar[bool] = True
    #: Learned arrays that are not float64, by name (e.g. ``{"onnx_model": "uint8"}``).
    array_dtypes: ClassVar[Mapping[str, str]] = {}

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
        self._every: tuple[np.ndarray, np.ndarray] = (np.ones((1, 0), dtype=bool), np.zeros((1, 0)))

    @classmethod
    def from_state(
        cls, models: Sequence[str], dim: int, hyperparameters: Mapping[str, Any], state: Mapping[str, Any]
    ) -> Self:
        """A policy built from its hyperparameters with ``state`` (from :meth:`state_dict`) installed."""
        policy = cls(models, dim, **hyperparameters)
        policy.load_state_dict(state)
        return policy

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

    # ---- deciding --------------------------------------------------------------------------------------
    @abstractmethod
    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        """The policy's own distribution ``(n, k)`` on contexts ``X: (n, d)``, zero outside ``mask: (n, k)``."""

    @abstractmethod
    def _estimates(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Point estimates of quality and cost ``(n, k)`` each."""

    def estimates(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Estimated quality and cost ``(n, k)`` on contexts ``X: (n, d)`` (no exploration)."""
        return self._estimates(check_context(X, self.dim, batch=True))

    def within_cost(self, x: Any, max_cost: float, candidates: Sequence[str] | None = None) -> list[str]:
        """The candidates (default all models) whose estimated cost on ``x: (dim,)`` is at most ``max_cost``
        USD, in the policy's model order; when none is, the one estimated cheapest (a cap never leaves a
        request without a model)."""
        x = check_context(x, self.dim)
        cap = check_max_cost(max_cost)
        mask = self.candidate_mask(candidates)
        cost = self._estimates(x[None])[1][0]
        within = mask & (cost <= cap)
        if not within.any():
            cheapest = np.flatnonzero(mask)[np.argmin(cost[mask])]
            return [self.models[int(cheapest)]]
        return [m for m, ok in zip(self.models, within, strict=True) if ok]

    def pmf_batch(self, X: Any, lam: float = 0.0, candidates: Sequence[str] | None = None) -> np.ndarray:
        """The decision distributions ``(n, k)`` on contexts ``X: (n, d)``, exploration floor included.

        Randomised policies (Thompson sampling) draw from the policy's generator, as ``select`` does.
        """
        return self._checked_pmf(check_context(X, self.dim, batch=True), check_lam(lam), candidates)

    def _checked_pmf(self, X: np.ndarray, lam: float, candidates: Sequence[str] | None) -> np.ndarray:
        one, floor = self._candidate_row(candidates)
        mask = one if X.shape[0] == 1 else np.broadcast_to(one, (X.shape[0], self.k))
        p = self._pmf(X, mask, lam)
        if self.explore_floor > 0:
            p = (1.0 - self.explore_floor) * p + floor
        return p

    def _candidate_row(self, candidates: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
        """The candidates' mask ``(1, k)`` and the exploration floor's share of each ``(1, k)``; those of all
        models (nearly every decision) are kept, read-only, until the pool changes size."""
        if candidates is not None:
            one = self.candidate_mask(candidates)[None, :]
            return one, self.explore_floor * uniform_pmf(one)
        if self._every[0].shape[1] != self.k:
            one = np.ones((1, self.k), dtype=bool)
            floor = self.explore_floor * uniform_pmf(one)
            one.flags.writeable = floor.flags.writeable = False
            self._every = (one, floor)
        return self._every

    def select(self, x: Any, candidates: Sequence[str] | None = None, lam: float = 0.0) -> Decision:
        """Choose a model for context ``x: (dim,)`` among ``candidates`` (default all) at price ``lam``."""
        x = check_context(x, self.dim)
        p = self._checked_pmf(x[None, :], check_lam(lam), candidates)[0]
        j = draw(p, self.rng.random())  # Generator.choice's draw without its argument checks (a third of it)
        return Decision(self.models[j], j, p, float(p[j]), self.models, float(lam))

    # ---- learning --------------------------------------------------------------------------------------
    @abstractmethod
    def _update_arm(self, X: np.ndarray, j: int, quality: np.ndarray, cost: np.ndarray, weight: np.ndarray) -> None:
        """Apply observations of arm ``j``: ``X: (m, d)``, ``quality, cost, weight: (m,)``."""

    def update(self, x: Any, model: str, quality: float, cost: float, weight: float = 1.0) -> None:
        """Apply one observation: ``model`` answered context ``x`` with ``quality`` at ``cost`` USD."""
        x = check_context(x, self.dim)
        j = self.index_of(model)
        q, c, w = check_feedback(quality, cost, weight)
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
        X = check_context(X, self.dim, batch=True)
        n = X.shape[0]
        idx = np.array([self.index_of(m) for m in models], dtype=np.int64)
        q, c, w = check_observations(n, idx, quality, cost, weight)
        for j in np.unique(idx):
            rows = idx == j
            self._update_arm(X[rows], int(j), q[rows], c[rows], w[rows])
        self.n_updates += n

    def fit_full(self, X: Any, quality: Any, cost: Any) -> None:
        """Warm start from full-information records: every model's ``quality, cost: (n, k)`` on ``X: (n, d)``."""
        X = check_context(X, self.dim, batch=True)
        q, c = check_full_information(X.shape[0], self.k, quality, cost)
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
        """Install arrays already checked against ``_array_shapes`` and ``array_dtypes``."""

    def _array_shapes(self, k: int) -> dict[str, tuple[int, ...]]:
        """The shape of every learned array for ``k`` models (per-model arrays: first axis ``k``)."""
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
        s = check_state(state, name=self.name, dim=self.dim, shapes=self._array_shapes, dtypes=self.array_dtypes)
        self._set_meta_extra(s.meta)
        self.models = s.models
        self._index = {m: j for j, m in enumerate(self.models)}
        self._set_arrays(s.arrays)
        self.rng = s.rng
        self.n_updates = s.n_updates

    def sufficient_state(self) -> dict[str, Any]:
        """What determines the learned state, for snapshots: by default the whole :meth:`state_dict`. Policies
        that keep derived arrays (inverses) override this to leave them out; :meth:`load_sufficient_state`
        recomputes them."""
        return self.state_dict()

    def load_sufficient_state(self, state: Mapping[str, Any]) -> None:
        """Install a state from :meth:`sufficient_state` (derived arrays are recomputed)."""
        self.load_state_dict(state)

    @classmethod
    def from_sufficient_state(
        cls, models: Sequence[str], dim: int, hyperparameters: Mapping[str, Any], state: Mapping[str, Any]
    ) -> Self:
        """A policy built from its hyperparameters with a :meth:`sufficient_state` installed (by default the
        same as :meth:`from_state`)."""
        return cls.from_state(models, dim, hyperparameters, state)

    def warm_start(self, source: Policy) -> None:
        """Take ``source``'s learned state, aligned to this policy's models: a model both have takes
        ``source``'s estimates, a model only this policy has keeps its own (the prior, on a new policy), a model
        only ``source`` has is dropped. Counters and the generator come from ``source``; hyperparameters stay.

        Raises:
            StateError: ``source`` is another kind of policy or has another dim.
        """
        if source.name != self.name or source.dim != self.dim:
            raise StateError(
                f"cannot warm-start a {self.name!r} of dim {self.dim} from a {source.name!r} of dim {source.dim}"
            )
        theirs, mine = source.state_dict(), self.state_dict()
        rows = {m: source.index_of(m) for m in self.models if m in source.models}
        axes = self._arm_axes()
        arrays = {name: self._align(axes[name], theirs["arrays"][name], a, rows) for name, a in mine["arrays"].items()}
        self.load_state_dict({"meta": {**theirs["meta"], "models": list(self.models)}, "arrays": arrays})

    def _arm_axes(self) -> dict[str, int | None]:
        """For each state array, the axis that indexes the models (None: shared by all models)."""
        return dict.fromkeys(self._arrays(), 0)

    def _align(self, axis: int | None, theirs: np.ndarray, mine: np.ndarray, rows: Mapping[str, int]) -> np.ndarray:
        """``theirs`` re-indexed to this policy's models along ``axis``; a model ``theirs`` lacks takes this
        policy's own slice (zeros where the other axes differ, e.g. a memory of another length)."""
        if axis is None:
            return theirs
        t, m = np.moveaxis(theirs, axis, 0), np.moveaxis(mine, axis, 0)

        def own(j: int) -> np.ndarray:
            return m[j] if m.shape[1:] == t.shape[1:] else np.zeros(t.shape[1:], dtype=t.dtype)

        out = np.stack([t[rows[name]] if name in rows else own(j) for j, name in enumerate(self.models)])
        return np.moveaxis(out, 0, axis)
