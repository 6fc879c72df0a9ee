"""An onnx-static policy is stored, exported and routed like any other; without onnxruntime the answer names
the extra."""

from __future__ import annotations

import sys

import httpx
import numpy as np
import pytest

from banditroute.bandit import make_policy, to_bytes
from tests.service.conftest import import_policy, route

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.bandit.test_onnx_static import network

MODELS = ["a", "b", "c"]


@pytest.fixture
def onnx_policy(admin: httpx.Client) -> str:
    policy = make_policy("onnx-static", MODELS, 3, onnx_model=network(), explore_floor=0.0)
    assert import_policy(admin, to_bytes(policy), "agent")["policy"] == "onnx-static"
    return "agent"


def test_it_routes_learns_nothing_and_exports_its_network(admin: httpx.Client, onnx_policy: str) -> None:
    assert route(admin, features=[1.0, 0.0, 1.0], policy=onnx_policy).json()["model"] == "a"
    d = route(admin, features=[0.0, 1.0, 1.0], policy=onnx_policy).json()
    assert d["model"] == "b" and d["pmf"] == {"b": 1.0}
    body = {"decision_id": d["decision_id"], "source": "user", "score": 0.0, "wait": True}
    fb = admin.post("/v1/feedback", json=body)
    assert fb.status_code == 202 and fb.json()["applied"]
    assert route(admin, features=[0.0, 1.0, 1.0], policy=onnx_policy).json()["model"] == "b"
    r = admin.get(f"/v1/policies/{onnx_policy}/export")
    assert r.status_code == 200
    from banditroute.bandit import import_artifact

    state = import_artifact(r.content).policy.state_dict()
    assert state["arrays"]["onnx_model"].tobytes() == network() and state["meta"]["n_updates"] == 1


def test_a_cost_cap_applies_to_it(admin: httpx.Client, onnx_policy: str) -> None:
    # a static policy estimates no cost: every model fits any cap, and its choice stands
    d = route(admin, features=[1.0, 0.0, 1.0], policy=onnx_policy, max_cost_usd=1e-6).json()
    assert d["model"] == "a"


def test_without_onnxruntime_the_service_names_the_extra(
    admin: httpx.Client, onnx_policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported = admin.get(f"/v1/policies/{onnx_policy}/export").content
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # the server runs in this process
    for r in (
        route(admin, features=[1.0, 0.0, 1.0], policy=onnx_policy),
        admin.post("/v1/policies/import", params={"id": "agent2"}, content=exported),
    ):
        assert r.status_code == 501, r.text
        assert "pip install 'banditroute[onnx]'" in r.json()["error"]["message"]
    assert admin.get("/v1/policies/agent2").status_code == 404
    import_policy(admin, to_bytes(make_policy("linucb", MODELS, 3)), "plain")  # other policies are unaffected
    assert np.isfinite(route(admin, features=[1.0, 0.0, 1.0], policy="plain").json()["propensity"])
