"""Linear contextual bandits: per-model ridge regressions of quality and of cost on the context.

For model ``j``: ``A_j = ridge * I + sum w x x^T``, ``b_j = ridge * theta0 + sum w q x``,
``bc_j = sum w c x``; quality estimate ``x . A_j^-1 b_j``, cost estimate ``max(x . A_j^-1 bc_j, 0)``, and the
uncertainty ``sqrt(x^T A_j^-1 x)``. Quality and cost share ``A_j`` (they are regressed on the same contexts),
so one inverse serves both. ``A_j^-1`` is kept up to date by Sherman-Morrison rank-1 updates (never a full
inverse per update); a batch update or a discount step re-inverts once per batch.

``theta0`` puts ``prior_quality`` on the bias feature (the context's last entry), so a model with no data
is estimated at ``prior_quality`` (and, with cost 0, looks cheap: new models get explored).

Discounting (``discount < 1``) forgets old evidence for drifting models: every ``discount_every`` updates,
``A <- g A + (1 - g) ridge I``, ``b <- g b + (1 - g) ridge theta0``, ``bc <- g bc`` with
``g = discount ** discount_every``, then one re-inversion (amortised over the block of updates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np

from banditroute.bandit.base import Policy
from banditroute.bandit.checks import check_scalar
from banditroute.bandit.errors import StateError
from banditroute.bandit.pmf import greedy_pmf, sampled_argmax_pmf, uniform_pmf


class LinearPolicy(Policy):
    """Shared ridge machinery of the linear policies (not registered itself).

    Args:
        ridge: prior precision (L2 regularisation) of every regression, > 0.
        prior_quality: quality estimate of a model with no data, in [0, 1].
        discount: per-update forgetting factor in (0, 1]; 1 never forgets.
        discount_every: updates per discount step (>= 1).
        (and the base class's arguments)
    """

    def __init__(
        self,
        models: Sequence[str],
        dim: int,
        *,
        ridge: float = 1.0,
        prior_quality: float = 0.5,
        discount: float = 1.0,
        discount_every: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(models, dim, **kwargs)
        self.ridge = check_scalar(ridge, "ridge", low=0.0, low_inclusive=False)
        self.prior_quality = check_scalar(prior_quality, "prior_quality", low=0.0, high=1.0)
        self.discount = check_scalar(discount, "discount", low=0.0, high=1.0, low_inclusive=False)
        self.discount_every = int(check_scalar(discount_every, "discount_every", low=1, integer=True))
        self._hyper.update(
            ridge=self.ridge,
            prior_quality=self.prior_quality,
            discount=self.discount,
            discount_every=self.discount_every,
        )
        d, k = self.dim, self.k
        self._theta0 = np.zeros(d)
        self._theta0[-1] = self.prior_quality
        self.A = np.broadcast_to(self.ridge * np.eye(d), (k, d, d)).copy()
        self.A_inv = np.broadcast_to(np.eye(d) / self.ridge, (k, d, d)).copy()
        self.b = np.broadcast_to(self.ridge * self._theta0, (k, d)).copy()
        self.bc = np.zeros((k, d))
        self.n = np.zeros(k)
        self._since_discount = 0
        self._refresh_theta()

    # ---- the inverses and their float32 copy ------------------------------------------------------------
    @property
    def A_inv(self) -> np.ndarray:
        """``(k, d, d)``: every model's ``A^-1``, float64 (the state)."""
        return self._A_inv

    @A_inv.setter
    def A_inv(self, value: np.ndarray) -> None:
        self._A_inv = value
        self._inv32: np.ndarray | None = None  # rebuilt on the next single decision

    def _inverses32(self) -> np.ndarray:
        """``A_inv`` as float32 ``(d, k * d)``, entry ``[e, j * d + f] = A_inv[j, f, e]``: what one decision's
        confidence widths are computed from, as ``x @ it`` (every ``A_j^-1 x`` at once). float32 halves the
        bytes of the memory-bound product, and a width needs nowhere near float64's digits; in this layout the
        product streams along rows of length ``k * d`` (twice as fast as ``(k * d, d) @ x`` at small ``d``).
        Kept in step by :meth:`_update_arm` (one model's columns), rebuilt after any other change of ``A_inv``."""
        if self._inv32 is None:
            k, d, _ = self._A_inv.shape
            self._inv32 = self._A_inv.transpose(2, 0, 1).astype(np.float32).reshape(d, k * d)
        return self._inv32

    # ---- estimates -------------------------------------------------------------------------------------
    def _refresh_theta(self, j: int | None = None) -> None:
        if j is None:
            self.theta = np.einsum("kde,ke->kd", self.A_inv, self.b)
            self.theta_c = np.einsum("kde,ke->kd", self.A_inv, self.bc)
        else:
            self.theta[j] = self.A_inv[j] @ self.b[j]
            self.theta_c[j] = self.A_inv[j] @ self.bc[j]

    def _estimates(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return X @ self.theta.T, np.maximum(X @ self.theta_c.T, 0.0)

    def _variance(self, X: np.ndarray) -> np.ndarray:
        """``x^T A_j^-1 x`` for every row and model, ``(n, k)``."""
        if X.shape[0] == 1:  # one decision: one float32 matrix-vector product over the stacked inverses
            x = X[0].astype(np.float32)
            one: np.ndarray = (x @ self._inverses32()).reshape(-1, self.dim) @ x
            width: np.ndarray = np.maximum(one, 0.0, dtype=np.float64)
            return width[None, :]
        z = np.matmul(X[None, :, :], self.A_inv)  # (k, n, d)
        v: np.ndarray = np.maximum(np.einsum("knd,nd->nk", z, X), 0.0)
        return v

    def _ucb_pmf(self, X: np.ndarray, mask: np.ndarray, lam: float, alpha: float) -> np.ndarray:
        """Greedy on ``quality_hat + alpha * sqrt(x^T A^-1 x) - lam * cost_hat / cost_scale`` (LinUCB's rule;
        ``alpha = 0`` is greedy ridge)."""
        score = X @ self.theta.T  # the quality estimate; the cost one only when lambda prices it
        if lam > 0:
            score -= lam * np.maximum(X @ self.theta_c.T, 0.0) / self.cost_scale
        if alpha > 0:
            score += alpha * np.sqrt(self._variance(X))
        return greedy_pmf(score, mask)

    # ---- learning --------------------------------------------------------------------------------------
    def _update_arm(self, X: np.ndarray, j: int, quality: np.ndarray, cost: np.ndarray, weight: np.ndarray) -> None:
        if X.shape[0] == 1:
            x, w = X[0], float(weight[0])
            ax = self.A_inv[j] @ x
            self.A_inv[j] -= np.outer(ax, ax) * (w / (1.0 + w * float(x @ ax)))
            self.A[j] += w * np.outer(x, x)
        else:
            self.A[j] += (X * weight[:, None]).T @ X
            self.A_inv[j] = np.linalg.inv(self.A[j]).astype(np.float64)
        if self._inv32 is not None:
            d = self.dim
            self._inv32[:, j * d : (j + 1) * d] = self.A_inv[j].T
        self.b[j] += X.T @ (weight * quality)
        self.bc[j] += X.T @ (weight * cost)
        self.n[j] += weight.sum()
        self._refresh_theta(j)
        if self.discount < 1.0:
            self._since_discount += X.shape[0]
            if self._since_discount >= self.discount_every:
                self._apply_discount(self.discount**self._since_discount)
                self._since_discount = 0

    def _apply_discount(self, g: float) -> None:
        eye = np.eye(self.dim)
        self.A = g * self.A + (1.0 - g) * self.ridge * eye
        self.b = g * self.b + (1.0 - g) * self.ridge * self._theta0
        self.bc *= g
        self.n *= g
        self.A_inv = np.linalg.inv(self.A).astype(np.float64)
        self._refresh_theta()

    # ---- arms --------------------------------------------------------------------------------------------
    def _new_arm(self) -> None:
        d = self.dim
        self.A = np.concatenate([self.A, self.ridge * np.eye(d)[None]])
        self.A_inv = np.concatenate([self.A_inv, np.eye(d)[None] / self.ridge])
        self.b = np.vstack([self.b, self.ridge * self._theta0])
        self.bc = np.vstack([self.bc, np.zeros(d)])
        self.n = np.append(self.n, 0.0)
        self._refresh_theta()

    def _drop_arm(self, j: int) -> None:
        for name in ("A", "A_inv", "b", "bc", "n"):
            setattr(self, name, np.delete(getattr(self, name), j, axis=0))
        self._refresh_theta()

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"A": self.A, "A_inv": self.A_inv, "b": self.b, "bc": self.bc, "n": self.n}

    def _set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        for name, a in arrays.items():
            setattr(self, name, a)
        self._refresh_theta()

    #: derived arrays: left out of :meth:`sufficient_state`, recomputed (inverted) on load
    _DERIVED: tuple[tuple[str, str], ...] = (("A_inv", "A"),)

    def sufficient_state(self) -> dict[str, Any]:
        """:meth:`state_dict` without the inverses (``A_inv``): ``A``, ``b``, ``bc`` and ``n`` determine them."""
        state = self.state_dict()
        for derived, _ in self._DERIVED:
            del state["arrays"][derived]
        return state

    def load_sufficient_state(self, state: Mapping[str, Any]) -> None:
        """Install a :meth:`sufficient_state`, inverting ``A`` once (not a Sherman-Morrison history); a full
        :meth:`state_dict` (inverses present) is installed as it is."""
        arrays = dict(state.get("arrays") or {})
        for derived, source in self._DERIVED:
            if derived in arrays:
                continue
            a = arrays.get(source)
            if not isinstance(a, np.ndarray) or a.ndim < 2 or a.shape[-1] != a.shape[-2]:
                raise StateError(f"state array {source!r} is missing or not square; cannot recompute {derived!r}")
            try:
                arrays[derived] = np.linalg.inv(a).astype(np.float64)
            except np.linalg.LinAlgError as exc:
                raise StateError(f"state array {source!r} is singular: {exc}") from exc
        self.load_state_dict({**state, "arrays": arrays})

    @classmethod
    def from_sufficient_state(
        cls, models: Sequence[str], dim: int, hyperparameters: Mapping[str, Any], state: Mapping[str, Any]
    ) -> Self:
        policy = cls(models, dim, **hyperparameters)
        policy.load_sufficient_state(state)
        return policy

    def _meta_extra(self) -> dict[str, Any]:
        return {"since_discount": self._since_discount}

    def _set_meta_extra(self, meta: Mapping[str, Any]) -> None:
        v = meta.get("since_discount")
        if not isinstance(v, int) or v < 0:
            raise StateError(f"state 'since_discount' must be an integer >= 0, got {v!r}")
        self._since_discount = v


class LinUCB(LinearPolicy):
    """LinUCB (Li et al., 2010) with a separate cost regression.

    Chooses ``argmax quality_hat + alpha * sqrt(x^T A^-1 x) - lam * cost_hat / cost_scale`` (ties uniformly).

    Args:
        alpha: width of the confidence bonus, >= 0 (0 is greedy ridge regression).
        (and :class:`LinearPolicy`'s arguments)
    """

    name = "linucb"

    def __init__(self, models: Sequence[str], dim: int, *, alpha: float = 0.05, **kwargs: Any) -> None:
        super().__init__(models, dim, **kwargs)
        self.alpha = check_scalar(alpha, "alpha", low=0.0)
        self._hyper["alpha"] = self.alpha

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        return self._ucb_pmf(X, mask, lam, self.alpha)


class LinTS(LinearPolicy):
    """Linear Thompson sampling (Agrawal and Goyal, 2013) with a separate cost regression.

    The posterior of ``x . theta_j`` is ``N(x . theta_hat_j, v^2 x^T A_j^-1 x)``; each decision draws
    ``n_samples`` joint samples of every model's score and its distribution is the empirical share of each
    model among the samples' argmaxes. The choice is sampled from that distribution, so the logged
    propensity is exactly the probability the choice was made with.

    Args:
        v: posterior scale, > 0.
        n_samples: posterior draws per decision (>= 1).
        (and :class:`LinearPolicy`'s arguments)
    """

    name = "lints"

    def __init__(self, models: Sequence[str], dim: int, *, v: float = 0.05, n_samples: int = 64, **kwargs: Any) -> None:
        super().__init__(models, dim, **kwargs)
        self.v = check_scalar(v, "v", low=0.0, low_inclusive=False)
        self.n_samples = int(check_scalar(n_samples, "n_samples", low=1, high=10_000, integer=True))
        self._hyper.update(v=self.v, n_samples=self.n_samples)

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        q, c = self._estimates(X)
        sd = self.v * np.sqrt(self._variance(X))
        draws = self.rng.standard_normal((self.n_samples, *q.shape))
        samples = q[None] + sd[None] * draws - lam * c[None] / self.cost_scale
        return sampled_argmax_pmf(samples, mask)


class LinEpsGreedy(LinearPolicy):
    """Epsilon-greedy on the ridge estimates: greedy with probability ``1 - epsilon``, else uniform.

    Args:
        epsilon: exploration share in [0, 1].
        (and :class:`LinearPolicy`'s arguments)
    """

    name = "linear-eps-greedy"

    def __init__(self, models: Sequence[str], dim: int, *, epsilon: float = 0.05, **kwargs: Any) -> None:
        super().__init__(models, dim, **kwargs)
        self.epsilon = check_scalar(epsilon, "epsilon", low=0.0, high=1.0)
        self._hyper["epsilon"] = self.epsilon

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        q, c = self._estimates(X)
        greedy = greedy_pmf(q - lam * c / self.cost_scale, mask)
        return (1.0 - self.epsilon) * greedy + self.epsilon * uniform_pmf(mask)
