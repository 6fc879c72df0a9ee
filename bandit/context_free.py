"""Context-free baselines: UCB1, Beta-Bernoulli Thompson sampling, uniform random, best single model, and the
oracle (simulation only).

They keep per-model weighted sums of observations: ``w`` (weight), ``sq`` (weight * quality) and ``sc``
(weight * cost). Quality estimate ``(sq + prior_weight * prior_quality) / (w + prior_weight)``, cost estimate
``sc / w`` (0 before any data). With ``discount < 1`` the sums decay by ``discount`` at every update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from banditroute.bandit.base import Policy
from banditroute.bandit.checks import check_scalar
from banditroute.bandit.errors import InvalidInputError
from banditroute.bandit.pmf import greedy_pmf, sampled_argmax_pmf, uniform_pmf


class MeanPolicy(Policy):
    """Shared running means of the context-free policies (not registered itself).

    Args:
        prior_quality: quality estimate of a model with no data, in [0, 1].
        prior_weight: pseudo-observations behind ``prior_quality``, >= 0.
        discount: per-update forgetting factor in (0, 1].
        (and the base class's arguments)
    """

    contextual = False

    def __init__(
        self,
        models: Sequence[str],
        dim: int,
        *,
        prior_quality: float = 0.5,
        prior_weight: float = 1.0,
        discount: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(models, dim, **kwargs)
        self.prior_quality = check_scalar(prior_quality, "prior_quality", low=0.0, high=1.0)
        self.prior_weight = check_scalar(prior_weight, "prior_weight", low=0.0)
        self.discount = check_scalar(discount, "discount", low=0.0, high=1.0, low_inclusive=False)
        self._hyper.update(prior_quality=self.prior_quality, prior_weight=self.prior_weight, discount=self.discount)
        self.w = np.zeros(self.k)
        self.sq = np.zeros(self.k)
        self.sc = np.zeros(self.k)

    def _means(self) -> tuple[np.ndarray, np.ndarray]:
        denom = self.w + self.prior_weight
        q = np.where(
            denom > 0,
            (self.sq + self.prior_weight * self.prior_quality) / np.where(denom > 0, denom, 1.0),
            self.prior_quality,
        )
        c = np.where(self.w > 0, self.sc / np.where(self.w > 0, self.w, 1.0), 0.0)
        return q, c

    def _estimates(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q, c = self._means()
        n = X.shape[0]
        return np.broadcast_to(q, (n, self.k)).copy(), np.broadcast_to(c, (n, self.k)).copy()

    def _update_arm(self, X: np.ndarray, j: int, quality: np.ndarray, cost: np.ndarray, weight: np.ndarray) -> None:
        if self.discount < 1.0:
            g = self.discount ** X.shape[0]
            self.w *= g
            self.sq *= g
            self.sc *= g
        self.w[j] += weight.sum()
        self.sq[j] += weight @ quality
        self.sc[j] += weight @ cost

    def _new_arm(self) -> None:
        self.w, self.sq, self.sc = (np.append(a, 0.0) for a in (self.w, self.sq, self.sc))

    def _drop_arm(self, j: int) -> None:
        self.w, self.sq, self.sc = (np.delete(a, j) for a in (self.w, self.sq, self.sc))

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"w": self.w, "sq": self.sq, "sc": self.sc}

    def _set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.w, self.sq, self.sc = arrays["w"], arrays["sq"], arrays["sc"]


class UCB1(MeanPolicy):
    """UCB1 (Auer et al., 2002): ``mean + c * sqrt(2 ln N / n_j)``; an untried model goes first.

    Args:
        c: width of the bonus, >= 0. (and :class:`MeanPolicy`'s arguments)
    """

    name = "ucb1"

    def __init__(self, models: Sequence[str], dim: int, *, c: float = 0.5, **kwargs: Any) -> None:
        kwargs.setdefault("prior_weight", 0.0)
        super().__init__(models, dim, **kwargs)
        self.c = check_scalar(c, "c", low=0.0)
        self._hyper["c"] = self.c

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        q, cost = self._means()
        total = max(float(self.w.sum()), 1.0)
        with np.errstate(divide="ignore"):
            bonus = np.where(
                self.w > 0, self.c * np.sqrt(2.0 * np.log(total + 1.0) / np.where(self.w > 0, self.w, 1)), np.inf
            )
        score = q + bonus - lam * cost / self.cost_scale
        return greedy_pmf(np.broadcast_to(score, mask.shape), mask)


class Thompson(MeanPolicy):
    """Beta-Bernoulli Thompson sampling with fractional (quality in [0, 1]) updates.

    Args:
        n_samples: posterior draws per decision (>= 1). (and :class:`MeanPolicy`'s arguments)
    """

    name = "thompson"

    def __init__(self, models: Sequence[str], dim: int, *, n_samples: int = 64, **kwargs: Any) -> None:
        super().__init__(models, dim, **kwargs)
        self.n_samples = int(check_scalar(n_samples, "n_samples", low=1, high=10_000, integer=True))
        self._hyper["n_samples"] = self.n_samples

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        _, cost = self._means()
        a = 1.0 + self.sq + self.prior_weight * self.prior_quality
        b = 1.0 + (self.w - self.sq) + self.prior_weight * (1.0 - self.prior_quality)
        draws = self.rng.beta(a, b, size=(self.n_samples, mask.shape[0], self.k))
        return sampled_argmax_pmf(draws - lam * cost / self.cost_scale, mask)


class RandomPolicy(MeanPolicy):
    """Uniform over the candidates; learns nothing that changes its choices."""

    name = "random"
    learns = False

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        return uniform_pmf(mask)


class BestSingle(MeanPolicy):
    """The model with the best mean ``quality - lam * cost / cost_scale`` on the data it was fitted on."""

    name = "best-single"
    learns = False

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        q, c = self._means()
        return greedy_pmf(np.broadcast_to(q - lam * c / self.cost_scale, mask.shape), mask)


class Oracle(MeanPolicy):
    """Chooses the best model of each query from the true records (simulation only).

    Call :meth:`reveal` with the true ``quality, cost: (n, k)`` of the contexts it is about to see.
    """

    name = "oracle"
    learns = False
    servable = False

    def __init__(self, models: Sequence[str], dim: int, **kwargs: Any) -> None:
        kwargs.setdefault("explore_floor", 0.0)
        super().__init__(models, dim, **kwargs)
        self._truth: tuple[np.ndarray, np.ndarray] | None = None

    def reveal(self, quality: np.ndarray, cost: np.ndarray) -> None:
        q, c = np.asarray(quality, dtype=float), np.asarray(cost, dtype=float)
        if q.ndim == 1:
            q, c = q[None], c[None]
        if q.shape[1] != self.k or c.shape != q.shape:
            raise InvalidInputError(f"oracle truth must be (n, {self.k}) quality and cost")
        self._truth = (q, c)

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        if self._truth is None or self._truth[0].shape[0] != X.shape[0]:
            raise InvalidInputError("the oracle needs reveal(quality, cost) for exactly these contexts first")
        q, c = self._truth
        return greedy_pmf(q - lam * c / self.cost_scale, mask)
