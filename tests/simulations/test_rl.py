"""A short SB3 run on a tiny slice, its ONNX export and the parity check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from banditroute.env.features import FeaturizerSpec

pytest.importorskip("stable_baselines3")

from banditroute.simulations.rl import onnx_actions, train_rl


@pytest.mark.parametrize(("algo", "env_kind"), [("ppo", "routing"), ("dqn", "routing"), ("a2c", "budgeted")])
def test_short_training_run_writes_metrics_and_a_faithful_onnx(
    mmlu_slice: Path, tmp_path: Path, algo: str, env_kind: str
) -> None:
    out = tmp_path / algo
    m = train_rl(
        mmlu_slice,
        algo=algo,
        env_kind=env_kind,
        steps=1024,
        out=out,
        seed=0,
        spec=FeaturizerSpec(dim=16, max_features=2000),
        progress_bar=False,
    )
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(m))
    assert saved["onnx_parity"]["mismatches"] == 0 and saved["onnx_parity"]["contexts"] == 120
    assert saved["torch_threads"] == 1
    assert set(saved["test"]["call_share"]) == set(saved["models"])
    assert sum(saved["test"]["call_share"].values()) == pytest.approx(1.0)
    for name in ("agent.zip", "policy.onnx", "featurizer.json", "featurizer.npz"):
        assert (out / name).exists()


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
