"""Stable-Baselines3 agents on the routing environments, and their ONNX export.

The only modules that import stable_baselines3 (and torch): this one and :mod:`.rl_cascade` (``--env cascade``,
with sb3-contrib's MaskablePPO as ``maskable-ppo``). An exported agent is an ONNX graph with one input
``obs: (batch, d) float32`` and two outputs ``action: (batch,) int64`` and ``scores: (batch, k) float32``
(policy logits for PPO/A2C, Q-values for DQN); ``action`` is the argmax of ``scores``, i.e. SB3's
``predict(obs, deterministic=True)``.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from banditroute.env.budgeted_env import BudgetedRoutingEnv
from banditroute.env.features import FeaturizerSpec
from banditroute.env.routing_env import RoutingEnv
from banditroute.simulations.data import DataOptions, Prepared, prepare
from banditroute.simulations.rl_cascade import cascade_split, evaluate_on_test, export_cascade_checked

ALGOS = ("ppo", "a2c", "dqn", "maskable-ppo")
ENVS = ("routing", "budgeted", "cascade")


def make_env(kind: str, quality: np.ndarray, cost: np.ndarray, features: np.ndarray, **kwargs: Any) -> Any:
    """A routing or budgeted env on the given arrays."""
    if kind == "routing":
        return RoutingEnv(quality, cost, features, **kwargs)
    if kind == "budgeted":
        return BudgetedRoutingEnv(quality, cost, features, **kwargs)
    raise ValueError(f"env must be one of {ENVS}, got {kind!r}")


def algo_class(algo: str) -> Any:
    from stable_baselines3 import A2C, DQN, PPO

    if algo == "maskable-ppo":
        try:
            from sb3_contrib import MaskablePPO
        except ImportError as exc:
            raise ValueError("algo maskable-ppo needs sb3-contrib: pip install 'banditroute[rl]'") from exc
        return MaskablePPO
    classes = {"ppo": PPO, "a2c": A2C, "dqn": DQN}
    if algo not in classes:
        raise ValueError(f"algo must be one of {ALGOS}, got {algo!r}")
    return classes[algo]


def hyperparameters(algo: str, env_kind: str, steps: int) -> dict[str, Any]:
    # Routing is a one-step bandit: gamma = 0 makes the advantage r - V(s) exactly. A cascade episode is a few
    # steps whose return (score - lam * cost) is the objective itself: undiscounted.
    gamma = {"routing": 0.0, "cascade": 1.0}.get(env_kind, 0.99)
    if algo in ("ppo", "maskable-ppo") and env_kind == "cascade":
        return CASCADE_PPO
    if algo == "ppo":
        return {
            "n_steps": 256,
            "batch_size": 64,
            "n_epochs": 4,
            "learning_rate": 1e-3,
            "gamma": gamma,
            "ent_coef": 0.01,
            "policy_kwargs": {"net_arch": [64, 64]},
        }
    if algo == "a2c":
        return {
            "n_steps": 16,
            "learning_rate": 1e-3,
            "gamma": gamma,
            "ent_coef": 0.01,
            "policy_kwargs": {"net_arch": [64, 64]},
        }
    return {
        "learning_rate": 1e-3,
        "gamma": gamma,
        "buffer_size": max(1000, min(steps, 100_000)),
        "learning_starts": min(1000, steps // 10),
        "exploration_fraction": 0.3,
        "target_update_interval": 500,
        "train_freq": 4,
        "policy_kwargs": {"net_arch": [64, 64]},
    }


#: PPO on the cascade env (tuned on train splits only: benchmarks/cascade_rl.py), over CASCADE_ENVS copies of
#: the env stepped together (one batched forward pass per step of all of them)
CASCADE_ENVS = 8
CASCADE_PPO: dict[str, Any] = {
    "n_steps": 256,
    "batch_size": 256,
    "n_epochs": 4,
    "learning_rate": 3e-4,
    "gamma": 1.0,
    "gae_lambda": 1.0,
    "ent_coef": 0.01,
    "policy_kwargs": {"net_arch": [64, 64]},
}


def _same(env: Any) -> Any:
    return env


def make_agent(algo: str, env_kind: str, env: Any, steps: int, seed: int) -> Any:
    """An untrained SB3 agent of ``algo`` on ``env`` with this project's hyperparameters for ``steps`` steps."""
    cls = algo_class(algo)
    if env_kind == "cascade":
        from stable_baselines3.common.vec_env import DummyVecEnv

        copies = [env, *(env.spawn() for _ in range(CASCADE_ENVS - 1))]
        env = DummyVecEnv([functools.partial(_same, e) for e in copies])
    return cls("MlpPolicy", env, seed=seed, verbose=0, device="cpu", **hyperparameters(algo, env_kind, steps))


