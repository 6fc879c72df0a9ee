from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from banditroute.bandit import LinUCB, export
from banditroute.cli import app
from banditroute.simulations.ope import Logged, estimate, load_jsonl


def synthetic(n: int = 4000, seed: int = 0) -> tuple[Logged, np.ndarray, float]:
    """Uniform logging over 3 models whose success rate depends on the context; a target that knows it."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(-1, 1, n), np.ones(n)])
    p_success = np.column_stack([0.5 + 0.4 * X[:, 0], 0.5 - 0.4 * X[:, 0], np.full(n, 0.5)])
    a = rng.integers(3, size=n)
    r = (rng.random(n) < p_success[np.arange(n), a]).astype(float)
    target = np.zeros((n, 3))
    target[np.arange(n), np.where(X[:, 0] > 0, 0, 1)] = 0.9
    target += 0.1 / 3
    truth = float((target * p_success).sum(axis=1).mean())
    return Logged(X, a, np.full(n, 1 / 3), r, ("a", "b", "c")), target, truth


def test_estimators_are_close_to_the_truth_and_intervals_cover_it() -> None:
    logged, target, truth = synthetic()
    est = estimate(logged, target, n_boot=300)
    for key in ("ips", "snips", "dr"):
        lo, hi = est[key]["ci95"]
        assert lo <= truth <= hi, key
        assert est[key]["value"] == pytest.approx(truth, abs=0.03)
    assert est["ess"] < logged.X.shape[0]  # a target unlike the logger has fewer effective samples
    assert est["dr"]["ci95"][1] - est["dr"]["ci95"][0] <= est["ips"]["ci95"][1] - est["ips"]["ci95"][0] + 1e-9


def test_logged_data_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="propensities"):
        Logged(np.ones((2, 2)), np.array([0, 1]), np.array([0.0, 0.5]), np.array([1.0, 0.0]), ("a", "b"))
    with pytest.raises(ValueError, match="agree"):
        Logged(np.ones((2, 2)), np.array([0]), np.array([0.5, 0.5]), np.array([1.0, 0.0]), ("a", "b"))
    (tmp_path / "bad.jsonl").write_text('{"x": [1, 1], "model": "zz", "propensity": 0.5, "reward": 1}\n')
    with pytest.raises(ValueError, match="line 1"):
        load_jsonl(tmp_path / "bad.jsonl", ("a", "b"))


def test_cli_on_a_jsonl_log(tmp_path: Path) -> None:
    logged, _, _ = synthetic(800)
    with open(tmp_path / "log.jsonl", "w") as f:
        for i in range(800):
            f.write(
                json.dumps(
                    {
                        "x": logged.X[i].tolist(),
                        "model": "abc"[logged.actions[i]],
                        "propensity": 1 / 3,
                        "reward": float(logged.reward[i]),
                    }
                )
                + "\n"
            )
    cand = LinUCB(["a", "b", "c"], 2, alpha=0.0)
    cand.fit_full(logged.X[:200], np.eye(3)[np.where(logged.X[:200, 0] > 0, 0, 1)], np.zeros((200, 3)))
    export(cand, tmp_path / "cand.zip")
    r = CliRunner().invoke(
        app,
        [
            "ope",
            "--decisions",
            str(tmp_path / "log.jsonl"),
            "--policy",
            str(tmp_path / "cand.zip"),
            "--bootstrap",
            "100",
            "--out",
            str(tmp_path / "e.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    # the command's figures are the estimators' on the logged decisions and the exported candidate
    direct = estimate(logged, cand.pmf_batch(logged.X, 0.0), n_boot=100, seed=0)
    assert json.loads((tmp_path / "e.json").read_text()) == json.loads(json.dumps(direct))
    assert f"ESS {direct['ess']:.1f}" in r.output
    for key in ("ips", "snips", "dr"):
        assert f"{key:5s} {direct[key]['value']:.4f}" in r.output
