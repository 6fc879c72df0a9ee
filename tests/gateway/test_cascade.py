"""Cascades through the gateway, with the real openai client against replay upstreams that answer from a small
records file the test writes (each model's ``pred`` letter per prompt): agreeing and disagreeing first stages,
an upstream down mid-cascade, costs over stages, streaming, feedback reaching the stop decision, export/import."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pandas as pd
import pytest

from banditroute.bandit import import_artifact, to_bytes
from banditroute.bandit.cascade import AgreementCascade, Cascade
from banditroute.env.features import Featurizer
from banditroute.testing import ServerThread
from banditroute.testing_upstreams import ReplayUpstream, models_from_records
from tests.gateway.conftest import MODELS, PRICES, PROMPTS, Gw, Upstreams, start_gateway, write_config

STAGES = [["small", "medium"], ["large"]]


def answers_of(i: int) -> dict[str, str]:
    """Even prompts: the first stage agrees on B. Odd prompts: small A, medium C (disagree), large D."""
    return {"small": "B", "medium": "B", "large": "B"} if i % 2 == 0 else {"small": "A", "medium": "C", "large": "D"}


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [
        {"query_id": f"q{i}", "benchmark": "t", "prompt": p, "model": m, "score": 1.0, "pred": a, "output_chars": 80}
        for i, p in enumerate(PROMPTS)
        for m, a in answers_of(i).items()
    ]
    path = tmp_path_factory.mktemp("records") / "cascade.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def artifacts() -> dict[str, bytes]:
    fz = Featurizer(dim=8, max_features=300).fit(PROMPTS)
    fixed = AgreementCascade(MODELS, 8, stages=STAGES, seed=0)
    learned = Cascade(MODELS, 8, stages=STAGES, stop_epsilon=0.2, seed=0)
    return {"fixed": to_bytes(fixed, fz), "learned": to_bytes(learned, fz)}


@pytest.fixture
def cascade_gw(
    redis_url: str, records: Path, artifacts: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gw]:
    apps = {m: ReplayUpstream(models_from_records(records, [m])) for m in MODELS}
    servers = {m: ServerThread(a).start() for m, a in apps.items()}
    ups = Upstreams(apps, servers)
    cfg = write_config(tmp_path / "upstreams.toml", ups, '[routers."main"]\nanswers = "choice"\n', models=MODELS)
    gw = start_gateway(redis_url, ups, cfg, artifacts["fixed"], monkeypatch)
    with gw.admin() as admin:
        r = admin.post("/v1/policies/import", params={"id": "learned"}, content=artifacts["learned"])
        assert r.status_code == 201, r.text
    yield gw
    for c in gw.clients:
        c.close()
    gw.server.stop()
    for s in servers.values():
        if s.thread.is_alive():
            s.stop()


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": PROMPTS[i]}]


def call(gw: Gw, i: int, router: str = "main", **kw: Any) -> Any:
    return gw.client().chat.completions.with_raw_response.create(model=f"router/{router}", messages=messages(i), **kw)


def record(gw: Gw, did: str) -> tuple[dict[str, str], dict[str, Any]]:
    d = gw.decision(did)
    return d, json.loads(d["cascade"])


def test_agreeing_first_stage_stops_and_disagreeing_escalates(cascade_gw: Gw) -> None:
    raw = call(cascade_gw, 0)  # small and medium both answer B
    done = raw.parse()
    did, served = raw.headers["x-banditroute-decision-id"], raw.headers["x-banditroute-model"]
    assert raw.headers["x-banditroute-policy"] == "main" and raw.headers["x-banditroute-stages"] == "1"
    assert raw.headers["x-banditroute-models-called"].split(",") == ["small", "medium"]
    assert served in ("small", "medium") and done.model == served
    assert done.choices[0].message.content == "The answer is (B)."
    d, rec = record(cascade_gw, did)
    assert d["cascade_state"] == "done" and [s["action"] for s in rec["steps"]] == ["call", "stop"]
    assert rec["answers"] == {"small": "B", "medium": "B"}
    assert all(0 < s["propensity"] <= 1 for s in rec["steps"])

    raw = call(cascade_gw, 1)  # small A, medium C: escalate to large, whose D is returned
    did = raw.headers["x-banditroute-decision-id"]
    assert raw.headers["x-banditroute-model"] == "large" and raw.parse().model == "large"
    assert raw.parse().choices[0].message.content == "The answer is (D)."
    assert raw.headers["x-banditroute-models-called"].split(",") == ["small", "medium", "large"]
    d, rec = record(cascade_gw, did)
    assert [s["action"] for s in rec["steps"]] == ["call", "call", "stop"]
    assert rec["steps"][1]["models"] == ["large"] and rec["steps"][-1]["answer"] == "D"
    # costs add up over every call of every stage: usage x prices, one per call
    by_model = {c["model"]: c for c in rec["calls"]}
    for m in MODELS:
        c = by_model[m]
        assert c["cost_usd"] == pytest.approx(
            (c["prompt_tokens"] * PRICES[m][0] + c["completion_tokens"] * PRICES[m][1]) / 1e6
        )
    total = sum(c["cost_usd"] for c in rec["calls"])
    assert float(d["gw_cost_usd"]) == pytest.approx(total) and float(raw.headers["x-banditroute-cost-usd"]) > 0
    assert rec["costs"] == pytest.approx({c["model"]: c["cost_usd"] for c in rec["calls"]})
    stage_ms = json.loads(d["cascade_stage_ms"])
    assert len(stage_ms) == 2 and float(d["gw_latency_ms"]) >= sum(stage_ms) * 0.99


def test_streamed_cascade_sends_the_chosen_answer(cascade_gw: Gw) -> None:
    raw = call(cascade_gw, 3, stream=True, stream_options={"include_usage": True})
    chunks = list(raw.parse())
    assert raw.headers["x-banditroute-model"] == "large"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The answer is (D)."
    assert all(c.model == "large" for c in chunks) and chunks[-1].usage is not None
    sent = cascade_gw.ups.apps["large"].last_body
    assert sent is not None and "stream" not in sent  # stages run non-streamed


def test_an_upstream_down_mid_cascade_is_an_empty_answer_and_the_cascade_goes_on(cascade_gw: Gw) -> None:
    cascade_gw.ups.kill("medium")
    raw = call(cascade_gw, 2)  # small says B, medium is down: no agreement, escalate to large (B)
    assert raw.headers["x-banditroute-model"] == "large"
    assert raw.parse().choices[0].message.content == "The answer is (B)."
    d, rec = record(cascade_gw, raw.headers["x-banditroute-decision-id"])
    outcomes = {c["model"]: c["outcome"] for c in rec["calls"]}
    assert outcomes == {"small": "ok", "medium": "connect", "large": "ok"}
    assert rec["answers"]["medium"] == "" and rec["costs"]["medium"] == 0.0
    # every upstream down: 502 with the calls named, and the failure fed back to the cascade
    cascade_gw.ups.kill("small")
    cascade_gw.ups.kill("large")
    with pytest.raises(openai.APIStatusError, match="no model of the cascade answered") as err:
        call(cascade_gw, 0)
    assert err.value.status_code == 502
    did = err.value.response.headers["x-banditroute-decision-id"]
    assert cascade_gw.wait_decision(did, "score:gateway")["score:gateway"] == "0.0"


def test_feedback_trains_the_stop_decision_and_the_query_level(cascade_gw: Gw) -> None:
    def state() -> Any:
        with cascade_gw.admin() as admin:
            r = admin.get("/v1/policies/learned/export")
            assert r.status_code == 200, r.text
        return import_artifact(r.content).policy

    before = state()
    raw = call(cascade_gw, 1, router="learned")
    did = raw.headers["x-banditroute-decision-id"]
    _, rec = record(cascade_gw, did)
    decisions = [s for s in rec["steps"] if s["kind"] == "stop-decision"]
    assert decisions and decisions[0]["features"]  # the stop decision's context rides along, as bytes
    with cascade_gw.admin() as admin:
        r = admin.post("/v1/feedback", json={"decision_id": did, "source": "user", "score": 1.0, "wait": True})
    assert r.status_code == 202 and r.json()["applied"], r.text
    after = state()
    assert after.stop_n.sum() == before.stop_n.sum() + len(decisions)
    assert not np.allclose(after.stop_b, before.stop_b)
    answered = [m for m, a in rec["answers"].items() if a == rec["steps"][-1]["answer"]]
    for m in answered:  # the model whose answer was returned learned the score and its call's cost
        j = MODELS.index(m)
        assert after.n[j] == before.n[j] + 1


def test_an_exported_cascade_imported_elsewhere_serves_the_same_cascade(cascade_gw: Gw) -> None:
    with cascade_gw.admin() as admin:
        blob = admin.get("/v1/policies/main/export").content
        r = admin.post("/v1/policies/import", params={"id": "copy"}, content=blob)
        assert r.status_code == 201, r.text
    assert isinstance(import_artifact(io.BytesIO(blob).getvalue()).policy, AgreementCascade)
    raw = call(cascade_gw, 5, router="copy")
    assert raw.headers["x-banditroute-policy"] == "copy" and raw.headers["x-banditroute-model"] == "large"
    assert raw.headers["x-banditroute-stages"] == "2"
