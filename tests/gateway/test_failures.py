"""Failures: fallback when an upstream is killed (the logged action stays the first choice, its failure fed
back), the circuit breaker opening and closing, upstream 4xx passed through, every attempt failing (502/504),
and a disconnecting client cancelling the upstream call."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
import redis

from tests.gateway.conftest import ROUTER, Gw, ask


def _algebra(gw: Gw, n: int) -> list[Any]:
    client = gw.client()
    return [client.chat.completions.with_raw_response.create(model="router/main", messages=ask(0, i)) for i in range(n)]


def test_fallback_when_an_upstream_is_killed(gateway: Gw) -> None:
    gateway.ups.kill("large")  # the first choice on algebra questions
    responses = _algebra(gateway, 12)
    assert all(r.status_code == 200 for r in responses)
    fell_back = 0
    for r in responses:
        did = r.headers["x-banditroute-decision-id"]
        d = gateway.wait_decision(did, "gw_attempts")
        attempts = json.loads(d["gw_attempts"])
        assert r.headers["x-banditroute-model"] != "large" and r.parse().model != "large"
        if d["model"] == "large":
            fell_back += 1
            # the logged bandit action is still the first choice, with its propensity; the fallback is beside it
            assert attempts[0]["model"] == "large" and attempts[0]["outcome"] in ("connect", "breaker")
            assert attempts[-1]["outcome"] == "ok" and d["gw_model"] == attempts[-1]["model"]
            assert float(d["propensity"]) > 0
            # its failure is fed back (source gateway, the failure reward) and the decision is closed to others
            d = gateway.wait_decision(did, "score:gateway")
            assert float(d["score:gateway"]) == 0.0
            with gateway.admin() as admin:
                fb = admin.post("/v1/feedback", json={"decision_id": did, "source": "user", "score": 1.0})
            assert fb.status_code == 409
    assert fell_back >= 1


def test_breaker_opens_and_closes(gateway_factory: Any) -> None:
    gw: Gw = gateway_factory("[gateway]\nbreaker_failures = 2\nbreaker_reset_s = 0.5\n")
    breaker = gw.app.state.gateway.breakers["large"]
    gw.ups.apps["large"].mode = "500"
    for _ in range(40):
        _algebra(gw, 1)
        if breaker.state == "open":
            break
    assert breaker.state == "open"
    calls = gw.ups.apps["large"].stats["requests"]
    assert calls == 2
    # while open, decisions leave 'large' out (the logged propensity is over the models that can answer)
    r = _algebra(gw, 3)[-1]
    d = gw.wait_decision(r.headers["x-banditroute-decision-id"], "gw_attempts")
    assert json.loads(d["candidates"]) == ["small", "medium"]
    assert gw.ups.apps["large"].stats["requests"] == calls
    # after reset_s, one probe goes through; it succeeds and the breaker closes
    gw.ups.apps["large"].mode = "ok"
    time.sleep(0.6)
    for _ in range(40):
        _algebra(gw, 1)
        if breaker.state == "closed":
            break
    assert breaker.state == "closed" and gw.ups.apps["large"].stats["requests"] > calls
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'banditroute_gateway_breaker_opened_total{model="large"}' in metrics


def test_upstream_4xx_passes_through_without_fallback(gateway: Gw) -> None:
    for app in gateway.ups.apps.values():
        app.mode = "400"
    with pytest.raises(openai.BadRequestError, match="replay answers 400") as info:
        gateway.client().chat.completions.create(model="router/main", messages=ask(1))
    assert info.value.status_code == 400
    assert sum(a.stats["requests"] for a in gateway.ups.apps.values()) == 1


@pytest.mark.parametrize(("mode", "status"), [("500", 502), ("hang", 504)])
def test_every_attempt_failing_answers_openai_error(gateway_factory: Any, mode: str, status: int) -> None:
    extra = "[gateway]\nmax_attempts = 2\n"
    gw: Gw = gateway_factory(extra)
    if mode == "hang":  # a short timeout on every model
        for up in gw.app.state.gateway.config.models.values():
            object.__setattr__(up, "timeout_s", 0.3)
    for app in gw.ups.apps.values():
        app.mode = mode
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "router/main", "messages": ask(1)},
        headers={"Authorization": f"Bearer {ROUTER}"},
        timeout=20,
    )
    assert r.status_code == status
    err = r.json()["error"]
    assert err["type"] in ("upstream_error", "upstream_timeout") and "every attempt failed" in err["message"]
    attempts = json.loads(gw.wait_decision(r.headers["x-banditroute-decision-id"], "gw_attempts")["gw_attempts"])
    assert len([a for a in attempts if a["outcome"] != "breaker"]) == 2


def test_disconnecting_client_cancels_the_upstream_call(gateway: Gw) -> None:
    for app in gateway.ups.apps.values():
        for m in app.models.values():
            m.chunk_delay_s = 0.3
    with (
        httpx.Client(timeout=20) as client,
        client.stream(
            "POST",
            gateway.url + "/v1/chat/completions",
            json={"model": "router/main", "messages": ask(1), "stream": True},
            headers={"Authorization": f"Bearer {ROUTER}"},
        ) as r,
    ):
        assert r.status_code == 200
        next(r.iter_raw())  # the first event, then hang up
    deadline = time.monotonic() + 5
    while sum(a.stats["cancelled"] for a in gateway.ups.apps.values()) == 0:
        assert time.monotonic() < deadline, "the upstream stream was never cancelled"
        time.sleep(0.05)
    assert sum(a.stats["completed"] for a in gateway.ups.apps.values()) == 0
    r2 = redis.Redis.from_url(gateway.redis_url)
    assert r2.ping()


def test_mid_stream_break_is_fed_back_as_a_failure(gateway: Gw) -> None:
    for app in gateway.ups.apps.values():
        app.mode = "break"  # whichever model is chosen drops its connection after two events
    client = gateway.client()
    raw = client.chat.completions.with_raw_response.create(model="router/main", messages=ask(1), stream=True)
    did = raw.headers["x-banditroute-decision-id"]
    got = []
    with pytest.raises(openai.APIError, match="broke off the answer mid-stream"):
        for chunk in raw.parse():
            got.append(chunk)
    assert got, "the events sent before the break reach the caller"
    assert sum(a.stats["broken"] for a in gateway.ups.apps.values()) == 1
    d = gateway.wait_decision(did, "score:gateway")
    attempts = json.loads(d["gw_attempts"])
    assert [a["outcome"] for a in attempts] == ["broken"] and attempts[0]["model"] == d["model"]
    assert d["gw_status"] == "502"
    # fed back as the failure reward, and closed to later feedback, as a call that failed before its first byte
    assert float(d["score:gateway"]) == 0.0
    with gateway.admin() as admin:
        fb = admin.post("/v1/feedback", json={"decision_id": did, "source": "user", "score": 1.0})
    assert fb.status_code == 409
    metrics = httpx.get(gateway.url + "/metrics").text
    assert f'banditroute_gateway_attempts_total{{model="{d["model"]}",outcome="broken"}}' in metrics
