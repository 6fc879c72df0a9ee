"""``online``: a stream of held-out queries; every learner (ours, static baselines and outside peers) sees only
its own choice's feedback. Cumulative regret, moving-average quality and cost, decisions per second. Cascades
among the policies (records with answers) learn from the answers of the models they call and the score of the
answer they return (:func:`simulations.cascade.stream_learners`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from banditroute.bandit import BestSingle
from banditroute.simulations import cascade, stream
from banditroute.simulations.peers import make_peers
from banditroute.simulations.scenarios.common import ma_series, policy, series, test_stream
from banditroute.simulations.simulate import Context


def _warm_rows(ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The train rows every learner is warm-started from (``warm_start_rows`` of them, seeded), or None (cold)."""
    n = int(ctx.cfg.get("warm_start_rows", 0))
    if n <= 0:
        return None
    p = ctx.prep
    idx = np.sort(np.random.default_rng(ctx.seed).permutation(len(p.train))[:n])
    return p.x_train[idx], p.train.quality[idx], p.train.cost[idx]


def _learners(ctx: Context, data: stream.StreamData, lam: float) -> tuple[list[Any], dict[str, str]]:
    """Our policies, the best single model fitted on train (static), and the installed outside peers; with
    ``warm_start_rows``, ours and the peers all start from the same full-information train rows."""
    warm = _warm_rows(ctx)
    learners: list[Any] = []
    for n in ctx.cfg["policies"]:
        if cascade.is_cascade(n):  # run by cascade.stream_learners: it reads the models' answers
            continue
        p = policy(ctx, n)
        if warm is not None:
            p.fit_full(*warm)
        learners.append(stream.PolicyLearner(n, p, lam))
    best = BestSingle(data.models, data.X.shape[1], cost_scale=data.cost_scale, explore_floor=0.0, seed=ctx.seed)
    best.fit_full(ctx.prep.x_train, ctx.prep.train.quality, ctx.prep.train.cost)
    learners.append(stream.PolicyLearner("best-single (train)", best, lam, learn=False))
    peers, skipped = make_peers(list(ctx.cfg.get("peers", [])), len(data.models), ctx.seed, lam, data.cost_scale)
    if warm is not None:
        for peer in peers:
            peer.warm_start(*warm)
    return [*learners, *peers], skipped


def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.cfg
    data = test_stream(ctx)
    lam = float(cfg.get("lam", 0.0))
    steps = int(cfg["steps"])
    idx = stream.order(len(data.X), steps, ctx.seed)
    learners, skipped = _learners(ctx, data, lam)
    rows, plots_regret, plots_q, plots_c = [], {}, {}, {}
    window = int(cfg.get("window", 200))
    for learner in tqdm(learners, desc="online", disable=not ctx.progress):
        n = steps if not learner.name.startswith("mabwiser") else min(steps, int(cfg.get("peer_steps", steps)))
        r = stream.run(learner, data, idx[:n], lam)
        rows.append(
            {
                "learner": learner.name,
                "steps": n,
                "final_regret": float(r.regret[-1]),
                "regret_per_step": float(r.regret[-1] / n),
                "quality": float(r.quality.mean()),
                "cost_usd": float(r.cost.mean()),
                "decisions_per_second": round(r.decisions_per_second, 1),
            }
        )
        plots_regret[learner.name] = series(r.regret)
        plots_q[learner.name] = ma_series(r.quality, window)
        plots_c[learner.name] = ma_series(r.cost, window)
        if hasattr(learner, "close"):
            learner.close()
    casc, casc_skipped = cascade.stream_learners(ctx, [n for n in cfg["policies"] if cascade.is_cascade(n)], idx, lam)
    skipped.update(casc_skipped)
    for name, tr, secs in casc:  # a cascade's reward: its returned answer's score less lam x every call's cost
        best = (data.Q[idx] - lam * data.C[idx] / data.cost_scale).max(axis=1)
        regret = np.cumsum(best - (tr["quality"] - lam * tr["cost"] / data.cost_scale))
        rows.append(
            {
                "learner": name,
                "steps": steps,
                "final_regret": float(regret[-1]),
                "regret_per_step": float(regret[-1] / steps),
                "quality": float(tr["quality"].mean()),
                "cost_usd": float(tr["cost"].mean()),
                "decisions_per_second": round(steps / secs, 1),
                "calls_per_query": float(tr["calls"].mean()),
                "stages_per_query": float(tr["stages"].mean()),
            }
        )
        plots_regret[name] = series(regret)
        plots_q[name] = ma_series(tr["quality"], window)
        plots_c[name] = ma_series(tr["cost"], window)
    oracle_q = float(data.Q[idx].max(axis=1).mean())
    return {
        "tables": {"summary": rows, "skipped peers": [{"peer": k, "why": v} for k, v in skipped.items()]},
        "plots": [
            {
                "file": "regret.png",
                "title": "Cumulative regret against the oracle",
                "xlabel": "step",
                "ylabel": "cumulative regret",
                "series": plots_regret,
            },
            {
                "file": "quality.png",
                "title": f"Moving-average quality (window {window})",
                "xlabel": "step",
                "ylabel": "quality",
                "series": plots_q,
                "hlines": [[oracle_q, "oracle"]],
            },
            {
                "file": "cost.png",
                "title": f"Moving-average cost (window {window})",
                "xlabel": "step",
                "ylabel": "USD per query",
                "series": plots_c,
            },
        ],
        "reference": {"oracle_quality": oracle_q, "lam": lam},
    }