class _ScoreNet:
    """Builds the torch module ``obs -> (argmax action, scores)`` of a trained SB3 agent."""

    @staticmethod
    def build(model: Any) -> Any:
        import torch

        policy = model.policy

        class Scores(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.policy = policy

            def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                if hasattr(self.policy, "q_net"):  # DQN
                    scores = self.policy.q_net(obs)
                else:  # actor-critic: the action distribution's logits
                    features = self.policy.extract_features(obs, self.policy.pi_features_extractor)
                    latent_pi = self.policy.mlp_extractor.forward_actor(features)
                    scores = self.policy.action_net(latent_pi)
                return torch.argmax(scores, dim=1), scores

        return Scores().eval()


def export_onnx(model: Any, obs_dim: int, path: str | Path) -> Path:
    """Export a trained SB3 agent as ONNX (see the module docstring for the graph's signature)."""
    import torch

    path = Path(path)
    net = _ScoreNet.build(model)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        # torch's own exporter internals; not our code and not actionable here.
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec")
        program = torch.onnx.export(
            net,
            (torch.zeros(2, obs_dim, dtype=torch.float32),),
            input_names=["obs"],
            output_names=["action", "scores"],
            dynamic_shapes={"obs": {0: torch.export.Dim("batch")}},
            dynamo=True,
            verbose=False,
            report=False,
        )
    if program is None:  # torch returns None only for the legacy (non-dynamo) exporter
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path))
    return path


