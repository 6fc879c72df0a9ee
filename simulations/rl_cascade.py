"""SB3 agents on the cascade environment: training on the train split, one episode per test query, the fixed
pair + escalate-on-disagreement baseline beside them, and the masked ONNX export.

Imported by :mod:`simulations.rl` (``train-rl --env cascade``); imports stable_baselines3 (and sb3_contrib for
``maskable-ppo``) only inside functions. The exported cascade agent is an ONNX graph with two inputs,
``obs: (batch, d) float32`` and ``action_mask: (batch, A) float32`` (1 = valid, the env's ``action_masks()``),
and outputs ``action: (batch,) int64`` (the best valid action) and ``scores: (batch, A) float32`` (logits,
invalid ones set to -1e9); ``action`` is SB3's ``predict(obs, action_masks=mask, deterministic=True)``.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from banditroute.env.cascade_env import CascadeRoutingEnv
from banditroute.env.defaults import cascade_tables, default_candidates
from banditroute.simulations.data import Prepared


@dataclass(frozen=True)
class CascadeSplit:
    """The cascade envs of a prepared split: ``train`` and ``test`` on the same candidates and cost scale."""

    train: CascadeRoutingEnv
    test: CascadeRoutingEnv
    candidates: tuple[str, ...]


def cascade_split(
    prep: Prepared,
    *,
    lam: float,
    candidates: Sequence[str] | None = None,
    groups: Sequence[Sequence[str]] | None = None,
    returns: str = "compact",
) -> CascadeSplit:
    """Train and test cascade envs on ``prep``: ``candidates`` (default: the env's default choice on the train
    split), cheapest first; ``cost_scale``: the dearest candidate's train mean cost. ``groups`` None is the
    two-stage layout: every candidate but the dearest in parallel, then the dearest; with ``returns="compact"``
    the agent decides, after the first stage, between the plurality, escalating, and (after escalating) the
    dearest model's answer. That layout learns in 50k steps where one model per stage does not (PPO settles on
    calling one model: benchmarks/cascade_rl.py); pass ``groups=[[m] for m in candidates]`` and
    ``returns="each"`` for the env's general form."""
    names = list(candidates) if candidates else default_candidates(prep.train)
    unknown = [m for m in names if m not in prep.train.models]
    if unknown:
        raise ValueError(f"candidates {unknown} are not among the records' models {list(prep.train.models)}")
    train_cost = prep.train.select_models(names).cost.mean(axis=0)
    names = [names[j] for j in np.argsort(train_cost, kind="stable")]
    if groups is None:
        groups = [names[:-1], names[-1:]]
    kwargs: dict[str, Any] = {"lam": lam, "cost_scale": float(train_cost.max()), "groups": groups, "returns": returns}
    train = CascadeRoutingEnv(features=prep.x_train, **cascade_tables(prep.train, names), **kwargs)
    test = CascadeRoutingEnv(features=prep.x_test, **cascade_tables(prep.test, names), **kwargs)
    return CascadeSplit(train, test, tuple(names))


def masked(agent: Any) -> bool:
    """Whether ``agent`` takes action masks (sb3-contrib's MaskablePPO)."""
    return type(agent).__name__.startswith("Maskable")


def run_episodes(agent: Any, env: CascadeRoutingEnv) -> dict[str, Any]:
    """One deterministic episode of ``agent`` per query of ``env``, in order. Per query: ``quality``, ``cost``
    (USD), ``calls``, ``stages``, ``called: (n, k)``; and every decision's ``obs`` and ``mask`` (for the ONNX
    parity check)."""
    n, k = env.quality.shape
    q, c, calls, stages = np.zeros(n), np.zeros(n), np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    called = np.zeros((n, k), dtype=bool)
    obs_seen: list[np.ndarray] = []
    masks_seen: list[np.ndarray] = []
    use_mask = masked(agent)
    for i in range(n):
        obs, _ = env.reset(options={"query_index": i})
        done, info = False, dict[str, Any]()
        while not done:
            mask = env.action_masks()
            obs_seen.append(obs)
            masks_seen.append(mask)
            kw = {"action_masks": mask} if use_mask else {}
            action, _ = agent.predict(obs, deterministic=True, **kw)
            obs, _, done, _, info = env.step(action)
        q[i], c[i], calls[i], stages[i] = info["quality"], info["cost"], info["calls"], info["stages"]
        called[i] = env.called
    return {
        "quality": q,
        "cost": c,
        "calls": calls,
        "stages": stages,
        "called": called,
        "obs": np.array(obs_seen, dtype=np.float32),
        "mask": np.array(masks_seen, dtype=bool),
    }


def summary(
    quality: np.ndarray, cost: np.ndarray, calls: np.ndarray, stages: np.ndarray, ref: dict[str, float]
) -> dict[str, float]:
    """Mean quality and cost of a cascade on the test split, against the best single model's ``ref``."""
    return {
        "mean_quality": float(np.mean(quality)),
        "mean_cost_usd": float(np.mean(cost)),
        "v_b": float(np.mean(quality)) / ref["mean_quality"],
        "cost_share": float(np.mean(cost)) / ref["mean_cost_usd"],
        "calls_per_query": float(np.mean(calls)),
        "stages_per_query": float(np.mean(stages)),
    }


