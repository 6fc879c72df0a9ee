"""The gateway with the real openai client: routed answers (sync and async, streaming and not), headers, the
model field, /v1/models, pass-through, and the cost of usage reaching the decision and the policy."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import openai
import pytest

from tests.gateway.conftest import MODELS, PRICES, ROUTER, Gw, ask


def test_routed_answer_sync_non_streaming(gateway: Gw) -> None:
    client = gateway.client()
    raw = client.chat.completions.with_raw_response.create(model="router/main", messages=ask(1), temperature=0.3)
    completion = raw.parse()
    did = raw.headers["x-banditroute-decision-id"]
    served = raw.headers["x-banditroute-model"]
    assert raw.headers["x-banditroute-policy"] == "main"
    assert did.startswith("main.")
    assert served in MODELS
    assert completion.model == served  # the body's model is the model that answered
    assert completion.choices[0].message.content == f"{served} says: the answer is (B)."
    # every other field went to the upstream unchanged, with the upstream's own model name
    sent = gateway.ups.apps[served].last_body
    assert sent is not None and sent["temperature"] == 0.3 and sent["model"] == served
    d = gateway.wait_decision(did, "gw_cost_usd")
    assert d["model"] == served and float(d["propensity"]) > 0
    assert json.loads(d["gw_attempts"])[0]["outcome"] == "ok"
    usage = completion.usage
    assert usage is not None
    expected = (usage.prompt_tokens * PRICES[served][0] + usage.completion_tokens * PRICES[served][1]) / 1e6
    assert float(d["gw_cost_usd"]) == pytest.approx(expected)
    assert d["gw_tokens_local"] == "0" and float(d["gw_latency_ms"]) > 0


def test_routed_answer_async_streaming_with_usage(gateway: Gw) -> None:
    async def run() -> tuple[list[Any], Any]:
        client = gateway.async_client()
        async with client:
            resp = await client.chat.completions.with_raw_response.create(
                model="router/main", messages=ask(0), stream=True, stream_options={"include_usage": True}
            )
            chunks = [c async for c in resp.parse()]
            return chunks, resp.headers

    chunks, headers = asyncio.run(run())
    served = headers["x-banditroute-model"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"{served} says: the answer is (B)."
    assert all(c.model == served for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    d = gateway.wait_decision(headers["x-banditroute-decision-id"], "gw_ttft_ms")
    assert d["gw_tokens_local"] == "0"
    assert 0 < float(d["gw_ttft_ms"]) <= float(d["gw_latency_ms"])


def test_async_non_streaming_and_sync_streaming_without_usage(gateway: Gw) -> None:
    async def run() -> Any:
        async with gateway.async_client() as client:
            return await client.chat.completions.create(model="router/main", messages=ask(2))

    assert asyncio.run(run()).choices[0].message.content.endswith("(B).")
    raw = gateway.client().chat.completions.with_raw_response.create(model="router/main", messages=ask(3), stream=True)
    pieces = [c.choices[0].delta.content or "" for c in raw.parse() if c.choices]
    assert "".join(pieces).endswith("(B).")
    # no usage block: tokens counted locally (about 4 characters a token)
    d = gateway.wait_decision(raw.headers["x-banditroute-decision-id"], "gw_tokens_local")
    assert d["gw_tokens_local"] == "1" and int(d["gw_completion_tokens"]) > 0 and float(d["gw_cost_usd"]) > 0


def test_stream_chunks_arrive_before_the_upstream_has_finished(gateway: Gw) -> None:
    for app in gateway.ups.apps.values():
        for m in app.models.values():
            m.chunk_delay_s = 0.15
    stream = gateway.client().chat.completions.create(model="router/main", messages=ask(1), stream=True)
    first_at = None
    for _chunk in stream:
        if first_at is None:
            first_at = time.monotonic()
    time.sleep(0.3)
    finished = [a.stream_finished_at for a in gateway.ups.apps.values() if a.stream_finished_at is not None]
    assert first_at is not None and len(finished) == 1
    assert first_at < finished[0] - 0.3  # several chunk delays before the upstream's end


def test_models_lists_routers_and_configured_models(gateway: Gw) -> None:
    ids = [m.id for m in gateway.client().models.list()]
    assert "router/main" in ids and set(MODELS) <= set(ids)


def test_configured_model_passes_through(gateway: Gw) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(model="medium", messages=ask(0))
    assert raw.parse().model == "medium" and raw.headers["x-banditroute-model"] == "medium"
    assert raw.headers["x-banditroute-decision-id"] == ""


def test_unknown_model_and_policy_with_unconfigured_models(gateway: Gw) -> None:
    client = gateway.client()
    with pytest.raises(openai.NotFoundError, match="unknown model 'gpt-x'"):
        client.chat.completions.create(model="gpt-x", messages=ask(0))
    with gateway.admin() as admin:
        r = admin.post("/v1/policies", json={"id": "other", "policy": "linucb", "models": ["small", "xl"], "dim": 4})
        assert r.status_code == 201, r.text
    with pytest.raises(openai.UnprocessableEntityError, match=r"\['xl'\], not configured"):
        client.chat.completions.create(model="router/other", messages=ask(0))


def test_auth_uses_the_service_keys(gateway: Gw) -> None:
    with (
        openai.OpenAI(base_url=gateway.url + "/v1", api_key="wrong", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError),
    ):
        bad.chat.completions.create(model="router/main", messages=ask(0))
    r = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "router/main", "messages": ask(0)})
    assert r.status_code == 401
    ok = httpx.get(gateway.url + "/v1/models", headers={"Authorization": f"Bearer {ROUTER}"})
    assert ok.status_code == 200


def test_usage_cost_reaches_the_policy_through_evaluator_feedback(gateway_factory: Any) -> None:
    gw: Gw = gateway_factory('[evaluator]\njudge = "judge"\nsample_rate = 1.0\n')
    with gw.admin() as admin:
        before = admin.get("/v1/policies/main").json()["n_updates"]
    raw = gw.client().chat.completions.with_raw_response.create(model="router/main", messages=ask(2))
    did = raw.headers["x-banditroute-decision-id"]
    d = gw.wait_decision(did, "score:evaluator")
    assert float(d["score:evaluator"]) == pytest.approx(0.8)  # the judge said 8 on its 0-10 scale
    # the event the learner applies carries the cost measured from usage x prices
    assert float(d["cost_observed"]) == pytest.approx(float(d["gw_cost_usd"]))
    assert float(d["gw_cost_usd"]) > 0
    with gw.admin() as admin:
        deadline = time.monotonic() + 15
        while admin.get("/v1/policies/main").json()["n_updates"] <= before:
            assert time.monotonic() < deadline, "the evaluator's observation never reached the policy"
            time.sleep(0.02)


def test_experiment_model_routes_through_its_arm(gateway: Gw) -> None:
    with gateway.admin() as admin:
        r = admin.post("/v1/experiments", json={"id": "ab", "arms": [{"name": "a", "policy": "main"}]})
        assert r.status_code == 201, r.text
    client = gateway.client()
    raw = client.chat.completions.with_raw_response.create(model="experiment/ab", messages=ask(1), user="u-1")
    assert raw.headers["x-banditroute-policy"] == "main"
    d = gateway.wait_decision(raw.headers["x-banditroute-decision-id"], "gw_model")
    assert d["experiment"] == "ab" and d["arm"] == "a" and d["unit"] == "u-1"
    assert "experiment/ab" in [m.id for m in client.models.list()]
    with pytest.raises(openai.NotFoundError, match="unknown experiment 'zz'"):
        client.chat.completions.create(model="experiment/zz", messages=ask(1))


def test_user_feedback_without_a_cost_carries_the_measured_one(gateway: Gw) -> None:
    """A caller who posts only a score still teaches the policy the call's real cost (usage x prices), not the
    decision's estimate."""
    raw = gateway.client().chat.completions.with_raw_response.create(model="router/main", messages=ask(1))
    did = raw.headers["x-banditroute-decision-id"]
    d = gateway.wait_decision(did, "gw_cost_usd")
    with gateway.admin() as admin:
        r = admin.post("/v1/feedback", json={"decision_id": did, "source": "user", "score": 1.0})
    assert r.status_code in (200, 202), r.text
    d = gateway.wait_decision(did, "cost_observed")
    assert float(d["cost_observed"]) == pytest.approx(float(d["gw_cost_usd"]))
    assert float(d["cost_observed"]) != pytest.approx(float(d["cost_estimate"]))
