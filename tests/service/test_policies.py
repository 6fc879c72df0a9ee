"""Policies over HTTP: create, warm start, export/import round trip, tampering, live model changes, ONNX agents."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest

from banditroute.bandit import import_artifact
from tests.service.conftest import MODELS, b64, import_policy, route, tamper, wait_applied


def test_export_import_round_trip_gives_the_same_policy(admin: httpx.Client, policy: str) -> None:
    for _ in range(5):  # learn a little first
        d = route(admin, query="court statute contract", policy=policy).json()
        admin.post("/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 0.7})
    wait_applied(admin, policy)
    r = admin.get(f"/v1/policies/{policy}/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    art = import_artifact(r.content)  # verifies sums, format, shapes
    assert art.policy.n_updates == admin.get(f"/v1/policies/{policy}").json()["n_updates"]
    info = import_policy(admin, r.content, "copy")
    assert info["models"] == MODELS and info["has_featurizer"]
    x = [0.3, -0.2, 0.1, 0.0, 0.2, -0.1, 0.05, 1.0]
    for pid in (policy, "copy"):
        d = route(admin, features=x, policy=pid, lam=0.0).json()
        assert d["pmf"] == pytest.approx(route(admin, features=x, policy="copy", lam=0.0).json()["pmf"])
    again = admin.get("/v1/policies/copy/export").content
    a, b = import_artifact(again).policy.state_dict(), art.policy.state_dict()
    for k in a["arrays"]:
        np.testing.assert_array_equal(a["arrays"][k], b["arrays"][k])


def test_tampered_artifact_is_refused_and_nothing_changes(admin: httpx.Client, policy: str, artifact: bytes) -> None:
    before = admin.get("/v1/policies").json()
    for name in ("arrays.npz", "manifest.json"):
        r = admin.post("/v1/policies/import", params={"id": "evil"}, content=tamper(artifact, name))
        assert r.status_code == 422 and "sha256" in r.json()["error"]["message"]
    r = admin.post("/v1/policies/import", params={"id": "evil"}, content=b"\x80\x04\x95pickle")
    assert r.status_code == 422 and "zip" in r.json()["error"]["message"]
    r = admin.post("/v1/policies/import", params={"id": "evil"}, content=b"")
    assert r.status_code == 422
    assert admin.get("/v1/policies/evil").status_code == 404
    assert admin.get("/v1/policies").json() == before
    # replacing an existing policy with a tampered artifact leaves it as it was
    r = admin.post("/v1/policies/import", params={"id": policy, "replace": True}, content=tamper(artifact))
    assert r.status_code == 422
    assert admin.get("/v1/policies").json() == before


def test_import_conflict_and_replace(admin: httpx.Client, policy: str, artifact: bytes) -> None:
    r = admin.post("/v1/policies/import", params={"id": policy}, content=artifact)
    assert r.status_code == 409
    v = admin.get(f"/v1/policies/{policy}").json()["version"]
    r = admin.post("/v1/policies/import", params={"id": policy, "replace": True}, content=artifact)
    assert r.status_code == 201 and r.json()["version"] > v


def test_create_from_registry_and_warm_start(admin: httpx.Client, policy: str, artifact: bytes) -> None:
    r = admin.post(
        "/v1/policies",
        json={
            "id": "cold",
            "policy": "lints",
            "models": ["a", "b"],
            "featurizer_from": policy,
            "hyperparameters": {"v": 0.2},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["dim"] == 8 and r.json()["hyperparameters"]["v"] == 0.2 and r.json()["n_updates"] == 0
    assert route(admin, query="anything", policy="cold").json()["model"] in ("a", "b")
    r = admin.post(
        "/v1/policies",
        json={
            "id": "warm",
            "policy": "linucb",
            "models": ["large", "small", "newbie"],
            "artifact_b64": b64(artifact),
            "hyperparameters": {"alpha": 0.0},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["models"] == ["large", "small", "newbie"]
    d = route(admin, query="algebra proof theorem question", policy="warm", candidates=["large", "small"]).json()
    assert d["model"] == "large"  # learned preference survived the warm start


@pytest.mark.parametrize(
    ("body", "status", "match"),
    [
        ({"id": "x", "policy": "nosuch", "models": ["a"], "dim": 4}, 422, "unknown policy 'nosuch'"),
        ({"id": "x", "policy": "linucb", "models": ["a"], "dim": 4, "hyperparameters": {"alpha": -1}}, 422, "alpha"),
        ({"id": "x", "policy": "linucb", "models": ["a", "a"], "dim": 4}, 422, "distinct"),
        ({"id": "x", "policy": "linucb", "models": ["a"]}, 422, "dim"),
        ({"id": "x y", "policy": "linucb", "models": ["a"], "dim": 4}, 422, "id"),
        ({"id": "x", "policy": "linucb", "models": ["a"], "artifact_b64": "!!"}, 422, "base64"),
        ({"id": "x", "policy": "lints", "artifact_b64": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}, 422, "artifact"),
        ({"id": "x", "policy": "linucb", "models": ["a"], "featurizer_from": "ghost"}, 422, "no featurizer"),
        ({"id": "main", "policy": "linucb", "models": ["a"], "dim": 4}, 409, "exists"),
    ],
)
def test_bad_policy_creation(admin: httpx.Client, policy: str, body: dict, status: int, match: str) -> None:
    before = admin.get("/v1/policies").json()
    r = admin.post("/v1/policies", json=body)
    assert r.status_code == status, r.text
    assert match in r.json()["error"]["message"]
    assert admin.get("/v1/policies").json() == before


def test_models_added_and_removed_live(admin: httpx.Client, policy: str) -> None:
    d = route(admin, query="python loop", policy=policy, candidates=["medium"]).json()
    r = admin.post(f"/v1/policies/{policy}/models", json={"model": "org/new-model"})
    assert r.status_code == 200 and r.json()["models"] == [*MODELS, "org/new-model"]
    d2 = route(admin, query="python loop", policy=policy, candidates=["org/new-model"]).json()
    assert d2["model"] == "org/new-model" and d2["policy_version"] > d["policy_version"]
    r = admin.delete(f"/v1/policies/{policy}/models/medium")
    assert r.status_code == 200 and "medium" not in r.json()["models"]
    assert route(admin, query="python", policy=policy, candidates=["medium"]).status_code == 422
    # feedback on a decision for a removed model is accepted, then skipped and counted, not lost silently
    admin.post("/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 1.0})
    assert wait_applied(admin, policy)["feedback"]["skipped"] == 1
    assert admin.delete(f"/v1/policies/{policy}/models/ghost").status_code == 422
    assert admin.post(f"/v1/policies/{policy}/models", json={"model": "large"}).status_code == 422
    assert admin.post("/v1/policies/ghost/models", json={"model": "x"}).status_code == 404


def test_onnx_agent_imports_as_a_static_policy(admin: httpx.Client, tmp_path: Path, mmlu_slice: Path) -> None:
    pytest.importorskip("stable_baselines3")
    from banditroute.env.features import FeaturizerSpec
    from banditroute.simulations.rl import train_rl

    out = tmp_path / "agent"
    m = train_rl(
        mmlu_slice, algo="ppo", steps=256, out=out, spec=FeaturizerSpec(dim=16, max_features=2000), progress_bar=False
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in ("policy.onnx", "featurizer.json", "featurizer.npz", "metrics.json"):
            z.write(out / name, name)
    r = admin.post("/v1/policies/import-onnx", params={"id": "rl"}, content=buf.getvalue())
    assert r.status_code == 201, r.text
    assert r.json()["policy"] == "onnx-static" and r.json()["models"] == m["models"]
    d = route(admin, query="What is the derivative of x squared?", policy="rl").json()
    assert d["model"] in m["models"] and d["propensity"] > 0
    fb = admin.post(
        "/v1/feedback", json={"decision_id": d["decision_id"], "source": "evaluator", "score": 1.0, "wait": True}
    )
    assert fb.status_code == 202 and fb.json()["applied"]  # counted, nothing to learn
    info = admin.get("/v1/policies/rl").json()
    assert info["n_updates"] == 1 and info["policy"] == "onnx-static"
    # the network is the policy's state: it exports and imports like any other policy
    r = admin.get("/v1/policies/rl/export")
    assert r.status_code == 200, r.text
    art = import_artifact(r.content)
    assert art.policy.name == "onnx-static" and art.policy.models == tuple(m["models"]) and art.featurizer_state
    assert import_policy(admin, r.content, "rl-copy")["policy"] == "onnx-static"
    x = [0.1] * 15 + [1.0]
    pmfs = [route(admin, features=x, policy=pid).json()["pmf"] for pid in ("rl", "rl-copy")]
    assert pmfs[0] == pytest.approx(pmfs[1]) and sum(pmfs[0].values()) == pytest.approx(1.0)
    r = admin.post("/v1/policies/rl/models", json={"model": "extra"})
    assert r.status_code == 422 and "cannot add" in r.json()["error"]["message"]
    bad = admin.post("/v1/policies/import-onnx", params={"id": "rl2"}, content=b"PK\x05\x06" + b"\0" * 18)
    assert bad.status_code == 422


def test_policy_cli_through_the_service_and_through_redis(
    admin: httpx.Client, policy: str, redis_url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from banditroute.cli import app
    from tests.service.conftest import ADMIN

    cli = CliRunner()
    url = str(admin.base_url).rstrip("/")
    r = cli.invoke(
        app, ["policy", "export", policy, "--url", url, "--api-key", ADMIN, "--out", str(tmp_path / "a.zip")]
    )
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["policy", "export", policy, "--redis-url", redis_url, "--out", str(tmp_path / "dir")])
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "dir").iterdir()} == {"manifest.json", "arrays.npz", "SHA256SUMS"}
    r = cli.invoke(
        app, ["policy", "import", str(tmp_path / "a.zip"), "--id", "via-http", "--url", url, "--api-key", ADMIN]
    )
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["policy", "import", str(tmp_path / "dir"), "--id", "via-redis", "--redis-url", redis_url])
    assert r.exit_code == 0, r.output
    ids = {p["id"] for p in admin.get("/v1/policies").json()}
    assert {"via-http", "via-redis"} <= ids
    x = [0.2] * 7 + [1.0]
    pmfs = [route(admin, features=x, policy=p, lam=0.0).json()["pmf"] for p in (policy, "via-http", "via-redis")]
    assert pmfs[1] == pytest.approx(pmfs[0])
    assert pmfs[2] == pytest.approx(pmfs[0])
    r = cli.invoke(app, ["policy", "import", str(tmp_path / "dir"), "--id", "via-redis", "--redis-url", redis_url])
    assert r.exit_code == 2 and "exists" in r.output
    (tmp_path / "dir" / "arrays.npz").write_bytes(b"tampered")
    r = cli.invoke(app, ["policy", "import", str(tmp_path / "dir"), "--id", "evil", "--redis-url", redis_url])
    assert r.exit_code == 2 and "sha256" in r.output
    assert admin.get("/v1/policies/evil").status_code == 404
