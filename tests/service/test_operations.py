"""Auth scopes, health, readiness, metrics, OpenAPI, the embedded default, and restarts."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from banditroute.service.app import create_app
from tests.service.conftest import ADMIN, FEEDBACK, ROUTER, LiveServer, import_policy, route, settings_for


@pytest.mark.parametrize(
    ("key", "method", "path", "status"),
    [
        (None, "post", "/v1/route", 401),
        ("wrong", "post", "/v1/route", 401),
        (FEEDBACK, "post", "/v1/route", 403),
        (ROUTER, "get", "/v1/policies", 403),
        (ROUTER, "post", "/v1/feedback", 403),
        (ROUTER, "post", "/v1/experiments", 403),
        (None, "get", "/v1/policies", 401),
        (FEEDBACK, "get", "/v1/policies/main/export", 403),
    ],
)
def test_api_key_scopes(service: LiveServer, policy: str, key: str | None, method: str, path: str, status: int) -> None:
    headers = {"X-API-Key": key} if key else {}
    r = getattr(httpx, method)(service.url + path, headers=headers, **({"json": {}} if method == "post" else {}))
    assert r.status_code == status
    assert r.json()["error"]["type"] in ("unauthorized", "forbidden")


def test_route_key_routes_and_feedback_key_gives_feedback(service: LiveServer, policy: str) -> None:
    r = httpx.post(
        service.url + "/v1/route", json={"query": "x", "policy": policy}, headers={"Authorization": f"Bearer {ROUTER}"}
    )
    assert r.status_code == 200
    f = httpx.post(
        service.url + "/v1/feedback",
        headers={"X-API-Key": FEEDBACK},
        json={"decision_id": r.json()["decision_id"], "source": "user", "score": 1},
    )
    assert f.status_code == 202


def test_health_ready_metrics(admin: httpx.Client, policy: str) -> None:
    assert admin.get("/healthz").json() == {"status": "ok"}
    assert admin.get("/readyz").json() == {"status": "ready", "policies": 1}
    route(admin, query="x", policy=policy)
    text = admin.get("/metrics").text
    assert "banditroute_requests_total" in text and "banditroute_decisions_total{model=" in text
    assert "banditroute_request_seconds_bucket" in text
    assert admin.get("/v1/baseline").json() == {"ok": True}


def test_openapi_documents_every_response(admin: httpx.Client) -> None:
    spec = admin.get("/openapi.json").json()
    assert "/metrics" not in spec["paths"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            if path.startswith("/v1/") and path != "/v1/baseline":
                assert {"401", "403", "503"} <= codes, (method, path)
            if method == "post":
                assert "422" in codes, (method, path)


def test_restart_loses_nothing_redis_kept(redis_url: str, artifact: bytes) -> None:
    first = LiveServer(create_app(settings_for(redis_url))).start()
    with httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        import_policy(c, artifact, "keep")
        d1 = route(c, query="algebra proof", policy="keep").json()
        c.post("/v1/feedback", json={"decision_id": d1["decision_id"], "source": "user", "score": 1.0, "wait": True})
        d2 = route(c, query="court statute", policy="keep").json()
        info = c.get("/v1/policies/keep").json()
    first.stop()
    second = LiveServer(create_app(settings_for(redis_url))).start()
    try:
        with httpx.Client(base_url=second.url, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
            assert c.get("/v1/policies/keep").json() == info
            # the decision made before the restart still takes its feedback
            r = c.post(
                "/v1/feedback", json={"decision_id": d2["decision_id"], "source": "user", "score": 0.5, "wait": True}
            )
            assert r.status_code == 202 and r.json()["applied"]
            assert c.get("/v1/policies/keep").json()["n_updates"] == info["n_updates"] + 1
            dup = c.post("/v1/feedback", json={"decision_id": d1["decision_id"], "source": "user", "score": 1.0})
            assert dup.status_code == 409  # idempotency marks survived too
    finally:
        second.stop()


def test_embedded_default_starts_and_stops_a_real_redis(tmp_path: Path, artifact: bytes) -> None:
    settings = settings_for(None, embedded_dir=str(tmp_path / "redis"))
    srv = LiveServer(create_app(settings)).start()
    try:
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
            import_policy(c, artifact, "emb")
            d = route(c, query="python loop", policy="emb").json()
            assert c.post(
                "/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 1, "wait": True}
            ).json()["applied"]
            before = c.get("/v1/policies/emb").json()
        assert (tmp_path / "redis" / "redis.sock").exists()
    finally:
        srv.stop()
    deadline = time.monotonic() + 5
    while (tmp_path / "redis" / "redis.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (tmp_path / "redis" / "redis.sock").exists()  # the server was shut down with the app
    # the data directory kept the append-only file: a new embedded server sees the policy
    srv = LiveServer(create_app(settings)).start()
    try:
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
            assert c.get("/v1/policies/emb").json() == before
    finally:
        srv.stop()


def test_serve_stops_its_embedded_redis_on_sigterm(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    import os
    import signal

    from banditroute.testing import ServeProcess

    env = {"BANDITROUTE_EMBEDDED_DIR": str(tmp_path / "r"), "BANDITROUTE_LOG_LEVEL": "WARNING"}
    env.pop("BANDITROUTE_REDIS_URL", None)
    srv = ServeProcess(1, env)
    srv.env.pop("BANDITROUTE_REDIS_URL", None)
    srv.start()
    assert srv.proc is not None
    try:
        children = psutil.Process(srv.proc.pid).children(recursive=True)
        servers = [c for c in children if "redis-server" in " ".join(c.cmdline())]
        assert len(servers) == 1
        os.kill(srv.proc.pid, signal.SIGTERM)  # the process only, as a supervisor would, not its group
        srv.proc.wait(timeout=20)
        gone, alive = psutil.wait_procs(servers, timeout=10)
        assert not alive, "the embedded Redis outlived banditroute serve"
    finally:
        srv.stop()
