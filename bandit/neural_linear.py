"""Neural-linear bandit: a small learned representation with a linear bandit head on its last layer.

The representation is a one-hidden-layer network ``h(x) = relu(x W1 + b1)`` trained (numpy, Adam, masked
squared error) to predict every model's quality at once, so the hidden units are what separates the models'
strengths. The head is a :class:`~banditroute.bandit.shared_linear.SharedLinUCB` on ``phi(x) = [h(x), 1]``:
exact posterior updates online and exploration where the head is uncertain (Riquelme et al., 2018).

``fit_full`` trains the network on full-information records and then the head. Online, the network is refitted
every ``refit_every`` observations on a bounded replay buffer of what was observed (only the chosen model's
quality counts in the loss), and the head is rebuilt from the same buffer. At serving time it is numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from banditroute.bandit.base import Policy
from banditroute.bandit.checks import check_context, check_full_information, check_scalar
from banditroute.bandit.errors import StateError
from banditroute.bandit.shared_linear import SharedLinUCB

_NET = ("W1", "b1")
_BUFFER = ("bX", "bQ", "bC", "bW")


class NeuralLinear(Policy):
    """A learned representation with a pooled LinUCB head.

    Args:
        hidden: width of the representation (>= 2).
        epochs: passes over the data per (re)fit (>= 1).
        learning_rate: Adam step size (> 0).
        refit_every: observations between online refits (>= 1).
        buffer: replay rows kept for online refits (>= 1).
        alpha, ridge, pool_ridge, prior_quality: the head's (see :class:`SharedLinUCB`).
        (and the base class's arguments)
    """

    name = "neural-linear"

    def __init__(
        self,
        models: Sequence[str],
        dim: int,
        *,
        hidden: int = 32,
        epochs: int = 30,
        learning_rate: float = 0.01,
        refit_every: int = 1000,
        buffer: int = 8192,
        alpha: float = 0.3,
        ridge: float = 4.0,
        pool_ridge: float = 1.0,
        prior_quality: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(models, dim, **kwargs)
        self.hidden = int(check_scalar(hidden, "hidden", low=2, high=1024, integer=True))
        self.epochs = int(check_scalar(epochs, "epochs", low=1, high=10_000, integer=True))
        self.learning_rate = check_scalar(learning_rate, "learning_rate", low=0.0, low_inclusive=False)
        self.refit_every = int(check_scalar(refit_every, "refit_every", low=1, integer=True))
        self.buffer = int(check_scalar(buffer, "buffer", low=1, high=1_000_000, integer=True))
        self.head = SharedLinUCB(
            self.models,
            self.hidden + 1,
            alpha=alpha,
            ridge=ridge,
            pool_ridge=pool_ridge,
            prior_quality=prior_quality,
            cost_scale=self.cost_scale,
            explore_floor=0.0,
            seed=None,
        )
        self._hyper.update(
            hidden=self.hidden,
            epochs=self.epochs,
            learning_rate=self.learning_rate,
            refit_every=self.refit_every,
            buffer=self.buffer,
            alpha=alpha,
            ridge=ridge,
            pool_ridge=pool_ridge,
            prior_quality=prior_quality,
        )
        init = np.random.default_rng(self.seed)
        self.W1 = init.normal(0.0, np.sqrt(2.0 / self.dim), (self.dim, self.hidden))
        self.b1 = np.zeros(self.hidden)
        self._net: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # see _augmented
        k = self.k
        self.bX, self.bQ, self.bC, self.bW = (
            np.zeros((0, self.dim)),
            np.zeros((0, k)),
            np.zeros((0, k)),
            np.zeros((0, k)),
        )
        self._since_refit = 0

    # ---- representation --------------------------------------------------------------------------------
    def _phi(self, X: np.ndarray) -> np.ndarray:
        W, b = self._augmented()
        phi: np.ndarray = X @ W
        phi += b
        np.maximum(phi, 0.0, out=phi)
        return phi

    def _augmented(self) -> tuple[np.ndarray, np.ndarray]:
        """``W1`` with a zero column and ``b1`` with a 1 appended: ``relu(x W + b) = [h(x), 1]`` in three array
        operations, not five. Rebuilt whenever ``W1`` or ``b1`` is another array (training and loading replace
        them; nothing changes them in place)."""
        if self._net is None or self._net[0] is not self.W1 or self._net[1] is not self.b1:
            W = np.concatenate((self.W1, np.zeros((self.dim, 1))), axis=1)
            self._net = (self.W1, self.b1, W, np.append(self.b1, 1.0))
        return self._net[2], self._net[3]

    def _train(self, X: np.ndarray, Q: np.ndarray, W: np.ndarray) -> None:
        """Adam on masked squared error of every model's quality; a throwaway output layer, seeded."""
        rng = np.random.default_rng(None if self.seed is None else self.seed + self.n_updates)
        k, hdim = Q.shape[1], self.hidden
        W2, b2 = rng.normal(0.0, np.sqrt(1.0 / hdim), (hdim, k)), (Q * W).sum(0) / np.maximum(W.sum(0), 1.0)
        params = [self.W1, self.b1, W2, b2]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        step, batch = 0, 256
        for _ in range(self.epochs):
            for idx in np.array_split(rng.permutation(X.shape[0]), max(1, X.shape[0] // batch)):
                x, q, w = X[idx], Q[idx], W[idx]
                pre = x @ params[0] + params[1]
                h = np.maximum(pre, 0.0)
                err = (h @ params[2] + params[3] - q) * w / max(float(w.sum()), 1.0)
                gh = (err @ params[2].T) * (pre > 0)
                grads = [x.T @ gh, gh.sum(0), h.T @ err, err.sum(0)]
                step += 1
                for i, g in enumerate(grads):
                    m[i] = 0.9 * m[i] + 0.1 * g
                    v[i] = 0.999 * v[i] + 0.001 * g * g
                    mh, vh = m[i] / (1 - 0.9**step), v[i] / (1 - 0.999**step)
                    params[i] = params[i] - self.learning_rate * mh / (np.sqrt(vh) + 1e-8)
        self.W1, self.b1 = params[0], params[1]

    def _rebuild_head(self) -> None:
        """The head refitted from the replay buffer on the current representation."""
        fresh = SharedLinUCB(self.models, self.hidden + 1, **self._head_hyper(), explore_floor=0.0, seed=None)
        if self.bX.shape[0]:
            phi = self._phi(self.bX)
            for j in range(self.k):
                rows = self.bW[:, j] > 0
                if rows.any():
                    fresh._update_arm(phi[rows], j, self.bQ[rows, j], self.bC[rows, j], self.bW[rows, j])
        self.head = fresh

    def _head_hyper(self) -> dict[str, Any]:
        keys = ("alpha", "ridge", "pool_ridge", "prior_quality")
        return {key: self._hyper[key] for key in keys} | {"cost_scale": self.cost_scale}

    # ---- deciding ----------------------------------------------------------------------------------------
    def _estimates(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.head._estimates(self._phi(X))

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        return self.head._pmf(self._phi(X), mask, lam)

    # ---- learning ----------------------------------------------------------------------------------------
    def _remember(self, X: np.ndarray, Q: np.ndarray, C: np.ndarray, W: np.ndarray) -> None:
        self.bX = np.vstack([self.bX, X])[-self.buffer :]
        self.bQ = np.vstack([self.bQ, Q])[-self.buffer :]
        self.bC = np.vstack([self.bC, C])[-self.buffer :]
        self.bW = np.vstack([self.bW, W])[-self.buffer :]

    def _update_arm(self, X: np.ndarray, j: int, quality: np.ndarray, cost: np.ndarray, weight: np.ndarray) -> None:
        n = X.shape[0]
        Q, C, W = np.zeros((n, self.k)), np.zeros((n, self.k)), np.zeros((n, self.k))
        Q[:, j], C[:, j], W[:, j] = quality, cost, weight
        self._remember(X, Q, C, W)
        self.head._update_arm(self._phi(X), j, quality, cost, weight)
        self._since_refit += n
        if self._since_refit >= self.refit_every:
            self._since_refit = 0
            self._train(self.bX, self.bQ, self.bW)
            self._rebuild_head()

    def fit_full(self, X: Any, quality: Any, cost: Any) -> None:
        """Train the representation on every model's quality, then the head; the rows fill the replay buffer."""
        X = check_context(X, self.dim, batch=True)
        q, c = check_full_information(X.shape[0], self.k, quality, cost)
        self._remember(X, q, c, np.ones_like(q))
        self._train(X, q, np.ones_like(q))
        self._rebuild_head()
        self._since_refit = 0
        self.n_updates += X.shape[0] * self.k

    # ---- arms ----------------------------------------------------------------------------------------------
    def _new_arm(self) -> None:
        self.head._new_arm()
        rows = self.bX.shape[0]
        for name in ("bQ", "bC", "bW"):
            setattr(self, name, np.hstack([getattr(self, name), np.zeros((rows, 1))]))

    def _drop_arm(self, j: int) -> None:
        self.head._drop_arm(j)
        for name in ("bQ", "bC", "bW"):
            setattr(self, name, np.delete(getattr(self, name), j, axis=1))

    # ---- state -----------------------------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        head = {f"head.{n}": a for n, a in self.head._arrays().items()}
        return {**{n: getattr(self, n) for n in (*_NET, *_BUFFER)}, **head}

    def _array_shapes(self, k: int) -> dict[str, tuple[int, ...]]:
        rows = self.bX.shape[0] if self._pending_rows is None else self._pending_rows
        own = {"W1": (self.dim, self.hidden), "b1": (self.hidden,), "bX": (rows, self.dim)}
        own |= {n: (rows, k) for n in ("bQ", "bC", "bW")}
        return own | {f"head.{n}": s for n, s in self.head._array_shapes(k).items()}

    _pending_rows: int | None = None

    def _arm_axes(self) -> dict[str, int | None]:
        own: dict[str, int | None] = {"W1": None, "b1": None, "bX": None, "bQ": 1, "bC": 1, "bW": 1}
        return own | {f"head.{n}": a for n, a in self.head._arm_axes().items()}

    def _set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        for n in (*_NET, *_BUFFER):
            setattr(self, n, arrays[n])
        self.head.models = self.models
        self.head._index = {m: j for j, m in enumerate(self.models)}
        self.head._set_arrays({n.split(".", 1)[1]: a for n, a in arrays.items() if n.startswith("head.")})

    def _meta_extra(self) -> dict[str, Any]:
        return {"rows": int(self.bX.shape[0]), "since_refit": self._since_refit}

    def _set_meta_extra(self, meta: Mapping[str, Any]) -> None:
        v = meta.get("since_refit")
        if not isinstance(v, int) or v < 0:
            raise StateError(f"state 'since_refit' must be an integer >= 0, got {v!r}")
        self._since_refit = v

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """As the base class; the replay buffer's row count comes from the state's meta."""
        try:
            rows = state["meta"]["rows"]
        except (KeyError, TypeError) as exc:
            raise StateError("state must have 'meta' and 'arrays' (with meta 'rows')") from exc
        if not isinstance(rows, int) or not 0 <= rows <= self.buffer:
            raise StateError(f"state 'rows' must be an integer in [0, buffer={self.buffer}], got {rows!r}")
        self._pending_rows = rows
        try:
            super().load_state_dict(state)
        finally:
            self._pending_rows = None
