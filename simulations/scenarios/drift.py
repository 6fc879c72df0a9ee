"""``drift``: a model breaks mid-stream and a new model is added; how fast do policies with and without
discounting recover, against a policy that never forgets?"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from banditroute.simulations import stream
from banditroute.simulations.scenarios.common import ma_series, policy, test_stream
from banditroute.simulations.simulate import Context


def _variants(cfg: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, policy name, extra hyperparameters): each policy as configured and with discounting."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for name in cfg["policies"]:
        out.append((f"{name} (never forgets)", name, {}))
        discount: dict[str, Any] = {"discount": float(cfg["discount"])}
        if name.startswith("lin"):
            discount["discount_every"] = int(cfg["discount_every"])
        out.append((f"{name} (discount {cfg['discount']})", name, discount))
    return out


def _recovery(got: np.ndarray, t_drift: int, window: int, share: float) -> int | None:
    """Steps after the drift until the moving average is back to ``share`` of its pre-drift level."""
    ma = stream.moving_average(got, window)
    before = float(ma[t_drift - 1])
    hit = np.flatnonzero(ma[t_drift + window :] >= share * before)
    return int(hit[0] + window) if hit.size else None


def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.cfg
    data = test_stream(ctx)
    models = list(data.models)
    by_train = list(np.argsort(-ctx.prep.train.quality.mean(axis=0)))
    broken = cfg.get("broken_model") or models[by_train[0]]
    newcomer = cfg.get("new_model") or models[by_train[1]]
    pool = tuple(m for m in models if m != newcomer)
    steps, window = int(cfg["steps"]), int(cfg.get("window", 200))
    t_drift = steps // 2
    idx = stream.order(len(data.X), steps, ctx.seed)
    Q_after = data.Q.copy()
    Q_after[:, models.index(broken)] *= float(cfg.get("drop_factor", 0.0))
    after = replace(data, Q=Q_after)
    rows, curves = [], {}
    for label, name, extra in tqdm(_variants(cfg), desc="drift", disable=not ctx.progress):
        p = policy(ctx, name, models=pool, **extra)
        learner = stream.PolicyLearner(label, p, columns=models)
        first = stream.run(learner, data, idx[:t_drift]).quality
        p.add_model(newcomer)
        got = np.concatenate([first, stream.run(learner, after, idx[t_drift:]).quality])
        rows.append(
            {
                "policy": label,
                "quality_before": float(got[:t_drift].mean()),
                "quality_after": float(got[t_drift:].mean()),
                "quality_last_quarter": float(got[-steps // 4 :].mean()),
                "steps_to_recover": _recovery(got, t_drift, window, float(cfg.get("recover_within", 0.95))),
            }
        )
        curves[label] = ma_series(got, window)
    return {
        "tables": {"summary": rows},
        "plots": [
            {
                "file": "drift.png",
                "title": f"{broken} breaks, {newcomer} joins at step {t_drift}",
                "xlabel": "step",
                "ylabel": f"moving-average quality (window {window})",
                "series": curves,
                "vlines": [t_drift],
            }
        ],
        "reference": {"broken_model": broken, "new_model": newcomer, "drift_step": t_drift},
        "notes": [
            f"steps_to_recover: steps after the drift until the moving average is back to "
            f"{cfg.get('recover_within', 0.95)} of its pre-drift level (null: not within the run)"
        ],
    }
