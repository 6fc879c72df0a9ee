"""``ope``: do the off-policy estimators' intervals contain the truth? See configs/ope.toml."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from banditroute.bandit import LinUCB
from banditroute.simulations import stream
from banditroute.simulations.ope import Logged, estimate
from banditroute.simulations.scenarios.common import test_stream
from banditroute.simulations.simulate import Context


def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.cfg
    data = test_stream(ctx)
    d = data.X.shape[1]
    cand = LinUCB(data.models, d, alpha=0.0, explore_floor=float(cfg["candidate_floor"]), cost_scale=data.cost_scale)
    cand.fit_full(ctx.prep.x_train, ctx.prep.train.quality, ctx.prep.train.cost)
    rows, hits = [], {"ips": 0, "snips": 0, "dr": 0}
    seeds = int(cfg["seeds"])
    for s in tqdm(range(seeds), desc="ope coverage", disable=not ctx.progress):
        seed = ctx.seed + s
        logger = LinUCB(
            data.models, d, alpha=0.05, explore_floor=float(cfg["logger_floor"]), seed=seed, cost_scale=data.cost_scale
        )
        idx = stream.order(len(data.X), int(cfg["steps"]), seed)
        r = stream.run(stream.PolicyLearner("logger", logger), data, idx)
        logged = Logged(data.X[idx], r.chosen, r.propensity, r.quality, data.models)
        pmf = cand.pmf_batch(data.X[idx], 0.0)
        truth = float((pmf * data.Q[idx]).sum(axis=1).mean())
        est = estimate(logged, pmf, n_boot=int(cfg["bootstrap"]), seed=seed)
        row: dict[str, Any] = {
            "seed": seed,
            "truth": truth,
            "logged_mean": est["logged_mean_reward"],
            "ess": est["ess"],
        }
        for key in hits:
            lo, hi = est[key]["ci95"]
            hit = lo <= truth <= hi
            hits[key] += hit
            row[key] = est[key]["value"]
            row[f"{key}_covers"] = hit
        rows.append(row)
    coverage = {k: v / seeds for k, v in hits.items()}
    need = float(cfg.get("required_coverage", 0.9))
    return {
        "tables": {"per seed": rows, "coverage": [{"estimator": k, "coverage": v} for k, v in coverage.items()]},
        "checks": {f"{k}_coverage_at_least_{need}": bool(v >= need) for k, v in coverage.items()},
        "coverage": coverage,
        "plots": [],
    }
