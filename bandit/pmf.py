"""Decision distributions: the helpers every policy builds its ``(n, k)`` pmf with.

Each takes a boolean candidate ``mask: (n, k)`` and returns rows that sum to 1 and are 0 outside the mask.
"""

from __future__ import annotations

import math
from itertools import accumulate

import numpy as np

#: Relative tolerance under which two scores count as tied (ties split the probability evenly).
TIE_TOL = 1e-12


def uniform_pmf(mask: np.ndarray) -> np.ndarray:
    """Uniform over the candidates of each row of ``mask: (n, k)``, as ``(n, k)``."""
    if mask.shape[0] == 1:  # one decision: a count, not a keepdims reduction
        one: np.ndarray = mask / np.count_nonzero(mask)
        return one
    p: np.ndarray = mask / mask.sum(axis=1, keepdims=True)
    return p


def greedy_pmf(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Uniform over the maximisers of ``scores: (n, k)`` among ``mask: (n, k)``, as ``(n, k)``."""
    if scores.shape[0] == 1:  # one decision; with every model a candidate (nearly always) nothing to mask
        return _greedy_one(scores if np.count_nonzero(mask) == mask.size else np.where(mask, scores, -np.inf), mask)
    s = np.where(mask, scores, -np.inf)
    best = s.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):  # inf - inf when the best is +inf (an untried arm under UCB1)
        threshold = best - TIE_TOL * np.maximum(1.0, np.abs(best))
    threshold = np.where(np.isposinf(best), np.inf, threshold)
    top = mask & (s >= threshold)
    p: np.ndarray = top / top.sum(axis=1, keepdims=True)
    return p


def _greedy_one(s: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """:func:`greedy_pmf` of one decision (the served case), ``s: (1, k)`` already -inf outside ``mask``: the
    threshold in plain floats and, when one model is best (nearly always), a one-hot, in a third of the time."""
    j = int(s.argmax())
    b = float(s[0, j])
    if b == -math.inf:  # every candidate at -inf: they all tie
        return uniform_pmf(mask)
    # +inf: an untried arm under UCB1 (inf - inf would be nan)
    top = s >= (b if b == math.inf else b - TIE_TOL * max(1.0, abs(b)))
    if np.count_nonzero(top) > 1:
        return uniform_pmf(top)
    p = np.zeros(s.shape)
    p[0, j] = 1.0
    return p


def sampled_argmax_pmf(samples: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Empirical distribution of the argmax of ``samples: (m, n, k)`` among ``mask: (n, k)``, as ``(n, k)``."""
    s = np.where(mask[None], samples, -np.inf)
    winners = s.argmax(axis=2)  # (m, n)
    n, k = mask.shape
    counts = np.zeros((n, k))
    np.add.at(counts, (np.broadcast_to(np.arange(n), winners.shape), winners), 1.0)
    p: np.ndarray = counts / samples.shape[0]
    return p


def draw(p: np.ndarray, u: float) -> int:
    """The index of ``p: (k,)`` (weights >= 0, not all 0) at uniform ``u`` in [0, 1) by the inverse CDF: what
    ``Generator.choice(k, p=p / p.sum())`` returns when its own uniform is ``u``."""
    # in Python floats: the same sequential sums as cumsum, the same division, the first index whose share of the
    # total exceeds u (searchsorted's "right"); at k of tens of models, faster than three array operations
    cdf = list(accumulate(p.tolist()))
    total = cdf[-1]
    for i, c in enumerate(cdf):
        if c / total > u:
            return i
    return len(cdf) - 1
