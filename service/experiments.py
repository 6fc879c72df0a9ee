"""A/B experiments: sticky arm assignment and per-arm statistics with 95% confidence intervals."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054


def assign(eid: str, arms: Sequence[tuple[str, float]], unit_id: str | None, rng: np.random.Generator) -> str:
    """Pick a serving arm by traffic weight: a stable hash of (experiment, unit) when a unit id is given, so the
    same user or session always lands on the same arm; uniform per request otherwise."""
    if unit_id is not None:
        h = hashlib.sha256(f"{eid}\0{unit_id}".encode()).digest()
        u = int.from_bytes(h[:8], "big") / 2**64
    else:
        u = float(rng.random())
    total = sum(w for _, w in arms)
    acc = 0.0
    for name, w in arms:
        acc += w / total
        if u < acc:
            return name
    return arms[-1][0]


def summary(n: float, total: float, total_sq: float) -> dict[str, Any]:
    """Mean, sample variance and the normal 95% interval of a sum-tracked sample."""
    if n <= 0:
        return {"n": 0, "mean": None, "ci95": None, "var": None}
    mean = total / n
    var = max((total_sq - n * mean * mean) / (n - 1), 0.0) if n > 1 else 0.0
    half = Z95 * math.sqrt(var / n) if n > 1 else None
    return {"n": int(n), "mean": mean, "ci95": [mean - half, mean + half] if half is not None else None, "var": var}


def difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:  # keys: mean, ci95
    """``a - b`` with Welch's normal 95% interval (None when either side lacks data)."""
    if not a["n"] or not b["n"] or a["n"] < 2 or b["n"] < 2:
        return None
    d = a["mean"] - b["mean"]
    half = Z95 * math.sqrt(a["var"] / a["n"] + b["var"] / b["n"])
    return {"mean": d, "ci95": [d - half, d + half]}


def arm_report(stats: dict[str, float]) -> dict[str, Any]:
    score = summary(stats["fb_n"], stats["fb_sum"], stats["fb_sumsq"])
    cost = summary(stats["fb_n"], stats["cost_sum"], stats["cost_sumsq"])
    return {"decisions": int(stats["decisions"]), "feedback": int(stats["fb_n"]), "score": score, "cost_usd": cost}
