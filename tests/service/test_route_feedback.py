"""Routing and feedback over HTTP against a real Redis."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import redis

from banditroute.service.app import create_app
from tests.service.conftest import (
    ADMIN,
    MODELS,
    LiveServer,
    route,
    settings_for,
    wait_applied,
)


def state_snapshot(admin: httpx.Client, pid: str) -> tuple:
    info = admin.get(f"/v1/policies/{pid}").json()
    return info["version"], info["n_updates"], info["feedback"]["accepted"]


def test_route_returns_a_logged_decision(admin: httpx.Client, policy: str, redis_url: str) -> None:
    r = route(admin, query="algebra proof theorem question", policy=policy)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["model"] in MODELS and d["policy"] == policy and d["policy_version"] >= 1
    assert sum(d["pmf"].values()) == pytest.approx(1.0)
    assert d["propensity"] == pytest.approx(d["pmf"][d["model"]]) and d["propensity"] > 0
    rd = redis.Redis.from_url(redis_url)
    key = f"br:{{{policy}}}:dec:{d['decision_id']}"
    logged = rd.hgetall(key)
    assert logged[b"model"].decode() == d["model"]
    assert json.loads(logged[b"pmf"]) == pytest.approx(d["pmf"])
    assert 3500 < rd.ttl(key) <= 3600  # the configured retention
    assert rd.xlen(f"br:{{{policy}}}:decisions") == 1  # the decision log for OPE


def test_learned_preferences_show_through_the_service(admin: httpx.Client, policy: str) -> None:
    algebra = [route(admin, query="algebra proof theorem question 3", policy=policy).json()["model"] for _ in range(20)]
    law = [route(admin, query="court statute contract question 5", policy=policy).json()["model"] for _ in range(20)]
    assert algebra.count("large") >= 15
    assert law.count("small") >= 15


def test_precomputed_features_and_candidates(admin: httpx.Client, policy: str) -> None:
    x = [0.1] * 7 + [1.0]
    r = route(admin, features=x, policy=policy, candidates=["small", "medium"])
    assert r.status_code == 200
    assert r.json()["model"] in ("small", "medium") and set(r.json()["pmf"]) <= {"small", "medium"}


def test_lambda_and_budget_preferences(admin: httpx.Client, policy: str) -> None:
    q = "algebra proof theorem question 9"
    # each decision explores (every other model keeps 0.33% through the floor): judge the preference over draws
    free = [route(admin, query=q, policy=policy, lam=0.0).json()["model"] for _ in range(10)]
    assert free.count("large") >= 8
    pricey = [route(admin, query=q, policy=policy, lam=1000.0).json()["model"] for _ in range(10)]
    assert pricey.count("small") >= 8
    capped = [route(admin, query=q, policy=policy, max_cost_usd=0.005).json()["model"] for _ in range(10)]
    assert "large" not in capped


BAD_ROUTES = [
    ("malformed json", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422),
    ("missing query", {"json": {"policy": "main"}}, 422),
    ("empty query", {"json": {"policy": "main", "query": ""}}, 422),
    ("blank query", {"json": {"policy": "main", "query": "   "}}, 422),
    ("query and features", {"json": {"policy": "main", "query": "x", "features": [1.0] * 8}}, 422),
    ("wrong feature length", {"json": {"policy": "main", "features": [0.1, 1.0]}}, 422),
    (
        "NaN feature",
        {
            "content": b'{"policy": "main", "features": [NaN, 1, 1, 1, 1, 1, 1, 1]}',
            "headers": {"Content-Type": "application/json"},
        },
        422,
    ),
    (
        "huge float",
        {
            "content": b'{"policy": "main", "features": [1e999, 1, 1, 1, 1, 1, 1, 1]}',
            "headers": {"Content-Type": "application/json"},
        },
        422,
    ),
    ("unknown candidate", {"json": {"policy": "main", "query": "x", "candidates": ["gpt-9"]}}, 422),
    ("negative lambda", {"json": {"policy": "main", "query": "x", "lam": -1}}, 422),
    ("unknown field", {"json": {"policy": "main", "query": "x", "temperature": 1}}, 422),
    ("unknown policy", {"json": {"policy": "nope", "query": "x"}}, 404),
    ("bad policy id", {"json": {"policy": "../etc", "query": "x"}}, 422),
    ("unknown experiment", {"json": {"experiment": "nope", "query": "x"}}, 404),
    ("over-long query", {"json": {"policy": "main", "query": "word " * 5000}}, 413),
    (
        "oversized body",
        {"content": b'{"query": "' + b"a" * 2_000_000 + b'"}', "headers": {"Content-Type": "application/json"}},
        413,
    ),
    (
        "deeply nested",
        {"content": b'{"query": ' + b"[" * 5000 + b"]" * 5000 + b"}", "headers": {"Content-Type": "application/json"}},
        400,
    ),
    ("non-utf8", {"content": b'{"query": "\xff\xfe\xfa"}', "headers": {"Content-Type": "application/json"}}, 400),
]


@pytest.mark.parametrize(("case", "kwargs", "status"), BAD_ROUTES, ids=[b[0] for b in BAD_ROUTES])
def test_bad_route_requests_get_a_clear_4xx_and_change_nothing(
    admin: httpx.Client, policy: str, case: str, kwargs: dict, status: int, redis_url: str
) -> None:
    before = state_snapshot(admin, policy)
    n_decisions = redis.Redis.from_url(redis_url).xlen(f"br:{{{policy}}}:decisions")
    r = admin.post("/v1/route", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]  # a body that says what is wrong
    assert state_snapshot(admin, policy) == before
    assert redis.Redis.from_url(redis_url).xlen(f"br:{{{policy}}}:decisions") == n_decisions


def test_feedback_updates_the_policy_exactly_once_per_source(admin: httpx.Client, policy: str) -> None:
    d = route(admin, query="python loop function question", policy=policy).json()
    before = admin.get(f"/v1/policies/{policy}").json()
    fb = {"decision_id": d["decision_id"], "source": "user", "score": 1.0, "wait": True}
    r = admin.post("/v1/feedback", json=fb)
    assert r.status_code == 202 and r.json()["applied"] is True, r.text
    after = admin.get(f"/v1/policies/{policy}").json()
    assert after["n_updates"] == before["n_updates"] + 1 and after["version"] > before["version"]
    again = admin.post("/v1/feedback", json={**fb, "score": 0.0})
    assert again.status_code == 409 and "already accepted" in again.json()["error"]["message"]
    assert (
        state_snapshot(admin, policy)
        == state_snapshot(admin, policy)
        == (after["version"], after["n_updates"], after["feedback"]["accepted"])
    )
    ev = admin.post("/v1/feedback", json={**fb, "source": "evaluator", "score": 0.4, "cost_usd": 0.003})
    assert ev.status_code == 202
    info = wait_applied(admin, policy)
    assert info["n_updates"] == before["n_updates"] + 2
    assert info["feedback"] == {"accepted": 2, "applied": 2, "skipped": 0, "pending": 0}


BAD_FEEDBACK = [
    ("score above 1", {"score": 1.5}, 422),
    ("negative score", {"score": -0.1}, 422),
    ("NaN score", "NaN", 422),
    ("unknown source", {"source": "oracle"}, 422),
    ("negative cost", {"cost_usd": -1}, 422),
    ("bad decision id", {"decision_id": "not-a-decision"}, 422),
    ("unknown decision", {"decision_id": "main." + "0" * 32}, 404),
    ("unknown policy of decision", {"decision_id": "ghost." + "0" * 32}, 404),
]


@pytest.mark.parametrize(("case", "change", "status"), BAD_FEEDBACK, ids=[b[0] for b in BAD_FEEDBACK])
def test_bad_feedback_gets_a_clear_4xx_and_changes_nothing(
    admin: httpx.Client, policy: str, case: str, change: object, status: int
) -> None:
    d = route(admin, query="cell protein enzyme", policy=policy).json()
    before = state_snapshot(admin, policy)
    if change == "NaN":
        r = admin.post(
            "/v1/feedback",
            content=f'{{"decision_id": "{d["decision_id"]}", "source": "user", "score": NaN}}'.encode(),
            headers={"Content-Type": "application/json"},
        )
    else:
        body = {"decision_id": d["decision_id"], "source": "user", "score": 0.5, **change}  # type: ignore[dict-item]
        r = admin.post("/v1/feedback", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]
    assert state_snapshot(admin, policy) == before
    ok = admin.post("/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 0.5})
    assert ok.status_code == 202  # the refused attempt left no mark behind


def test_late_feedback_within_retention_counts_and_expired_is_404(redis_url: str, artifact: bytes) -> None:
    srv = LiveServer(create_app(settings_for(redis_url, decision_ttl_seconds=2))).start()
    try:
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
            c.post("/v1/policies/import", params={"id": "late"}, content=artifact)
            early = route(c, query="algebra proof", policy="late").json()["decision_id"]
            late = route(c, query="algebra proof", policy="late").json()["decision_id"]
            time.sleep(1.0)
            assert (
                c.post("/v1/feedback", json={"decision_id": early, "source": "user", "score": 1.0}).status_code == 202
            )
            time.sleep(1.5)
            r = c.post("/v1/feedback", json={"decision_id": late, "source": "user", "score": 1.0})
            assert r.status_code == 404 and "expired" in r.json()["error"]["message"]
            assert wait_applied(c, "late")["feedback"]["applied"] == 1
    finally:
        srv.stop()


def test_feedback_flood_on_one_decision_moves_the_policy_once_per_source(admin: httpx.Client, policy: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    d = route(admin, query="cell protein enzyme flood", policy=policy).json()
    before = admin.get(f"/v1/policies/{policy}").json()

    def post(i: int) -> int:
        source = "user" if i % 2 else "evaluator"
        with httpx.Client(base_url=str(admin.base_url), headers=dict(admin.headers), timeout=30) as c:
            return c.post(
                "/v1/feedback", json={"decision_id": d["decision_id"], "source": source, "score": (i % 10) / 10}
            ).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(post, range(80)))
    assert sorted(set(codes)) == [202, 409] and codes.count(202) == 2  # one per source
    info = wait_applied(admin, policy)
    assert info["n_updates"] == before["n_updates"] + 2


def test_a_logged_decision_keeps_every_field_byte_for_byte(admin: httpx.Client, policy: str, redis_url: str) -> None:
    """The decision's text fields travel to Redis as one JSON array and its context as raw bytes: quotes,
    backslashes, non-ASCII and emoji in a caller's unit id come back as sent, and the context is the 8-byte
    floats the policy decided on."""
    import hashlib

    import numpy as np

    from banditroute.service.keys import k_decision

    unit = 'user "7" \\ ünïcode 数学 🚀 [1,2]'
    d = route(admin, query="python loop function question", policy=policy, unit_id=unit).json()
    raw = redis.Redis.from_url(redis_url).hgetall(k_decision(policy, d["decision_id"]))
    assert raw[b"unit"].decode() == unit
    assert raw[b"model"].decode() == d["model"] and float(raw[b"propensity"]) == d["propensity"]
    assert json.loads(raw[b"pmf"]) == d["pmf"]
    info = admin.get(f"/v1/decisions/{d['decision_id']}").json()
    assert info["context_digest"] == hashlib.sha256(raw[b"x"]).hexdigest()
    x = np.frombuffer(raw[b"x"], dtype="<f8")
    assert x.shape == (admin.get(f"/v1/policies/{policy}").json()["dim"],) and x[-1] == 1.0
