"""``budget``: hit a mean cost per query. The budget pacer (dual ascent on lambda) against a fixed lambda tuned on
the train split, and against an SB3 agent trained on the budgeted environment: realised spend against the target
over time, and quality at (about) equal spend."""

from __future__ import annotations

from typing import Any

import numpy as np

from banditroute.bandit import BudgetPacer
from banditroute.env.budgeted_env import BudgetedRoutingEnv, calibrate_dual
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


def _rl(ctx: Context, target: float, steps: int) -> dict[str, np.ndarray] | None:
    """An SB3 agent trained on the budgeted env of the train split, rolled out for ``steps`` test queries."""
    if int(ctx.cfg.get("rl_steps", 0)) <= 0:
        return None
    from banditroute.simulations.rl import make_agent, rollout

    length = int(ctx.cfg.get("rl_episode_length", 64))
    prep = ctx.prep
    kw: dict[str, Any] = {"episode_length": length, "budget_per_query": target, "cost_scale": prep.cost_scale}
    env = BudgetedRoutingEnv(prep.train.quality, prep.train.cost, prep.x_train, **kw)
    agent = make_agent(str(ctx.cfg.get("rl_algo", "ppo")), "budgeted", env, int(ctx.cfg["rl_steps"]), ctx.seed)
    agent.learn(total_timesteps=int(ctx.cfg["rl_steps"]))
    # the budget's price, frozen on the test stream, is calibrated on the train split for the agent's deterministic
    # actions: the price training ended at is what its sampled actions paid, and the argmax spends less
    dual, pace = calibrate_dual(
        lambda obs: int(agent.predict(obs, deterministic=True)[0]),
        prep.train.quality,
        prep.train.cost,
        prep.x_train,
        seed=ctx.seed,
        **kw,
    )
    ctx.notes.append(f"PPO's dual price {dual:.3g}, calibrated on the train split (spend pace there {pace:.3f})")
    kw.update(initial_dual=dual, dual_lr=0.0)
    test_env = BudgetedRoutingEnv(prep.test.quality, prep.test.cost, prep.x_test, **kw)
    r = rollout(agent, test_env, ctx.seed, steps=steps)
    return {"quality": r["quality"], "cost": r["cost"]}


def _runs(ctx: Context, data: stream.StreamData, idx: np.ndarray, target: float) -> tuple[dict[str, Any], np.ndarray]:
    """Quality and cost per step of each method, and the pacer's lambda per step."""
    runs: dict[str, dict[str, np.ndarray]] = {}
    paced = stream.PacedLearner(
        "budget pacer", BudgetPacer(_warm(ctx), target, lr=float(ctx.cfg.get("pacer_lr", 0.05)))
    )
    r = stream.run(paced, data, idx)
    runs["budget pacer"] = {"quality": r.quality, "cost": r.cost}
    lam = _fixed_lambda(ctx, target)
    r = stream.run(stream.PolicyLearner("fixed", _warm(ctx), lam), data, idx, lam)
    runs[f"fixed lambda {lam:.3g} (tuned on train)"] = {"quality": r.quality, "cost": r.cost}
    rl = _rl(ctx, target, idx.size)
    if rl is not None:
        runs[f"SB3 {ctx.cfg.get('rl_algo', 'ppo')} on the budgeted env"] = rl
    r = stream.run(stream.PolicyLearner("unconstrained", _warm(ctx), 0.0), data, idx, 0.0)
    runs["unconstrained (lambda 0)"] = {"quality": r.quality, "cost": r.cost}
    return runs, np.array(paced.lams)


def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.cfg
    data = test_stream(ctx)
    steps, window = int(cfg["steps"]), int(cfg.get("window", 200))
    best = int(np.argmax(ctx.prep.train.quality.mean(axis=0)))
    target = float(cfg["target_share"]) * float(ctx.prep.train.cost[:, best].mean())
    idx = stream.order(len(data.X), steps, ctx.seed)
    runs, lams = _runs(ctx, data, idx, target)
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
