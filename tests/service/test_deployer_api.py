"""What a deployer meets first, over HTTP against a real Redis: strict numbers, latency kept on the decision,
shadow arms isolated, generations, the DELETE and lookup endpoints, metrics that move."""

from __future__ import annotations

import re

import httpx
import pytest
import redis

from tests.service.conftest import MODELS, import_policy, route, wait_applied


@pytest.mark.parametrize(
    "change",
    [
        {"score": True},
        {"score": False},
        {"score": "0.9"},
        {"score": "1"},
        {"cost_usd": "0.01"},
        {"cost_usd": True},
        {"latency_ms": "12"},
        {"latency_ms": False},
        {"score": 1.5},
        {"latency_ms": -1},
    ],
)
def test_scores_costs_and_latencies_must_be_json_numbers_in_range(
    admin: httpx.Client, policy: str, change: dict[str, object]
) -> None:
    d = route(admin, query="algebra proof", policy=policy).json()
    r = admin.post("/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 1.0, **change})
    assert r.status_code == 422, r.text
    assert admin.get(f"/v1/policies/{policy}").json()["feedback"]["accepted"] == 0  # nothing was learned


def test_a_decision_can_be_looked_up_with_its_feedback_cost_and_latency(admin: httpx.Client, policy: str) -> None:
    d = route(admin, query="court statute contract", policy=policy).json()
    r = admin.post(
        "/v1/feedback",
        json={"decision_id": d["decision_id"], "source": "user", "score": 1, "cost_usd": 0.002, "latency_ms": 830},
    )
    assert r.status_code == 202, r.text
    got = admin.get(f"/v1/decisions/{d['decision_id']}")
    assert got.status_code == 200, got.text
    info = got.json()
    assert info["model"] == d["model"] and info["propensity"] == pytest.approx(d["propensity"])
    assert info["pmf"] == pytest.approx(d["pmf"]) and re.fullmatch(r"[0-9a-f]{64}", info["context_digest"])
    assert info["feedback"] == {"user": 1.0} and info["cost_observed_usd"] == 0.002 and info["latency_ms"] == 830
    assert admin.get(f"/v1/decisions/{policy}.{'0' * 32}").status_code == 404
    assert admin.get("/v1/decisions/not-an-id").status_code == 422


def test_shadow_arm_failure_never_fails_the_request_nor_leaves_an_orphan(
    admin: httpx.Client, artifact: bytes, redis_url: str
) -> None:
    import_policy(admin, artifact, "served")
    import_policy(admin, artifact, "shadowed")
    admin.post("/v1/policies/served/models", json={"model": "only-served"}).raise_for_status()
    body = {
        "id": "sx",
        "arms": [{"name": "a", "policy": "served"}, {"name": "s", "policy": "shadowed", "shadow": True}],
    }
    assert admin.post("/v1/experiments", json=body).status_code == 201
    ok = route(admin, query="algebra", experiment="sx").json()
    assert len(ok["shadow_decisions"]) == 1
    # a candidate the shadow policy does not know: the shadow fails, the served decision stands
    r = route(admin, query="algebra", experiment="sx", candidates=["only-served"])
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "only-served" and r.json()["shadow_decisions"] == []
    rd = redis.Redis.from_url(redis_url)
    assert rd.xlen("br:{shadowed}:decisions") == 1  # only the first request's shadow decision was logged
    rep = admin.get("/v1/experiments/sx").json()
    arms = {a["name"]: a for a in rep["arms"]}
    assert arms["a"]["n"] == 2 and arms["s"]["n"] == 1 and arms["a"]["feedback"] == 0  # n counts decisions
    assert 'banditroute_shadow_failures_total{arm="s",experiment="sx"} 1.0' in admin.get("/metrics").text


def test_replacing_a_policy_starts_a_generation_and_old_feedback_is_409(admin: httpx.Client, artifact: bytes) -> None:
    first = import_policy(admin, artifact, "g")
    old = route(admin, query="algebra", policy="g").json()
    r = admin.post(
        "/v1/policies/import",
        params={"id": "g", "replace": True},
        content=artifact,
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 201 and r.json()["generation"] == first["generation"] + 1
    stale = admin.post("/v1/feedback", json={"decision_id": old["decision_id"], "source": "user", "score": 1})
    assert stale.status_code == 409
    message = stale.json()["error"]["message"]
    assert "replaced" in message and f"generation {first['generation']}" in message
    new = route(admin, query="algebra", policy="g").json()
    ok = admin.post("/v1/feedback", json={"decision_id": new["decision_id"], "source": "user", "score": 1})
    assert ok.status_code == 202
    assert wait_applied(admin, "g")["feedback"]["applied"] == 1


def test_delete_policy_and_experiment(admin: httpx.Client, artifact: bytes, redis_url: str) -> None:
    import_policy(admin, artifact, "del")
    import_policy(admin, artifact, "keep")
    d = route(admin, query="algebra", policy="del").json()
    body = {"id": "ex", "arms": [{"name": "a", "policy": "del"}, {"name": "b", "policy": "keep"}]}
    admin.post("/v1/experiments", json=body).raise_for_status()
    assert admin.delete("/v1/policies/del").status_code == 409  # a running experiment routes through it
    stopped = admin.delete("/v1/experiments/ex", params={"keep_results": True})
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    assert admin.get("/v1/experiments/ex").status_code == 200  # results kept
    assert admin.delete("/v1/experiments/ex").status_code == 204
    assert admin.get("/v1/experiments/ex").status_code == 404
    assert admin.delete("/v1/policies/del").status_code == 204
    assert admin.get("/v1/policies/del").status_code == 404
    assert admin.delete("/v1/policies/del").status_code == 404
    assert (
        admin.post("/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 1}).status_code
        == 404
    )
    assert redis.Redis.from_url(redis_url).keys("br:{del}:*") == [b"br:{del}:gen"]  # only the generation counter
    assert route(admin, query="algebra", policy="keep").status_code == 200


def test_metrics_per_policy_and_model_move(admin: httpx.Client, policy: str) -> None:
    def value(text: str, name: str, **labels: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = admin.get("/metrics").text
    d = route(admin, query="algebra proof", policy=policy).json()
    admin.post(
        "/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 0.5, "cost_usd": 0.25}
    ).raise_for_status()
    wait_applied(admin, policy)
    after = admin.get("/metrics").text
    m = d["model"]
    assert m in MODELS
    for name in ("banditroute_decisions_total", "banditroute_reward_sum_total", "banditroute_cost_usd_sum_total"):
        assert value(after, name, policy=policy, model=m) > value(before, name, policy=policy, model=m), name
    # the counters are the process's (other tests' servers in this process may have counted the same labels)
    reward = value(after, "banditroute_reward_sum_total", policy=policy, model=m)
    assert reward - value(before, "banditroute_reward_sum_total", policy=policy, model=m) == pytest.approx(0.5)
    accepted = {"policy": policy, "model": m, "outcome": "accepted"}
    got = value(after, "banditroute_policy_feedback_total", **accepted)
    assert got - value(before, "banditroute_policy_feedback_total", **accepted) == 1
    for gauge in (
        "banditroute_learner_lag_events",
        "banditroute_learner_lag_seconds",
        "banditroute_dead_letters",
        "banditroute_snapshot_age_seconds",
    ):
        assert f'{gauge}{{policy="{policy}"}}' in after, gauge
    assert value(after, "banditroute_feedback_applied", policy=policy) == 1
