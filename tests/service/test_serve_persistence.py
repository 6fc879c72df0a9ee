"""``banditroute serve`` keeps its embedded Redis's data, reports what it serves, stops fast on SIGTERM, and deals
with the orphaned Redis of a crashed run. Real processes, loopback only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from banditroute.testing import free_port
from tests.service.conftest import import_policy, route


def start(data: Path, port: int, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("BANDITROUTE_")}
    full.update({"BANDITROUTE_LOG_LEVEL": "WARNING", **(env or {})})
    cmd = [sys.executable, "-m", "banditroute", "serve", "--port", str(port), "--data-dir", str(data)]
    proc = subprocess.Popen(cmd, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
        time.sleep(0.1)


def stop(proc: subprocess.Popen[str]) -> tuple[float, str]:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return time.monotonic() - t0, out


def test_restart_with_the_same_data_dir_keeps_everything(tmp_path: Path, artifact: bytes) -> None:
    data, port = tmp_path / "d", free_port()
    proc = start(data, port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        import_policy(c, artifact, "keep")
        d = route(c, query="algebra proof", policy="keep").json()
        assert (
            c.post("/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 1}).status_code
            == 202
        )
        time.sleep(0.5)
        before = c.get("/v1/policies/keep").json()
    elapsed, out = stop(proc)
    # behaviour, not a stopwatch: serve exits on SIGTERM by itself, without the 30 s kill of stop(); the 2 s figure
    # (about 0.8 s on an idle machine) is a timing that a loaded 2-core machine may stretch
    assert proc.returncode is not None and elapsed < 10.0, f"SIGTERM took {elapsed:.2f} s"
    assert f"http://127.0.0.1:{port}" in out and str(data) in out and "redis:" in out
    assert "auth is off" in out  # said loudly when there are no keys
    proc = start(data, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            after = c.get("/v1/policies/keep").json()
            assert (after["version"], after["n_updates"], after["feedback"]) == (
                before["version"],
                before["n_updates"],
                before["feedback"],
            )
            assert c.get(f"/v1/decisions/{d['decision_id']}").json()["feedback"] == {"user": 1.0}
            again = c.post("/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 1})
            assert again.status_code == 409  # the idempotency mark survived
    finally:
        stop(proc)


def test_an_orphaned_redis_from_a_crashed_run_is_stopped_not_clobbered(tmp_path: Path, artifact: bytes) -> None:
    data, port = tmp_path / "o", free_port()
    proc = start(data, port, {"BANDITROUTE_API_KEYS": '{"k-0123456789": ["admin", "route", "feedback"]}'})
    headers = {"Authorization": "Bearer k-0123456789"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as c:
        import_policy(c, artifact, "o")
    orphan = int((data / "redis.pid").read_text())
    proc.kill()  # kill -9 of serve alone: its Redis lives on
    proc.communicate(timeout=10)
    os.kill(orphan, 0)  # the orphan is alive
    proc = start(data, port, {"BANDITROUTE_API_KEYS": '{"k-0123456789": ["admin", "route", "feedback"]}'})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as c:
            assert c.get("/v1/policies/o").status_code == 200  # its data, flushed by a clean shutdown, is served
            assert route(c, query="algebra", policy="o").status_code == 200
        time.sleep(0.2)
        try:
            os.kill(orphan, 0)
            gone = False
        except ProcessLookupError:
            gone = True
        assert gone, "the orphaned redis-server still runs"
    finally:
        _, out = stop(proc)
    assert f"stopped orphan (pid {orphan})" in out and "auth: on" in out
