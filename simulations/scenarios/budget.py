"""``budget``: hit a mean cost per query. The budget pacer (dual ascent on lambda) against a fixed lambda tuned on
the train split, and against an SB3 agent trained on the budgeted environment: realised spend against the target
over time, and quality at (about) equal spend."""

from __future__ import annotations

from typing import Any

import numpy as np

from banditroute.bandit import BudgetPacer
from banditroute.env.budgeted_env import BudgetedRoutingEnv
from banditroute.simulations import stream
from banditroute.simulations.scenarios.common import ma_series, policy, series, test_stream
from banditroute.simulations.simulate import Context

LAMBDA_GRID = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 61)])


def _warm(ctx: Context) -> Any:
    p = policy(ctx, ctx.cfg.get("policy", "linucb"))
    p.fit_full(ctx.prep.x_train, ctx.prep.train.quality, ctx.prep.train.cost)
    return p


def _fixed_lambda(ctx: Context, target: float) -> float:
    """The smallest lambda whose expected mean cost on the train split is at most the target."""
    p = _warm(ctx)
    for lam in LAMBDA_GRID:
        P = p.pmf_batch(ctx.prep.x_train, float(lam))
        if float((P * ctx.prep.train.cost).sum(axis=1).mean()) <= target:
            return float(lam)
    return float(LAMBDA_GRID[-1])


def _rl(ctx: Context, target: float, steps: int) -> dict[str, Any] | None:
    if int(ctx.cfg.get("rl_steps", 0)) <= 0:
        return None
    from stable_baselines3 import A2C, PPO

    from banditroute.simulations.rl import _hyperparameters

    algo = str(ctx.cfg.get("rl_algo", "ppo"))
    cls = {"ppo": PPO, "a2c": A2C}[algo]
    length = int(ctx.cfg.get("rl_episode_length", 64))
    kw = {"episode_length": length, "budget_per_query": target, "cost_scale": ctx.prep.cost_scale}
    env = BudgetedRoutingEnv(ctx.prep.train.quality, ctx.prep.train.cost, ctx.prep.x_train, **kw)
    model = cls(
        "MlpPolicy",
        env,
        seed=ctx.seed,
        verbose=0,
        device="cpu",
        **_hyperparameters(algo, "budgeted", int(ctx.cfg["rl_steps"])),
    )
    model.learn(total_timesteps=int(ctx.cfg["rl_steps"]))
    test_env = BudgetedRoutingEnv(ctx.prep.test.quality, ctx.prep.test.cost, ctx.prep.x_test, **kw)
    q, c = [], []
    ep = 0
    while len(q) < steps:
        obs, _ = test_env.reset(seed=ctx.seed + ep)
        ep += 1
        done = False
        while not done and len(q) < steps:
            a, _ = model.predict(obs, deterministic=True)
            obs, _, term, trunc, info = test_env.step(a)
            q.append(info["quality"])
            c.append(info["cost"])
            done = term or trunc
    return {"quality": np.array(q), "cost": np.array(c)}


def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.cfg
    data = test_stream(ctx)
    steps, window = int(cfg["steps"]), int(cfg.get("window", 200))
    best = int(np.argmax(ctx.prep.train.quality.mean(axis=0)))
    target = float(cfg["target_share"]) * float(ctx.prep.train.cost[:, best].mean())
    idx = stream.order(len(data.X), steps, ctx.seed)
    runs: dict[str, dict[str, np.ndarray]] = {}

    pacer = BudgetPacer(_warm(ctx), target, lr=float(cfg.get("pacer_lr", 0.05)))
    q, c, lams = np.empty(steps), np.empty(steps), np.empty(steps)
    for t, i in enumerate(idx):
        d = pacer.select(data.X[i])
        q[t], c[t], lams[t] = data.Q[i, d.index], data.C[i, d.index], pacer.lam
        pacer.update(data.X[i], d.model, float(q[t]), float(c[t]))
    runs["budget pacer"] = {"quality": q, "cost": c}

    lam = _fixed_lambda(ctx, target)
    r = stream.run(stream.PolicyLearner("fixed", _warm(ctx), lam), data, idx, lam)
    runs[f"fixed lambda {lam:.3g} (tuned on train)"] = {"quality": r["quality"], "cost": r["cost"]}
    rl = _rl(ctx, target, steps)
    if rl is not None:
        runs[f"SB3 {cfg.get('rl_algo', 'ppo')} on the budgeted env"] = rl
    r0 = stream.run(stream.PolicyLearner("unconstrained", _warm(ctx), 0.0), data, idx, 0.0)
    runs["unconstrained (lambda 0)"] = {"quality": r0["quality"], "cost": r0["cost"]}

    rows, spend, quality = [], {}, {}
    for name, v in runs.items():
        mean_cost = float(v["cost"].mean())
        rows.append(
            {
                "method": name,
                "mean_cost_usd": mean_cost,
                "target_usd": target,
                "deviation_from_target": (mean_cost - target) / target,
                "quality": float(v["quality"].mean()),
            }
        )
        running = np.cumsum(v["cost"]) / np.arange(1, v["cost"].size + 1)
        spend[name] = series(running)
        quality[name] = ma_series(v["quality"], window)
    return {
        "tables": {"summary": rows},
        "plots": [
            {
                "file": "spend.png",
                "title": "Realised mean cost per query against the target",
                "xlabel": "step",
                "ylabel": "running mean USD per query",
                "series": spend,
                "hlines": [[target, "target"]],
            },
            {
                "file": "quality.png",
                "title": f"Moving-average quality (window {window})",
                "xlabel": "step",
                "ylabel": "quality",
                "series": quality,
            },
            {
                "file": "lambda.png",
                "title": "The pacer's lambda",
                "xlabel": "step",
                "ylabel": "lambda",
                "series": {"budget pacer": series(lams)},
            },
        ],
        "reference": {"target_usd": target, "best_single_model": data.models[best]},
    }
