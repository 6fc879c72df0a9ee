"""``feedback-noise``: learning curves under flipped thumbs, noisy evaluator scores, late and lost feedback, and
different source weights. Quality shown is the true recorded quality of the chosen model."""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from banditroute.simulations import stream
from banditroute.simulations.scenarios.common import ma_series, policy, test_stream
from banditroute.simulations.simulate import Context


def _events(rng: np.random.Generator, s: dict[str, Any], q: float) -> list[tuple[float, float, str]]:
    """(observed score, weight, source) of the feedback a query's answer gets (before delays and drops)."""
    out = []
    if s.get("sources", "evaluator") in ("user", "both"):
        thumb = 1.0 if q >= 0.5 else 0.0
        if rng.random() < float(s.get("flip", 0.0)):
            thumb = 1.0 - thumb
        out.append((thumb, float(s.get("w_user", 1.0)), "user"))
    if s.get("sources", "evaluator") in ("evaluator", "both"):
        score = float(np.clip(q + rng.normal(0.0, float(s.get("sigma", 0.0))), 0.0, 1.0))
        out.append((score, float(s.get("w_evaluator", 1.0)), "evaluator"))
    return out


def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.cfg
    data = test_stream(ctx)
    steps, window = int(cfg["steps"]), int(cfg.get("window", 200))
    idx = stream.order(len(data.X), steps, ctx.seed)
    rows, curves = [], {}
    for name, s in tqdm(cfg["settings"].items(), desc="feedback-noise", disable=not ctx.progress):
        rng = np.random.default_rng(ctx.seed)
        p = policy(ctx, cfg.get("policy", "linucb"))
        pending: list[tuple[int, int, int, float, float, float]] = []  # (due, seq, query, score, weight, cost) + arm
        arms: dict[int, int] = {}
        got = np.empty(steps)
        sent = applied = 0
        for t, i in enumerate(idx):
            while pending and pending[0][0] <= t:
                _, seq, qi, score, w, c = heapq.heappop(pending)
                p.update(data.X[qi], p.models[arms[seq]], score, c, w)
                applied += 1
            d = p.select(data.X[i])
            got[t] = data.Q[i, d.index]
            for score, w, _src in _events(rng, s, float(data.Q[i, d.index])):
                sent += 1
                if rng.random() < float(s.get("drop", 0.0)):
                    continue
                delay = int(rng.integers(0, int(s.get("delay", 0)) + 1))
                arms[sent] = d.index
                heapq.heappush(pending, (t + delay, sent, int(i), score, w, float(data.C[i, d.index])))
        rows.append(
            {
                "setting": name,
                "quality": float(got.mean()),
                "quality_last_half": float(got[steps // 2 :].mean()),
                "feedback_sent": sent,
                "feedback_applied": applied,
                **{k: v for k, v in s.items()},
            }
        )
        curves[name] = ma_series(got, window)
    return {
        "tables": {"summary": rows},
        "plots": [
            {
                "file": "learning_curves.png",
                "title": f"True quality under noisy feedback (window {window})",
                "xlabel": "step",
                "ylabel": "quality",
                "series": curves,
            }
        ],
    }
