"""OPE reads the service's own decision log from Redis, and its estimates tell good candidates from bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from banditroute.bandit import BestSingle, to_bytes
from banditroute.cli import app
from tests.service.conftest import MODELS, route, wait_applied


def always(model: str) -> bytes:
    """An artifact of a policy (dim 8, the service policy's) that always routes to ``model``."""
    p = BestSingle(MODELS, 8, explore_floor=0.0)
    q = np.array([[1.0 if m == model else 0.0 for m in MODELS]])
    p.fit_full(np.ones((1, 8)), q, np.zeros((1, len(MODELS))))
    return to_bytes(p)


def test_ope_from_the_service_decision_log(admin: httpx.Client, policy: str, redis_url: str, tmp_path: Path) -> None:
    rewards = []
    for i in range(60):
        d = route(admin, query=f"algebra proof question {i}" if i % 2 else f"court statute {i}", policy=policy).json()
        score = 1.0 if d["model"] == "small" else 0.0  # only the small model answers well
        rewards.append(score)
        r = admin.post("/v1/feedback", json={"decision_id": d["decision_id"], "source": "evaluator", "score": score})
        assert r.status_code == 202, r.text
    wait_applied(admin, policy)
    assert 0 < sum(rewards) < 60  # the log holds both outcomes, or the test below proves nothing
    results = {}
    for model in ("small", "large"):
        (tmp_path / f"{model}.zip").write_bytes(always(model))
        out = tmp_path / f"{model}.json"
        args = ["ope", "--decisions", redis_url, "--policy-id", policy, "--policy", str(tmp_path / f"{model}.zip")]
        r = CliRunner().invoke(app, [*args, "--bootstrap", "200", "--out", str(out)])
        assert r.exit_code == 0, r.output
        assert "60 logged decisions" in r.output and "snips" in r.output
        results[model] = json.loads(out.read_text())
    for res in results.values():
        assert res["n"] == 60
        assert res["logged_mean_reward"] == pytest.approx(float(np.mean(rewards)))
        assert 0 < res["ess"] <= 60
        for key in ("ips", "snips", "dr"):
            lo, hi = res[key]["ci95"]
            assert lo <= res[key]["value"] <= hi
    # every logged choice of small scored 1 and of large 0: self-normalised estimates see exactly that
    assert results["small"]["snips"]["value"] == pytest.approx(1.0)
    assert results["large"]["snips"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert results["small"]["dr"]["value"] > results["large"]["dr"]["value"] + 0.5
