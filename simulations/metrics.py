"""Routing metrics, as their papers define them. Pure numpy; every function documents its convention.

- V_B (RouterEval): a router's quality divided by the best single model's quality.
- AIQ (RouterBench): the area under the router's non-decreasing convex hull in the cost-quality plane, divided by
  the width of the cost range ``[c_min, c_max]`` (the cheapest and the dearest single model's mean cost). Left of
  its cheapest point a method cannot operate and counts 0; right of its dearest point the hull stays flat. So a
  lone expensive model earns credit only for the budgets it fits in.
- APGR, CPT(x) (RouteLLM): the router routes the share ``p`` of queries with the largest "prefer strong" margin
  to the strong model, for ``p`` = 0, 0.1, ..., 1 (RouteLLM's quantile thresholds). ``APGR = (AUC - weak) /
  (strong - weak)`` with ``AUC`` the trapezoid area of quality over ``p``; ``CPT(x)`` is the ``p`` (linearly
  interpolated) at which quality first reaches ``weak + x * (strong - weak)``.
"""

from __future__ import annotations

import numpy as np

STRONG_SHARES = np.linspace(0.0, 1.0, 11)


def entropy_bits(shares: np.ndarray) -> float:
    """Shannon entropy (bits) of a call-share vector."""
    s = np.asarray(shares, dtype=float)
    s = s[s > 0]
    return float(-(s * np.log2(s)).sum()) if s.size else 0.0


def upper_hull(cost: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The non-decreasing upper convex hull of points ``(cost, quality)``, sorted by cost."""
    order = np.lexsort((-np.asarray(quality), np.asarray(cost)))
    pts: list[tuple[float, float]] = []
    best = -np.inf
    for c, q in zip(np.asarray(cost)[order], np.asarray(quality)[order], strict=True):
        if q <= best:  # dominated: costs more, no better (non-decreasing hull)
            continue
        best = q
        while len(pts) >= 2:
            (c1, q1), (c2, q2) = pts[-2], pts[-1]
            if (q2 - q1) * (c - c1) <= (q - q1) * (c2 - c1):  # pts[-1] lies on or below the chord
                pts.pop()
            else:
                break
        pts.append((float(c), float(q)))
    arr = np.array(pts)
    return arr[:, 0], arr[:, 1]


def aiq(cost: np.ndarray, quality: np.ndarray, c_min: float, c_max: float) -> float:
    """RouterBench's Average Improvement in Quality over ``[c_min, c_max]`` (see module docstring)."""
    if not c_max > c_min:
        return float(np.max(quality))
    hc, hq = upper_hull(cost, quality)
    grid = np.linspace(c_min, c_max, 4001)
    values = np.where(grid < hc[0], 0.0, np.interp(grid, hc, hq))
    return float(np.trapezoid(values, grid) / (c_max - c_min))


def strong_share_curve(
    margin: np.ndarray, q_strong: np.ndarray, q_weak: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Quality at each share of ``STRONG_SHARES``: the queries with the largest ``margin`` go to the strong model
    (ties broken at random)."""
    n = margin.shape[0]
    order = np.lexsort(np.stack([rng.random(n), -np.asarray(margin, dtype=float)]))
    out = []
    for p in STRONG_SHARES:
        strong = np.zeros(n, dtype=bool)
        strong[order[: round(p * n)]] = True
        out.append(float(np.where(strong, q_strong, q_weak).mean()))
    return np.array(out)


def apgr(curve: np.ndarray, weak: float, strong: float) -> float:
    """RouteLLM's average performance gap recovered of a quality curve over ``STRONG_SHARES``."""
    if strong == weak:
        return float("nan")
    auc = float(np.trapezoid(curve, STRONG_SHARES))
    return (auc - weak) / (strong - weak)


def cpt(curve: np.ndarray, weak: float, strong: float, x: float) -> float:
    """RouteLLM's CPT(x): share of strong calls needed to recover ``x`` of the gap (1.0 if never reached)."""
    target = weak + x * (strong - weak)
    above = np.flatnonzero(curve >= target)
    if above.size == 0:
        return 1.0
    i = int(above[0])
    if i == 0:
        return 0.0
    q0, q1 = curve[i - 1], curve[i]
    p0, p1 = STRONG_SHARES[i - 1], STRONG_SHARES[i]
    return float(p0 + (target - q0) / (q1 - q0) * (p1 - p0)) if q1 != q0 else float(p1)


#: "cheapest within 1 point" chooses its point on validation within 1 point less this margin (0.4 point) of the
#: best single model, so that the point chosen still holds on test (the same rule for every method)
VALIDATION_MARGIN = 0.004


def cheapest_within(
    costs: np.ndarray, qualities: np.ndarray, reference_quality: float, tolerance: float = 0.01
) -> int | None:
    """Index of the cheapest point whose quality is within ``tolerance`` of ``reference_quality`` (None if none)."""
    ok = np.flatnonzero(np.asarray(qualities) >= reference_quality - tolerance)
    if ok.size == 0:
        return None
    return int(ok[np.argmin(np.asarray(costs)[ok])])
