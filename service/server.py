"""Serve the app on 127.0.0.1: in a background thread (simulations, the demo, the tests), or as a
``banditroute serve`` process group with several workers (multi-worker tests and benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_cluster_ports(n: int, low: int = 20_000, high: int = 40_000) -> list[int]:
    """``n`` distinct loopback ports whose cluster-bus ports (port + 10000) are free as well."""
    import random

    rng = random.Random()  # noqa: S311 - choosing test ports, not secrets
    chosen: list[int] = []
    for _ in range(2000):
        p = rng.randrange(low, high)
        if p in chosen:
            continue
        ok = True
        for q in (p, p + 10_000):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", q))
                except OSError:
                    ok = False
                    break
        if ok:
            chosen.append(p)
            if len(chosen) == n:
                return chosen
    raise RuntimeError("no free ports for a local cluster")


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1 in a daemon thread; ``start()`` returns once it accepts requests."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="banditroute-server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServeProcess:
    """``banditroute serve`` as a child process group on 127.0.0.1 (for multi-worker tests and benchmarks).

    Args:
        workers: uvicorn worker processes.
        env: extra environment (``BANDITROUTE_*`` settings).
        port: TCP port (default: a free one).
    """

    def __init__(self, workers: int = 1, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.workers = workers
        self.env = {**os.environ, **(env or {})}
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServeProcess:
        import httpx

        cmd = [
            sys.executable,
            "-m",
            "banditroute",
            "serve",
            "--workers",
            str(self.workers),
            "--port",
            str(self.port),
        ]
        # our own interpreter and module, with integer arguments: nothing untrusted reaches the command line
        self.proc = subprocess.Popen(  # noqa: S603
            cmd,
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("banditroute serve did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
