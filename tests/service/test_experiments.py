"""A/B experiments over HTTP: sticky assignment, shadow arms, reports with intervals, stopping."""

from __future__ import annotations

import httpx
import pytest

from tests.service.conftest import import_policy, route


@pytest.fixture
def experiment(admin: httpx.Client, artifact: bytes) -> str:
    import_policy(admin, artifact, "pa")
    import_policy(admin, artifact, "pb")
    import_policy(admin, artifact, "ps")
    r = admin.post(
        "/v1/experiments",
        json={
            "id": "exp1",
            "arms": [
                {"name": "control", "policy": "pa", "weight": 1},
                {"name": "treat", "policy": "pb", "weight": 1},
                {"name": "shadow", "policy": "ps", "shadow": True},
            ],
        },
    )
    assert r.status_code == 201, r.text
    return "exp1"


def test_assignment_is_sticky_per_unit_and_spread_over_units(admin: httpx.Client, experiment: str) -> None:
    arms_of = {}
    for u in range(40):
        seen = {
            route(admin, query="python loop", experiment=experiment, unit_id=f"user{u}").json()["arm"] for _ in range(3)
        }
        assert len(seen) == 1  # sticky
        arms_of[u] = seen.pop()
    assert set(arms_of.values()) == {"control", "treat"}  # never the shadow arm
    assert 10 <= list(arms_of.values()).count("treat") <= 30


def test_report_counts_decisions_feedback_and_gives_intervals(admin: httpx.Client, experiment: str) -> None:
    n = {"control": 0, "treat": 0}
    for i in range(60):
        d = route(admin, query=f"algebra question {i}", experiment=experiment).json()
        assert d["experiment"] == experiment and len(d["shadow_decisions"]) == 1
        score = (0.9 if d["arm"] == "treat" else 0.4) + 0.1 * (n[d["arm"]] % 2)  # alternate within each arm
        n[d["arm"]] += 1
        admin.post(
            "/v1/feedback",
            json={"decision_id": d["decision_id"], "source": "user", "score": score, "cost_usd": 0.001},
        )
    rep = admin.get(f"/v1/experiments/{experiment}").json()
    assert rep["status"] == "running" and rep["control"] == "control"
    arms = {a["name"]: a for a in rep["arms"]}
    for name in ("control", "treat"):
        assert arms[name]["decisions"] == n[name] and arms[name]["feedback"] == n[name]
        lo, hi = arms[name]["score"]["ci95"]
        assert lo < arms[name]["score"]["mean"] < hi
    assert arms["shadow"]["decisions"] == 60 and arms["shadow"]["feedback"] == 0
    diff = arms["treat"]["score_minus_control"]
    assert diff["mean"] == pytest.approx(0.5, abs=0.01) and diff["ci95"][0] > 0.4
    assert arms["control"]["score_minus_control"] is None


def test_stopping_keeps_the_data_and_refuses_routing(admin: httpx.Client, experiment: str) -> None:
    route(admin, query="x", experiment=experiment)
    r = admin.post(f"/v1/experiments/{experiment}/stop")
    assert r.status_code == 200 and r.json()["status"] == "stopped"
    assert sum(a["decisions"] for a in r.json()["arms"] if a["name"] != "shadow") == 1
    stopped = route(admin, query="x", experiment=experiment)
    assert stopped.status_code == 409 and "stopped" in stopped.json()["error"]["message"]
    assert admin.get(f"/v1/experiments/{experiment}").json()["status"] == "stopped"
    assert admin.get("/v1/experiments").json() == [{"id": experiment, "status": "stopped"}]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"id": "e", "arms": [{"name": "a", "policy": "ghost"}]}, 422),
        ({"id": "e", "arms": [{"name": "a", "policy": "pa", "shadow": True}]}, 422),
        ({"id": "e", "arms": [{"name": "a", "policy": "pa"}, {"name": "a", "policy": "pb"}]}, 422),
        ({"id": "e", "arms": [{"name": "a", "policy": "pa"}], "control": "zzz"}, 422),
        ({"id": "e", "arms": [{"name": "a", "policy": "pa", "weight": -1}]}, 422),
        ({"id": "e", "arms": []}, 422),
        ({"id": "exp1", "arms": [{"name": "a", "policy": "pa"}]}, 409),
    ],
)
def test_bad_experiments(admin: httpx.Client, experiment: str, body: dict, status: int) -> None:
    r = admin.post("/v1/experiments", json=body)
    assert r.status_code == status, r.text
    assert admin.get("/v1/experiments").json() == [{"id": experiment, "status": "running"}]
    assert admin.get("/v1/experiments/nope").status_code == 404
    assert admin.post("/v1/experiments/nope/stop").status_code == 404
