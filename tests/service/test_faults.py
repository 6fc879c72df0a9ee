"""Faults: Redis killed and restarted under load, Redis slow, a worker killed. Bounded in time; loopback only."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from banditroute.service.app import create_app
from banditroute.service.embedded import EmbeddedRedis
from banditroute.testing import ServeProcess, ServerThread, free_port
from tests.service.conftest import ADMIN, KEYS, import_policy, settings_for, wait_applied

H = {"Authorization": f"Bearer {ADMIN}"}


def _load(url: str, stop: threading.Event, acked: list[str], codes: list[int], limit: int = 5000) -> None:
    """Route + feedback in a loop (bounded in count) until ``stop``; record acknowledged feedback."""
    with httpx.Client(base_url=url, headers=H, timeout=10) as c:
        for i in range(limit):
            if stop.is_set():
                return
            try:
                r = c.post("/v1/route", json={"query": f"algebra court question {i}", "policy": "f"})
                codes.append(r.status_code)
                if r.status_code != 200 or r.json()["fallback"]:
                    time.sleep(0.02)
                    continue
                did = r.json()["decision_id"]
                f = c.post("/v1/feedback", json={"decision_id": did, "source": "user", "score": 1.0})
                codes.append(f.status_code)
                if f.status_code == 202:
                    acked.append(did)
            except httpx.HTTPError:
                codes.append(-1)


def test_redis_killed_and_restarted_under_load(tmp_path: Path, artifact: bytes) -> None:
    port = free_port()
    data = tmp_path / "redis"
    # appendfsync always: every write Redis acknowledged is on disk before the reply (see README, operations)
    server = EmbeddedRedis(data, appendfsync="always", port=port).start()
    app = create_app(settings_for(f"redis://127.0.0.1:{port}", fallback_model="small", redis_timeout_seconds=1.0))
    srv = ServerThread(app).start()
    stop = threading.Event()
    acked: list[str] = []
    codes: list[int] = []
    try:
        with httpx.Client(base_url=srv.url, headers=H, timeout=10) as c:
            import_policy(c, artifact, "f")
            worker = threading.Thread(target=_load, args=(srv.url, stop, acked, codes))
            worker.start()
            time.sleep(1.0)
            server.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
            server.proc.wait(timeout=5)  # type: ignore[union-attr]
            server.stop()  # the process is gone; this only closes its pipes (the data directory stays)
            down_acked = len(acked)
            time.sleep(0.5)
            r = c.post("/v1/route", json={"query": "while redis is away", "policy": "f"})
            assert r.status_code == 200 and r.json()["fallback"] is True and r.json()["model"] == "small"
            f = c.post("/v1/feedback", json={"decision_id": "f." + "0" * 32, "source": "user", "score": 1})
            assert f.status_code == 503 and "Redis unavailable" in f.json()["error"]["message"]
            assert f.headers.get("retry-after") == "1"
            assert c.get("/readyz").status_code == 503
            server = EmbeddedRedis(data, appendfsync="always", port=port).start()  # same data dir: AOF replay
            deadline = time.monotonic() + 20
            while c.get("/readyz").status_code != 200:  # recovers by itself, no restart of the service
                assert time.monotonic() < deadline, "service did not recover"
                time.sleep(0.1)
            time.sleep(1.0)
            stop.set()
            worker.join(timeout=30)
            assert len(acked) > down_acked > 0  # feedback was acknowledged before the kill and after the restart
            probe = c.get("/v1/policies/f")
            assert probe.status_code == 200, probe.text
            info = wait_applied(c, "f", timeout=60)
            rd = redis.Redis(port=port)
            for did in acked:  # every acknowledged feedback survived the kill
                assert rd.exists(f"br:{{f}}:fb:{did}:user"), did
            assert info["feedback"]["applied"] == info["feedback"]["accepted"] >= len(acked)
            assert 500 not in codes
    finally:
        stop.set()
        srv.stop()
        server.stop()


def test_slow_redis_times_out_within_the_deadline(tmp_path: Path, artifact: bytes) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path / "r", port=port).start()
    srv = ServerThread(create_app(settings_for(f"redis://127.0.0.1:{port}", redis_timeout_seconds=0.5))).start()
    try:
        with httpx.Client(base_url=srv.url, headers=H, timeout=10) as c:
            import_policy(c, artifact, "f")
            blocker = threading.Thread(target=lambda: redis.Redis(port=port).execute_command("DEBUG", "SLEEP", "2"))
            blocker.start()
            time.sleep(0.1)
            t0 = time.monotonic()
            r = c.post("/v1/route", json={"query": "slow", "policy": "f"})
            elapsed = time.monotonic() - t0
            blocker.join()
            assert r.status_code == 503 and r.json()["error"]["type"] == "unavailable"
            assert elapsed < 1.5  # the 0.5 s deadline, not Redis's 2 s stall
            assert c.post("/v1/route", json={"query": "fast again", "policy": "f"}).status_code == 200
    finally:
        srv.stop()
        server.stop()


def test_worker_killed_mid_load_loses_no_acknowledged_feedback(redis_url: str, artifact: bytes) -> None:
    psutil = pytest.importorskip("psutil")
    env = {
        "BANDITROUTE_REDIS_URL": redis_url,
        "BANDITROUTE_API_KEYS": json.dumps(KEYS),
        "BANDITROUTE_LOG_LEVEL": "WARNING",
        "BANDITROUTE_REDIS_TIMEOUT_SECONDS": "20",
    }
    serve = ServeProcess(2, env).start()
    url = serve.url
    assert serve.proc is not None
    proc = serve.proc
    try:
        with httpx.Client(base_url=url, headers=H, timeout=30) as c:
            import_policy(c, artifact, "f")
        stop = threading.Event()
        acked: list[str] = []
        codes: list[int] = []
        loaders = [threading.Thread(target=_load, args=(url, stop, acked, codes, 400)) for _ in range(4)]
        for t in loaders:
            t.start()
        time.sleep(1.5)
        workers = uvicorn_workers(psutil, proc.pid)
        assert len(workers) == 2, "expected the two uvicorn worker processes"
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        assert not victim.is_running(), "the worker survived SIGKILL"
        time.sleep(2.0)
        stop.set()
        for t in loaders:
            t.join(timeout=60)
        with httpx.Client(base_url=url, headers=H, timeout=30) as c:
            deadline = time.monotonic() + 60
            while True:  # uvicorn's supervisor replaces the dead worker; any live worker's learner drains
                try:
                    info = wait_applied(c, "f", timeout=60)
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
        rd = redis.Redis.from_url(redis_url)
        for did in acked:
            assert rd.exists(f"br:{{f}}:fb:{did}:user"), did
        assert info["feedback"]["applied"] == info["feedback"]["accepted"] >= len(acked) > 0
        assert 500 not in codes
        deadline = time.monotonic() + 30
        while len(uvicorn_workers(psutil, proc.pid)) < 2:  # the supervisor replaced the killed worker
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.2)
        assert victim.pid not in {w.pid for w in uvicorn_workers(psutil, proc.pid)}
    finally:
        serve.stop()


def uvicorn_workers(psutil: Any, pid: int) -> list[Any]:
    """The uvicorn worker processes under ``banditroute serve`` (``pid``): children started by multiprocessing's
    spawn, not its resource tracker nor the embedded Redis."""
    out = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "spawn_main" in cmd and "resource_tracker" not in cmd and child.is_running():
            out.append(child)
    return out
