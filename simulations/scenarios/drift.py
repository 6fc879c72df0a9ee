"""``drift``: a model breaks mid-stream and a new model is added; how fast do policies with and without
discounting recover, against a policy that never forgets?"""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from banditroute.simulations import stream
from banditroute.simulations.scenarios.common import ma_series, policy, test_stream
from banditroute.simulations.simulate import Context


def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.cfg
    data = test_stream(ctx)
    models = list(data.models)
    by_train = list(np.argsort(-ctx.prep.train.quality.mean(axis=0)))
    broken = cfg.get("broken_model") or models[by_train[0]]
    newcomer = cfg.get("new_model") or models[by_train[1]]
    jb = models.index(broken)
    pool = tuple(m for m in models if m != newcomer)
    steps, window = int(cfg["steps"]), int(cfg.get("window", 200))
    t_drift = steps // 2
    idx = stream.order(len(data.X), steps, ctx.seed)
    Q = data.Q.copy()
    Q_after = Q.copy()
    Q_after[:, jb] *= float(cfg.get("drop_factor", 0.0))
    rows, curves = [], {}
    variants = []
    for name in cfg["policies"]:
        variants.append((f"{name} (never forgets)", {}))
        variants.append(
            (
                f"{name} (discount {cfg['discount']})",
                {"discount": float(cfg["discount"])}
                | ({"discount_every": int(cfg["discount_every"])} if name.startswith("lin") else {}),
            )
        )
    for label, extra in tqdm(variants, desc="drift", disable=not ctx.progress):
        base = label.split(" ")[0]
        p = policy(ctx, base, models=pool, **extra)
        got = np.empty(steps)
        for t, i in enumerate(idx):
            if t == t_drift:
                p.add_model(newcomer)
            table = Q_after if t >= t_drift else Q
            d = p.select(data.X[i])
            j = models.index(d.model)
            got[t] = table[i, j]
            p.update(data.X[i], d.model, float(table[i, j]), float(data.C[i, j]))
        ma = stream.moving_average(got, window)
        before = float(ma[t_drift - 1])
        after = ma[t_drift + window :]
        hit = np.flatnonzero(after >= float(cfg.get("recover_within", 0.95)) * before)
        recovery = int(hit[0] + window) if hit.size else None
        rows.append(
            {
                "policy": label,
                "quality_before": float(got[:t_drift].mean()),
                "quality_after": float(got[t_drift:].mean()),
                "quality_last_quarter": float(got[-steps // 4 :].mean()),
                "steps_to_recover": recovery,
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
