"""A nearest-neighbour router: a query is routed by how each model did on the most similar queries seen.

Memory holds up to ``memory`` contexts with, per model, the observed quality and cost (full-information records
fill every model; bandit feedback fills the chosen one). For a context ``x`` the ``n_neighbors`` most similar
stored contexts (cosine similarity, weights ``max(sim, 0) ** sharpness``) vote per model::

    q_hat_j = (sum_i s_i w_ij q_ij + shrink * prior_j) / (sum_i s_i w_ij + shrink)

where ``prior_j`` is model ``j``'s mean over everything it was observed on, itself shrunk toward the mean of every
observation of every model (the pool)
(so a model with little evidence starts from what the pool knows). The exploration bonus is
``alpha / sqrt(1 + sum_i s_i w_ij)``: models the neighbourhood has not seen are tried. When memory is full the
oldest row is overwritten (bounded memory, and a natural forgetting of stale evidence).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from banditroute.bandit.base import Policy
from banditroute.bandit.checks import check_context, check_full_information, check_scalar
from banditroute.bandit.errors import StateError
from banditroute.bandit.pmf import greedy_pmf

_PER_ROW = ("M", "Qm", "Cm", "Wm")


class KNNRouter(Policy):
    """k-nearest-neighbour quality and cost estimates with a bounded memory.

    Args:
        n_neighbors: neighbours that vote (>= 1).
        memory: rows kept (>= n_neighbors); the oldest is overwritten when full.
        shrink: pseudo-count of the per-model prior in each neighbourhood estimate (> 0).
        sharpness: exponent on the similarity weights (>= 0; 0 weighs all neighbours equally).
        alpha: exploration bonus scale (>= 0; 0 is greedy).
        prior_quality: quality of a model nothing is known about, in [0, 1].
        (and the base class's arguments)
    """

    name = "knn"

    def __init__(
        self,
        models: Sequence[str],
        dim: int,
        *,
        n_neighbors: int = 64,
        memory: int = 4096,
        shrink: float = 4.0,
        sharpness: float = 1.0,
        alpha: float = 0.05,
        prior_quality: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(models, dim, **kwargs)
        self.n_neighbors = int(check_scalar(n_neighbors, "n_neighbors", low=1, integer=True))
        self.memory = int(check_scalar(memory, "memory", low=self.n_neighbors, high=1_000_000, integer=True))
        self.shrink = check_scalar(shrink, "shrink", low=0.0, low_inclusive=False)
        self.sharpness = check_scalar(sharpness, "sharpness", low=0.0, high=16.0)
        self.alpha = check_scalar(alpha, "alpha", low=0.0)
        self.prior_quality = check_scalar(prior_quality, "prior_quality", low=0.0, high=1.0)
        self._hyper.update(
            n_neighbors=self.n_neighbors,
            memory=self.memory,
            shrink=self.shrink,
            sharpness=self.sharpness,
            alpha=self.alpha,
            prior_quality=self.prior_quality,
        )
        k, d = self.k, self.dim
        self.M = np.zeros((0, d))
        self.Qm = np.zeros((0, k))
        self.Cm = np.zeros((0, k))
        self.Wm = np.zeros((0, k))
        self.sw = np.zeros(k)  # per model: total weight, quality and cost observed
        self.sq = np.zeros(k)
        self.sc = np.zeros(k)
        self.pool = np.zeros(3)  # weight, quality and cost of every observation ever made (all models)
        self._pos = 0  # next row to overwrite once memory is full
        self._pending_rows: int | None = None
        # derived from the arrays above, never saved (see _derived, _priors)
        self._unit: np.ndarray | None = None
        self._stacked: np.ndarray | None = None
        self._prior: np.ndarray | None = None

    # ---- estimates -------------------------------------------------------------------------------------
    def _invalidate(self) -> None:
        """Forget what is derived from the learned arrays (after any change to them)."""
        self._unit = self._stacked = self._prior = None

    def _priors(self) -> np.ndarray:
        """What the prior adds to a neighbourhood's ``[weights, W*Q, W*C]`` sums ``(1, 3k)``: the pseudo-count
        ``shrink`` and ``shrink`` times every model's prior quality and cost; cached until the arrays change."""
        if self._prior is None:
            total_w, total_q, total_c = self.pool
            pool_q = (total_q + self.shrink * self.prior_quality) / (total_w + self.shrink)
            pool_c = total_c / total_w if total_w > 0 else 0.0
            prior_q = (self.sq + self.shrink * pool_q) / (self.sw + self.shrink)
            prior_c = (self.sc + self.shrink * pool_c) / (self.sw + self.shrink)
            self._prior = self.shrink * np.concatenate([np.ones(self.k), prior_q, prior_c])[None, :]
        return self._prior

    def _derived(self) -> tuple[np.ndarray, np.ndarray]:
        """The memory's rows at unit length ``(rows, d)`` and ``[W, W*Q, W*C]`` side by side ``(rows, 3k)``,
        cached until the memory changes: a decision is then one matrix-vector product, a partial sort and
        one more product, with no per-row arithmetic over the memory."""
        if self._unit is None or self._stacked is None:
            self._unit = self.M / np.maximum(np.linalg.norm(self.M, axis=1, keepdims=True), 1e-12)
            self._stacked = np.hstack([self.Wm, self.Wm * self.Qm, self.Wm * self.Cm])
        return self._unit, self._stacked

    def _top(self, sim: np.ndarray) -> np.ndarray:
        """Indices of the ``n_neighbors`` largest entries along the last axis of ``sim`` (all when fewer)."""
        m = min(self.n_neighbors, sim.shape[-1])
        n = sim.shape[-1]
        if m < n:  # the m most similar in linear time; their order does not matter to a sum
            return sim.argpartition(n - m, axis=-1)[..., n - m :]
        return np.broadcast_to(np.arange(sim.shape[-1]), sim.shape)

    def _weights(self, s: np.ndarray) -> np.ndarray:
        s = np.maximum(s, 0.0)
        return s if self.sharpness == 1.0 else s**self.sharpness

    def _neighbourhood(self, X: np.ndarray) -> np.ndarray:
        """Per row of ``X``: the neighbours' summed weights, weighted quality and weighted cost side by side,
        ``(n, 3k)`` (or ``(3k,)`` for one row)."""
        n, k = X.shape[0], self.k
        if self.M.shape[0] == 0:
            return np.zeros((n, 3 * k))
        unit, stacked = self._derived()
        if n == 1:  # the served path: one query, no (n, m, 3k) temporary
            x = X[0]
            sim1 = unit @ x  # (rows,): the ranking of the cosines; scaled to them for the chosen rows only
            top1 = self._top(sim1)
            cosines = sim1[top1] * (1.0 / max(math.sqrt(float(x @ x)), 1e-12))
            one: np.ndarray = self._weights(cosines) @ stacked.take(top1, axis=0)  # (3k,)
            return one
        Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        sim = Xn @ unit.T  # (n, rows)
        top = self._top(sim)
        s = self._weights(np.take_along_axis(sim, top, axis=1))  # (n, m)
        sums: np.ndarray = np.einsum("nm,nmj->nj", s, stacked[top])
        return sums

    def _knn(self, X: np.ndarray, cost: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Quality and (with ``cost``) cost estimates ``(n, k)``: each model's neighbourhood sums shrunk toward
        its prior; and the neighbourhood's weights plus ``shrink`` ``(n, k)``, their denominator."""
        k = self.k
        sums = self._neighbourhood(X) + self._priors()  # (n, 3k)
        denominator = sums[:, :k]
        q = sums[:, k : 2 * k] / denominator
        return q, sums[:, 2 * k :] / denominator if cost else None, denominator

    def _estimates(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q, c, _ = self._knn(X)
        assert c is not None
        return q, c

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        q, c, denominator = self._knn(X, cost=lam > 0)
        score = q + self.alpha / np.sqrt(denominator + (1.0 - self.shrink))  # alpha / sqrt(1 + weights)
        if c is not None:
            score -= lam * c / self.cost_scale
        return greedy_pmf(score, mask)

    # ---- learning --------------------------------------------------------------------------------------
    def _store(self, X: np.ndarray, Q: np.ndarray, C: np.ndarray, W: np.ndarray) -> None:
        """Append rows while memory has room, then overwrite the oldest (a ring), in as few copies as possible."""
        self._invalidate()
        room = min(self.memory - self.M.shape[0], X.shape[0])
        if room > 0:
            self.M = np.vstack([self.M, X[:room]])
            self.Qm, self.Cm, self.Wm = (
                np.vstack([a, b[:room]]) for a, b in ((self.Qm, Q), (self.Cm, C), (self.Wm, W))
            )
        rest = X.shape[0] - room
        if rest > 0:
            keep = min(rest, self.memory)  # of more rows than memory holds, only the last survive
            at = (self._pos + rest - keep + np.arange(keep)) % self.memory
            for a, b in ((self.M, X), (self.Qm, Q), (self.Cm, C), (self.Wm, W)):
                a[at] = b[-keep:]
            self._pos = int((self._pos + rest) % self.memory)
        self.sw += W.sum(axis=0)
        self.sq += (W * Q).sum(axis=0)
        self.sc += (W * C).sum(axis=0)
        self.pool += [W.sum(), (W * Q).sum(), (W * C).sum()]

    def _update_arm(self, X: np.ndarray, j: int, quality: np.ndarray, cost: np.ndarray, weight: np.ndarray) -> None:
        n = X.shape[0]
        Q, C, W = np.zeros((n, self.k)), np.zeros((n, self.k)), np.zeros((n, self.k))
        Q[:, j], C[:, j], W[:, j] = quality, cost, weight
        self._store(X, Q, C, W)

    def fit_full(self, X: Any, quality: Any, cost: Any) -> None:
        """Warm start: one memory row per query with every model's observation (the last ``memory`` kept)."""
        X = check_context(X, self.dim, batch=True)
        q, c = check_full_information(X.shape[0], self.k, quality, cost)
        self._store(X, q, c, np.ones_like(q))
        self.n_updates += X.shape[0] * self.k

    # ---- arms --------------------------------------------------------------------------------------------
    def _new_arm(self) -> None:
        self._invalidate()
        rows = self.M.shape[0]
        self.Qm = np.hstack([self.Qm, np.zeros((rows, 1))])
        self.Cm = np.hstack([self.Cm, np.zeros((rows, 1))])
        self.Wm = np.hstack([self.Wm, np.zeros((rows, 1))])
        self.sw, self.sq, self.sc = np.append(self.sw, 0.0), np.append(self.sq, 0.0), np.append(self.sc, 0.0)

    def _drop_arm(self, j: int) -> None:
        self._invalidate()
        for name in ("Qm", "Cm", "Wm"):
            setattr(self, name, np.delete(getattr(self, name), j, axis=1))
        for name in ("sw", "sq", "sc"):
            setattr(self, name, np.delete(getattr(self, name), j))

    # ---- state -------------------------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in (*_PER_ROW, "sw", "sq", "sc", "pool")}

    def _array_shapes(self, k: int) -> dict[str, tuple[int, ...]]:
        rows = self.M.shape[0] if self._pending_rows is None else self._pending_rows
        return {
            "M": (rows, self.dim),
            "Qm": (rows, k),
            "Cm": (rows, k),
            "Wm": (rows, k),
            "sw": (k,),
            "sq": (k,),
            "sc": (k,),
            "pool": (3,),
        }

    def _arm_axes(self) -> dict[str, int | None]:
        return {"M": None, "Qm": 1, "Cm": 1, "Wm": 1, "sw": 0, "sq": 0, "sc": 0, "pool": None}

    def _set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        for name, a in arrays.items():
            setattr(self, name, a)
        self._invalidate()

    def _meta_extra(self) -> dict[str, Any]:
        return {"rows": int(self.M.shape[0]), "pos": self._pos}

    def _set_meta_extra(self, meta: Mapping[str, Any]) -> None:
        pos = meta.get("pos")
        if not isinstance(pos, int) or not 0 <= pos < max(self.memory, 1):
            raise StateError(f"state 'pos' must be an integer in [0, memory), got {pos!r}")
        self._pos = pos

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """As the base class; the memory's row count comes from the state's meta."""
        try:
            rows = state["meta"]["rows"]
        except (KeyError, TypeError) as exc:
            raise StateError("state must have 'meta' and 'arrays' (with meta 'rows')") from exc
        if not isinstance(rows, int) or not 0 <= rows <= self.memory:
            raise StateError(f"state 'rows' must be an integer in [0, memory={self.memory}], got {rows!r}")
        self._pending_rows = rows
        try:
            super().load_state_dict(state)
        finally:
            self._pending_rows = None
