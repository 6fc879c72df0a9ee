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


class NoisyFeedback:
    """A :class:`stream.FeedbackChannel` of one setting: each answer gets the setting's events (flipped thumbs,
    noisy scores), each lost with probability ``drop`` or delivered up to ``delay`` steps late."""

    def __init__(self, setting: dict[str, Any], seed: int) -> None:
        self.setting = setting
        self.rng = np.random.default_rng(seed)
        self._pending: list[tuple[int, int, stream.Feedback]] = []  # (due step, sequence number, feedback)
        self.sent = self.applied = 0

    def send(self, t: int, i: int, a: int, quality: float, cost: float, propensity: float) -> None:
        s = self.setting
        for score, w, _src in _events(self.rng, s, quality):
            self.sent += 1
            if self.rng.random() < float(s.get("drop", 0.0)):
                continue
            delay = int(self.rng.integers(0, int(s.get("delay", 0)) + 1))
            f = stream.Feedback(i, a, score, cost, propensity, w)
            heapq.heappush(self._pending, (t + delay, self.sent, f))

    def due(self, t: int) -> list[stream.Feedback]:
        out = []
        while self._pending and self._pending[0][0] <= t:
            out.append(heapq.heappop(self._pending)[2])
        self.applied += len(out)
        return out


def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.cfg
    data = test_stream(ctx)
    steps, window = int(cfg["steps"]), int(cfg.get("window", 200))
    idx = stream.order(len(data.X), steps, ctx.seed)
    rows, curves = [], {}
    for name, s in tqdm(cfg["settings"].items(), desc="feedback-noise", disable=not ctx.progress):
        channel = NoisyFeedback(s, ctx.seed)
        learner = stream.PolicyLearner(name, policy(ctx, cfg.get("policy", "linucb")))
        got = stream.run(learner, data, idx, feedback=channel).quality
        sent, applied = channel.sent, channel.applied
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
