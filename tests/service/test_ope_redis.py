"""OPE reads the service's own decision log from Redis, and its estimates tell good candidates from bad ones."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from banditroute.bandit import BestSingle, to_bytes
from banditroute.cli import app
from banditroute.simulations.ope import dump_jsonl, load_jsonl, load_redis
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


def test_decision_export_carries_latency_and_cost(
    admin: httpx.Client, policy: str, redis_url: str, tmp_path: Path
) -> None:
    """latency_ms given with feedback is stored on the decision, read back by load_redis with the log, and kept
    by the JSONL export (null where none was reported)."""
    sent: dict[str, tuple[float | None, float | None]] = {}
    for i in range(12):
        d = route(admin, query=f"python loop function {i}", policy=policy).json()
        latency = 100.0 + 10 * i if i % 3 else None
        cost = 0.001 * (i + 1) if i % 2 else None
        body: dict = {"decision_id": d["decision_id"], "source": "evaluator", "score": 0.5}
        if latency is not None:
            body["latency_ms"] = latency
        if cost is not None:
            body["cost_usd"] = cost
        assert admin.post("/v1/feedback", json=body).status_code == 202
        sent[d["decision_id"]] = (latency, cost)
        assert admin.get(f"/v1/decisions/{d['decision_id']}").json()["latency_ms"] == latency
    wait_applied(admin, policy)

    logged = asyncio.run(load_redis(redis_url, policy, tuple(MODELS), "evaluator"))
    assert logged.latency_ms is not None and logged.cost_usd is not None
    # the log is in decision order, as sent
    expected_lat = [np.nan if lat is None else lat for lat, _ in sent.values()]
    np.testing.assert_array_equal(logged.latency_ms, expected_lat)
    for (_, cost), got in zip(sent.values(), logged.cost_usd, strict=True):
        if cost is not None:
            assert got == pytest.approx(cost)
        else:
            assert got > 0  # the policy's estimate, charged in its place

    n = dump_jsonl(logged, tmp_path / "decisions.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert n == len(rows) == 12
    assert [r["latency_ms"] for r in rows] == [lat for lat, _ in sent.values()]
    back = load_jsonl(tmp_path / "decisions.jsonl", tuple(MODELS))
    np.testing.assert_array_equal(back.latency_ms, logged.latency_ms)
    np.testing.assert_allclose(back.cost_usd, logged.cost_usd)
    np.testing.assert_array_equal(back.X, logged.X)
    np.testing.assert_array_equal(back.actions, logged.actions)