def onnx_actions(path: str | Path, obs: np.ndarray) -> np.ndarray:
    """Actions ``(n,)`` of an exported agent on ``obs: (n, d)``, computed by onnxruntime."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["action"], {"obs": np.asarray(obs, dtype=np.float32)})[0], dtype=np.int64)


def rollout(
    agent: Any, env: Any, seed: int, *, episodes: int | None = None, steps: int | None = None
) -> dict[str, np.ndarray]:
    """Roll a trained agent (deterministic actions) through ``env`` for ``episodes`` episodes or ``steps`` steps
    (whichever ends first; episode ``e`` is reset with ``seed + e``). Per step: ``quality``, ``cost`` and
    ``action`` (the model that answered, after any fallback)."""
    if episodes is None and steps is None:
        raise ValueError("rollout needs episodes or steps")
    q: list[float] = []
    c: list[float] = []
    acted: list[int] = []
    ep = 0
    while (episodes is None or ep < episodes) and (steps is None or len(q) < steps):
        obs, _ = env.reset(seed=seed + ep)
        ep += 1
        done = False
        while not done and (steps is None or len(q) < steps):
            action, _ = agent.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            q.append(info["quality"])
            c.append(info["cost"])
            acted.append(int(info.get("action_taken", action)))
            done = terminated or truncated
    return {"quality": np.array(q), "cost": np.array(c), "action": np.array(acted, dtype=np.int64)}


def trained_dual(agent: Any) -> tuple[float, float]:
    """The budget's dual price the agent's training env ended at, and its bound (frozen for evaluation)."""
    env = agent.get_env()
    return float(env.get_attr("dual")[0]), float(env.get_attr("dual_max")[0])


def _budget_test(agent: Any, prep: Prepared, episodes: int, seed: int, **env_kwargs: Any) -> dict[str, Any]:
    """The agent's figures on the test split's budgeted env (``episodes`` seeded episodes), at the dual price its
    training ended at, frozen."""
    dual, dual_max = trained_dual(agent)
    env_kwargs = {**env_kwargs, "initial_dual": dual, "dual_max": dual_max, "dual_lr": 0.0}
    env = BudgetedRoutingEnv.from_records(prep.test, prep.x_test, **env_kwargs)
    r = rollout(agent, env, seed, episodes=episodes)
    counts = np.bincount(r["action"], minlength=prep.test.n_models)
    return {
        "mean_quality": float(np.mean(r["quality"])),
        "mean_cost_usd": float(np.mean(r["cost"])),
        "call_share": dict(zip(prep.test.models, (counts / counts.sum()).tolist(), strict=True)),
        "episodes": episodes,
        "budget_per_query_usd": env.budget / env.episode_length,
        "spend_share_of_budget": float(np.mean(r["cost"])) / (env.budget / env.episode_length),
        "dual": dual,
    }


def train_rl(
    records_path: str | Path,
    *,
    algo: str = "ppo",
    env_kind: str = "routing",
    steps: int = 20_000,
    out: str | Path,
    seed: int = 0,
    test_frac: float = 0.3,
    lam: float = 0.0,
    models: list[str] | None = None,
    spec: FeaturizerSpec | None = None,
    options: DataOptions | None = None,
    torch_threads: int = 1,
    progress_bar: bool = True,
    budget_per_query: float | None = None,
    candidates: list[str] | None = None,
    groups: list[list[str]] | None = None,
    returns: str = "compact",
) -> dict[str, Any]:
    """Train an SB3 agent on the train split, evaluate on the test split, save it and export it to ONNX: writes
    ``out/agent.zip`` (SB3's own format), ``out/policy.onnx``, ``out/featurizer.{json,npz}`` and
    ``out/metrics.json``; returns the metrics. The cascade env (``candidates``, ``groups``, ``returns``: see
    :func:`.rl_cascade.cascade_split`) is evaluated with one episode per test query, beside the fixed pair +
    escalate-on-disagreement baseline.

    Raises:
        RuntimeError: the ONNX export chooses a different action than SB3 on some test context.
    """
    import torch

    _check_arguments(algo, env_kind, steps)
    torch.set_num_threads(max(1, int(torch_threads)))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prep = prepare(records_path, seed=seed, test_frac=test_frac, models=models, spec=spec, options=options)
    env_kwargs: dict[str, Any] = {"lam": lam, "cost_scale": prep.cost_scale, "models": prep.train.models}
    if env_kind == "budgeted" and budget_per_query is not None:
        env_kwargs["budget_per_query"] = budget_per_query
    if env_kind == "cascade":
        split = cascade_split(prep, lam=lam, candidates=candidates, groups=groups, returns=returns)
        train_env = split.train
    else:
        train_env = make_env(env_kind, prep.train.quality, prep.train.cost, prep.x_train, **env_kwargs)
    agent, train_seconds = _train(algo, env_kind, train_env, steps, seed, progress_bar, out)
    prep.featurizer.save(out)
    refs = _references(prep)
    if env_kind == "cascade":
        cascade = evaluate_on_test(agent, split, refs["best_single"], lam)
        test_obs = export_cascade_checked(agent, cascade["obs"], cascade["mask"], out)
    else:
        test_obs, ort_actions = _export_checked(agent, env_kind, prep, out)

    metrics: dict[str, Any] = {
        "records": str(records_path),
        "algo": algo,
        "env": env_kind,
        "steps": steps,
        "seed": seed,
        "lam": lam,
        "cost_scale": split.train.cost_scale if env_kind == "cascade" else prep.cost_scale,
        "models": list(prep.test.models),
        "n_train": len(prep.train),
        "n_test": len(prep.test),
        "train_seconds": round(train_seconds, 2),
        "torch_threads": torch.get_num_threads(),
        "onnx_parity": {"contexts": len(test_obs), "mismatches": 0},
        **refs,
    }
    if env_kind == "cascade":
        metrics["candidates"] = list(split.candidates)
        metrics["test"] = cascade["metrics"]
    elif env_kind == "routing":
        metrics["test"] = _routing_test(prep, ort_actions)
    else:
        kwargs = {k: v for k, v in env_kwargs.items() if k != "models"}
        metrics["test"] = _budget_test(agent, prep, episodes=20, seed=seed, **kwargs)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _train(
    algo: str, env_kind: str, train_env: Any, steps: int, seed: int, progress_bar: bool, out: Path
) -> tuple[Any, float]:
    """An agent trained on the train split's env, saved as ``out/agent.zip``; and the training seconds."""
    agent = make_agent(algo, env_kind, train_env, steps, seed)
    t0 = time.perf_counter()
    agent.learn(total_timesteps=steps, progress_bar=progress_bar)
    seconds = time.perf_counter() - t0
    agent.save(out / "agent.zip")
    return agent, seconds


def _check_arguments(algo: str, env_kind: str, steps: int) -> None:
    """Bad arguments fail before the records are read."""
    if env_kind not in ENVS:
        raise ValueError(f"env must be one of {ENVS}, got {env_kind!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if algo == "maskable-ppo" and env_kind != "cascade":
        raise ValueError("algo maskable-ppo needs action masks: only --env cascade has them")
    algo_class(algo)


def _export_checked(agent: Any, env_kind: str, prep: Prepared, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Export ``out/policy.onnx`` and check that onnxruntime acts as SB3 does on every test context (at a fresh
    episode's start for the budgeted env); returns the test observations and the ONNX actions on them."""
    export_onnx(agent, int(agent.observation_space.shape[0]), out / "policy.onnx")
    if env_kind == "routing":
        test_obs = prep.x_test.astype(np.float32)
    else:  # the budget part of the observation at a fresh episode's start, at the trained dual price
        dual, dual_max = trained_dual(agent)
        fresh = np.tile([1.0, 1.0, 0.5 + dual / (2.0 * dual_max)], (len(prep.test), 1))
        test_obs = np.hstack([prep.x_test, fresh]).astype(np.float32)
    sb3_actions, _ = agent.predict(test_obs, deterministic=True)
    ort_actions = onnx_actions(out / "policy.onnx", test_obs)
    mismatches = int((np.asarray(sb3_actions) != ort_actions).sum())
    if mismatches:
        raise RuntimeError(f"ONNX export disagrees with SB3 on {mismatches} of {len(test_obs)} test contexts")
    return test_obs, ort_actions


def _routing_test(prep: Prepared, actions: np.ndarray) -> dict[str, Any]:
    """Mean quality, cost and call shares of per-query ``actions: (n_test,)`` on the test split."""
    test = prep.test
    rows = np.arange(len(test))
    counts = np.bincount(actions, minlength=test.n_models)
    return {
        "mean_quality": float(test.quality[rows, actions].mean()),
        "mean_cost_usd": float(test.cost[rows, actions].mean()),
        "call_share": dict(zip(test.models, (counts / counts.sum()).tolist(), strict=True)),
    }


def _references(prep: Prepared) -> dict[str, Any]:
    """Random, the best single model (chosen on train) and the oracle on the test split."""
    test = prep.test
    j = int(np.argmax(prep.train.quality.mean(axis=0)))
    return {
        "random": {"mean_quality": float(test.quality.mean()), "mean_cost_usd": float(test.cost.mean())},
        "best_single": {
            "model": prep.train.models[j],
            "mean_quality": float(test.quality[:, j].mean()),
            "mean_cost_usd": float(test.cost[:, j].mean()),
        },
        "oracle": {"mean_quality": float(test.quality.max(axis=1).mean())},
    }
