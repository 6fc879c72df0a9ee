"""A short SB3 run on a tiny slice, its ONNX export and the parity check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from banditroute.env.budgeted_env import BudgetedRoutingEnv
from banditroute.env.features import FeaturizerSpec
from banditroute.simulations.data import prepare
from banditroute.simulations.evaluate import EvalConfig, evaluate

pytest.importorskip("stable_baselines3")

from banditroute.simulations.rl import algo_class, onnx_actions, rollout, train_rl


@pytest.mark.parametrize(("algo", "env_kind"), [("ppo", "routing"), ("dqn", "routing"), ("a2c", "budgeted")])
def test_short_training_run_writes_metrics_and_a_faithful_onnx(
    mmlu_slice: Path, tmp_path: Path, algo: str, env_kind: str
) -> None:
    out = tmp_path / algo
    spec = FeaturizerSpec(dim=16, max_features=2000)
    m = train_rl(mmlu_slice, algo=algo, env_kind=env_kind, steps=1024, out=out, seed=0, spec=spec, progress_bar=False)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(m))
    assert saved["torch_threads"] == 1
    for name in ("agent.zip", "policy.onnx", "featurizer.json", "featurizer.npz"):
        assert (out / name).exists()

    # faithful: the saved ONNX graph acts as the saved SB3 agent on the test contexts and on random ones
    agent = algo_class(algo).load(out / "agent.zip", device="cpu")
    prep = prepare(mmlu_slice, seed=0, spec=spec)
    if env_kind == "routing":
        obs = prep.x_test
    else:  # a fresh episode's budget and steps, at the dual price the training ended at (dual_max 10)
        fresh = np.tile([1.0, 1.0, 0.5 + saved["test"]["dual"] / 20.0], (len(prep.test), 1))
        obs = np.hstack([prep.x_test, fresh])
    rand = np.random.default_rng(2).uniform(-1, 1, (300, obs.shape[1]))
    for o in (obs.astype(np.float32), rand.astype(np.float32)):
        np.testing.assert_array_equal(onnx_actions(out / "policy.onnx", o), agent.predict(o, deterministic=True)[0])
    assert saved["onnx_parity"] == {"contexts": len(prep.test), "mismatches": 0}

    # the metrics are the agent's figures on the test split, next to references recomputed from the records
    test = prep.test
    assert saved["models"] == list(test.models) and saved["n_test"] == len(test) == 120
    assert saved["random"]["mean_quality"] == pytest.approx(test.quality.mean())
    assert saved["oracle"]["mean_quality"] == pytest.approx(test.quality.max(axis=1).mean())
    if env_kind == "routing":
        actions = onnx_actions(out / "policy.onnx", obs.astype(np.float32))
        expected = test.quality[np.arange(len(test)), actions].mean()
        shares = np.bincount(actions, minlength=test.n_models) / len(test)
    else:
        env_kwargs = {"lam": 0.0, "cost_scale": prep.cost_scale}
        env = BudgetedRoutingEnv.from_records(test, prep.x_test, **env_kwargs)
        r = rollout(agent, env, 0, episodes=saved["test"]["episodes"])
        expected = r["quality"].mean()
        shares = np.bincount(r["action"], minlength=test.n_models) / r["action"].size
        assert saved["test"]["mean_cost_usd"] == pytest.approx(r["cost"].mean())
    assert saved["test"]["mean_quality"] == pytest.approx(expected)
    assert saved["test"]["mean_quality"] <= saved["oracle"]["mean_quality"]
    assert list(saved["test"]["call_share"].values()) == pytest.approx(shares.tolist())


def test_onnx_matches_sb3_on_random_contexts(mmlu_slice: Path, tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    train_rl(
        mmlu_slice,
        algo="ppo",
        steps=512,
        out=tmp_path,
        spec=FeaturizerSpec(dim=16, max_features=2000),
        progress_bar=False,
    )
    model = PPO.load(tmp_path / "agent.zip", device="cpu")
    obs = np.random.default_rng(1).uniform(-1, 1, (500, 16)).astype(np.float32)
    sb3, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(onnx_actions(tmp_path / "policy.onnx", obs), sb3)


def test_bad_arguments(mmlu_slice: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="algo must be one of"):
        train_rl(mmlu_slice, algo="sac", out=tmp_path)
    with pytest.raises(ValueError, match="env must be one of"):
        train_rl(mmlu_slice, env_kind="maze", out=tmp_path)


def test_an_agent_is_evaluated_as_the_registry_onnx_policy(mmlu_slice: Path, tmp_path: Path) -> None:
    spec = FeaturizerSpec(dim=16, max_features=2000)
    m = train_rl(mmlu_slice, algo="ppo", steps=512, out=tmp_path / "agent", spec=spec, progress_bar=False)
    rep = evaluate(
        EvalConfig(
            records=str(mmlu_slice),
            out=str(tmp_path / "eval"),
            dim=8,  # the evaluation's own featurizer: the agent keeps seeing its own (dim 16)
            policies=["linucb"],
            rl_dirs=[str(tmp_path / "agent")],
            progress=False,
        )
    )
    agent = rep["methods"]["rl:ppo:agent"]
    # the same test queries, the agent's own choices: what train-rl measured
    assert agent["quality"] == pytest.approx(m["test"]["mean_quality"])
    assert agent["cost_usd"] == pytest.approx(m["test"]["mean_cost_usd"])
    assert agent["call_share"] == pytest.approx(m["test"]["call_share"])
    curve = rep["curves"]["cost_quality"]["rl:ppo:agent"]["quality"]
    assert curve == [curve[0]] * len(curve)  # lambda was fixed at training


def test_a_short_cascade_run_is_measured_on_every_test_query_beside_the_fixed_pair(
    mmlu_slice: Path, tmp_path: Path
) -> None:
    from banditroute.env.answers import answers_of
    from banditroute.simulations.rl_cascade import cascade_split, onnx_masked_actions, run_episodes

    spec = FeaturizerSpec(dim=16, max_features=2000)
    out = tmp_path / "cascade"
    m = train_rl(mmlu_slice, algo="maskable-ppo", env_kind="cascade", steps=256, lam=0.03, out=out, spec=spec,
                 progress_bar=False)  # fmt: skip
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(m)) and saved["torch_threads"] == 1
    for name in ("agent.zip", "policy.onnx", "featurizer.json", "featurizer.npz"):
        assert (out / name).exists()

    # the metrics are the saved agent's deterministic episodes, one per test query, against the best single model
    agent = algo_class("maskable-ppo").load(out / "agent.zip", device="cpu")
    prep = prepare(mmlu_slice, seed=0, spec=spec)
    split = cascade_split(prep, lam=0.03)
    assert list(split.candidates) == saved["candidates"] and split.test.n_actions == 4  # 2 stages, 2 stops
    r = run_episodes(agent, split.test)
    t, best = saved["test"], saved["best_single"]
    assert t["mean_quality"] == pytest.approx(r["quality"].mean())
    assert t["mean_cost_usd"] == pytest.approx(r["cost"].mean())
    assert t["v_b"] == pytest.approx(r["quality"].mean() / best["mean_quality"])
    assert t["cost_share"] == pytest.approx(r["cost"].mean() / best["mean_cost_usd"])
    assert 1 <= t["calls_per_query"] <= 4 and 1 <= t["stages_per_query"] <= 2
    onnx = onnx_masked_actions(out / "policy.onnx", r["obs"], r["mask"])
    np.testing.assert_array_equal(onnx, agent.predict(r["obs"], action_masks=r["mask"], deterministic=True)[0])
    assert saved["onnx_parity"] == {"contexts": len(r["obs"]), "mismatches": 0}

    # the fixed pair + escalate rule, recomputed from the records' answer letters
    fp, test = t["fixed_pair"], prep.test
    letters = answers_of(test.select_models([*fp["pair"], fp["escalate_to"]])).values
    agree = (letters[:, 0] == letters[:, 1]) & (letters[:, 0] != "")
    q = test.quality[:, [test.models.index(x) for x in (*fp["pair"], fp["escalate_to"])]]
    c = test.cost[:, [test.models.index(x) for x in (*fp["pair"], fp["escalate_to"])]]
    assert fp["mean_quality"] == pytest.approx(np.where(agree, q[:, 1], q[:, 2]).mean())
    assert fp["mean_cost_usd"] == pytest.approx((c[:, 0] + c[:, 1] + np.where(agree, 0, c[:, 2])).mean())


def test_maskable_ppo_needs_the_cascade_env(mmlu_slice: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only --env cascade"):
        train_rl(mmlu_slice, algo="maskable-ppo", env_kind="routing", out=tmp_path)
