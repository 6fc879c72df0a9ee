"""``scaling``: RouterEval's model-level scaling. For pool sizes m, random pools of m models: quality of the
oracle, of r_o(p) (the oracle's choice with probability p, else a uniformly random model; its expected quality),
of the best single model (chosen on train) and of our learned router (per-model ridge regressors of quality
fitted on the train split, choosing the argmax in the pool)."""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from banditroute.simulations.methods import supervised_ridge
from banditroute.simulations.scenarios.common import test_stream
from banditroute.simulations.simulate import Context


def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.cfg
    data = test_stream(ctx)
    k = len(data.models)
    sizes = [int(m) for m in cfg.get("sizes") or range(2, k + 1) if 2 <= int(m) <= k]
    shares = [float(p) for p in cfg.get("oracle_shares", [0.25, 0.5, 0.75])]
    rng = np.random.default_rng(ctx.seed)
    # per-model ridge regressors are independent, so one fit on all models serves every pool
    ridge = supervised_ridge(ctx.prep.x_train, ctx.prep.train.quality, ctx.prep.train.cost, data.cost_scale)
    pred = ridge.quality(data.X)
    train_mean = ctx.prep.train.quality.mean(axis=0)
    rows = []
    for m in tqdm(sizes, desc="scaling", disable=not ctx.progress):
        acc: dict[str, list[float]] = {}
        for _ in range(int(cfg["pools_per_size"])):
            pool = np.sort(rng.choice(k, size=m, replace=False))
            Qp = data.Q[:, pool]
            oracle = float(Qp.max(axis=1).mean())
            rand = float(Qp.mean())
            vals = {
                "oracle": oracle,
                "random": rand,
                "best_single": float(Qp[:, int(np.argmax(train_mean[pool]))].mean()),
                "learned_router": float(Qp[np.arange(len(Qp)), pred[:, pool].argmax(axis=1)].mean()),
            }
            for p in shares:
                vals[f"r_o({p})"] = p * oracle + (1 - p) * rand
            for key, v in vals.items():
                acc.setdefault(key, []).append(v)
        rows.append({"pool_size": m, **{key: float(np.mean(v)) for key, v in acc.items()}})
    names = [c for c in rows[0] if c != "pool_size"]
    plot = {
        "file": "scaling.png",
        "title": "Model-level scaling (RouterEval): mean over random pools",
        "xlabel": "models in the pool",
        "ylabel": "test quality",
        "series": {n: {"x": [r["pool_size"] for r in rows], "y": [r[n] for r in rows], "marker": "o"} for n in names},
    }
    return {"tables": {"by pool size": rows}, "plots": [plot]}