def pair_rule(env: CascadeRoutingEnv, pair: tuple[int, int], last: int) -> dict[str, np.ndarray]:
    """Call ``pair`` in parallel; when their answers agree return it, else call ``last`` and return its answer."""
    a, b = pair
    agree = env.agreement[:, a, b]
    n = len(agree)
    rows = np.arange(n)
    # agreeing answers: the score of the dearer of the two that gave it (the env's rule for a shared answer)
    dearer = a if env.dearness[a] > env.dearness[b] else b
    quality = np.where(agree, env.quality[rows, dearer], env.quality[rows, last])
    cost = env.cost[:, a] + env.cost[:, b] + np.where(agree, 0.0, env.cost[:, last])
    return {
        "quality": quality,
        "cost": cost,
        "calls": np.where(agree, 2, 3),
        "stages": np.where(agree, 1, 2),
    }


def fixed_pair_baseline(split: CascadeSplit, lam: float, ref: dict[str, float]) -> dict[str, Any]:
    """The fixed pair + escalate-on-disagreement rule: the last stage is the candidate best on train; the pair
    (two of the others) is the one with the best train reward ``quality - lam * cost / cost_scale``."""
    tr, te = split.train, split.test
    last = int(np.argmax(tr.quality.mean(axis=0)))
    others = [j for j in range(len(split.candidates)) if j != last]
    best: tuple[float, tuple[int, int]] | None = None
    for pair in itertools.combinations(others, 2):
        r = pair_rule(tr, pair, last)
        value = float(np.mean(r["quality"] - lam * r["cost"] / tr.cost_scale))
        if best is None or value > best[0]:
            best = (value, pair)
    if best is None:
        raise ValueError("the fixed-pair baseline needs at least three candidates")
    pair = best[1]
    r = pair_rule(te, pair, last)
    return {
        "pair": [split.candidates[pair[0]], split.candidates[pair[1]]],
        "escalate_to": split.candidates[last],
        **summary(r["quality"], r["cost"], r["calls"], r["stages"], ref),
    }


def export_masked_onnx(model: Any, obs_dim: int, n_actions: int, path: str | Path) -> Path:
    """Export an actor-critic SB3 agent with its action mask as an input (see the module docstring)."""
    import torch

    policy = model.policy

    class MaskedScores(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.policy = policy

        def forward(self, obs: torch.Tensor, action_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.policy.extract_features(obs, self.policy.pi_features_extractor)
            logits = self.policy.action_net(self.policy.mlp_extractor.forward_actor(features))
            scores = torch.where(action_mask > 0.5, logits, torch.full_like(logits, -1e9))
            return torch.argmax(scores, dim=1), scores

    path = Path(path)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec")
        # obs and action_mask share the batch axis on purpose: torch notes that it keeps one name for both
        warnings.filterwarnings("ignore", category=UserWarning, message=".*axis name.*will not be used")
        batch = torch.export.Dim("batch")
        program = torch.onnx.export(
            MaskedScores().eval(),
            (torch.zeros(2, obs_dim), torch.ones(2, n_actions)),
            input_names=["obs", "action_mask"],
            output_names=["action", "scores"],
            dynamic_shapes={"obs": {0: batch}, "action_mask": {0: batch}},
            dynamo=True,
            verbose=False,
            report=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path))
    return path


def onnx_masked_actions(path: str | Path, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Actions ``(n,)`` of an exported cascade agent, computed by onnxruntime."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"obs": np.asarray(obs, dtype=np.float32), "action_mask": np.asarray(mask, dtype=np.float32)}
    return np.asarray(session.run(["action"], feeds)[0], dtype=np.int64)


def evaluate_on_test(agent: Any, split: CascadeSplit, ref: dict[str, float], lam: float) -> dict[str, Any]:
    """The agent's episodes on every test query, summarised beside the fixed-pair baseline; and the decisions'
    observations and masks."""
    r = run_episodes(agent, split.test)
    called_share = r["called"].mean(axis=0)
    metrics = {
        **summary(r["quality"], r["cost"], r["calls"], r["stages"], ref),
        "called_share": dict(zip(split.candidates, called_share.tolist(), strict=True)),
        "fixed_pair": fixed_pair_baseline(split, lam, ref),
    }
    return {"metrics": metrics, "obs": r["obs"], "mask": r["mask"]}


def export_cascade_checked(agent: Any, obs: np.ndarray, mask: np.ndarray, out: Path) -> np.ndarray:
    """Export ``out/policy.onnx`` (with the mask as an input for a maskable agent) and check that onnxruntime
    acts as SB3 does at every decision of the test episodes; returns those observations."""
    from banditroute.simulations.rl import export_onnx, onnx_actions  # rl imports this module at its top

    n_actions = int(agent.action_space.n)
    if masked(agent):
        export_masked_onnx(agent, obs.shape[1], n_actions, out / "policy.onnx")
        sb3_actions, _ = agent.predict(obs, action_masks=mask, deterministic=True)
        ort_actions = onnx_masked_actions(out / "policy.onnx", obs, mask)
    else:  # invalid actions are the env's to replace: the graph is the plain one
        export_onnx(agent, obs.shape[1], out / "policy.onnx")
        sb3_actions, _ = agent.predict(obs, deterministic=True)
        ort_actions = onnx_actions(out / "policy.onnx", obs)
    mismatches = int((np.asarray(sb3_actions) != ort_actions).sum())
    if mismatches:
        raise RuntimeError(f"ONNX export disagrees with SB3 on {mismatches} of {len(obs)} cascade decisions")
    return obs
