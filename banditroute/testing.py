"""Test support, not product code: servers on free loopback ports for tests and benchmarks.

- :func:`free_port`, :func:`free_cluster_ports`: loopback ports nobody listens on;
- :class:`ServerThread`: the app under uvicorn in a daemon thread of this process;
- :class:`ServeProcess`: ``python -m banditroute serve`` as a child process group (several workers);
- :func:`bare_redis_app`, :class:`BareRedisProcess`: the bare FastAPI + Redis endpoint the service's throughput is
  compared with, under uvicorn with ``serve``'s settings;
- :class:`LocalCluster`: a Redis Cluster of a few masters from the embedded Redis binary.

Nothing in the service imports this module.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis
import uvicorn
from pydantic import BaseModel

from banditroute.service.embedded import EmbeddedRedis, redis_server_binary

__all__ = [
    "BareRedisProcess",
    "LocalCluster",
    "ServeProcess",
    "ServerThread",
    "bare_redis_app",
    "free_cluster_ports",
    "free_port",
    "redis_cli_binary",
    "serve_bare_redis_app",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_cluster_ports(n: int, low: int = 20_000, high: int = 40_000) -> list[int]:
    """``n`` distinct loopback ports whose cluster-bus ports (port + 10000) are free as well."""
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
        cwd: the server's working directory (default: this process's).
    """

    def __init__(
        self, workers: int = 1, env: dict[str, str] | None = None, port: int | None = None, cwd: Path | None = None
    ) -> None:
        self.workers = workers
        self.env = {**os.environ, **(env or {})}
        self.port = port or free_port()
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServeProcess:
        import httpx

        cmd = self.command()
        # our own interpreter and module, with integer arguments: nothing untrusted reaches the command line
        self.proc = subprocess.Popen(  # noqa: S603
            cmd,
            env=self.env,
            cwd=self.cwd,
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

    def command(self) -> list[str]:
        return [sys.executable, "-m", "banditroute", "serve", "--workers", str(self.workers), "--port", str(self.port)]

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


class BareBody(BaseModel):
    """The bare endpoint's body (the route body's two common fields); at module level so that FastAPI resolves it."""

    policy: str
    query: str


def bare_redis_app() -> Any:
    """A bare FastAPI endpoint with Redis: ``POST /bare`` parses a small JSON body, does one Redis GET and one SET
    (a ``redis.asyncio`` client opened in the lifespan, URL from ``BANDITROUTE_REDIS_URL``) and returns a small JSON;
    ``GET /healthz`` answers without Redis. The yardstick of the service's route throughput (benchmarks/)."""
    from collections.abc import AsyncIterator

    import redis.asyncio as aioredis
    from fastapi import FastAPI

    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        client = aioredis.Redis.from_url(os.environ["BANDITROUTE_REDIS_URL"])
        state["redis"] = client
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/bare")
    async def bare(body: BareBody) -> dict[str, Any]:
        client = state["redis"]
        raw = await client.get(f"br:bare:{body.policy}")
        await client.set(f"br:bare:{body.policy}:last", body.query[:64])
        return {"model": raw.decode() if raw else "none", "policy": body.policy}

    return app


def serve_bare_redis_app(port: int, workers: int) -> None:
    """:func:`bare_redis_app` under uvicorn exactly as ``banditroute serve`` runs the service (same options)."""
    import uvicorn

    from banditroute.service.serving import uvicorn_options

    uvicorn.run(
        "banditroute.testing:bare_redis_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        **uvicorn_options(),
    )


class BareRedisProcess(ServeProcess):
    """:func:`serve_bare_redis_app` as a child process group on 127.0.0.1 (``env`` must name
    ``BANDITROUTE_REDIS_URL``)."""

    def command(self) -> list[str]:
        code = f"from banditroute.testing import serve_bare_redis_app as s; s({self.port}, {self.workers})"
        return [sys.executable, "-c", code]


def redis_cli_binary() -> str:
    """The ``redis-cli`` beside the ``redis-server`` in use."""
    beside = Path(redis_server_binary()).with_name("redis-cli")
    found = str(beside) if beside.exists() else shutil.which("redis-cli")
    if not found:
        raise RuntimeError("no redis-cli beside redis-server or on PATH")
    return found


class LocalCluster:
    """A Redis Cluster of ``masters`` nodes on loopback ports, from the same redis-server binary (for tests and
    benchmarks; no replicas, no persistence)."""

    def __init__(self, ports: list[int], directory: str | os.PathLike[str] | None = None) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="banditroute-cluster-"))
        self.nodes: list[EmbeddedRedis] = [
            EmbeddedRedis(
                self.directory / str(p),
                port=p,
                extra_args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--appendonly", "no"],
            )
            for p in ports
        ]

    @property
    def url(self) -> str:
        url: str = self.nodes[0].url
        return url

    def start(self, timeout: float = 30.0) -> LocalCluster:
        try:
            for node in self.nodes:
                node.start()
        except Exception:
            self.stop()  # do not leave the nodes that did start behind
            raise
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        # the bundled redis-cli with loopback addresses we chose: nothing untrusted reaches the command line
        subprocess.run(  # noqa: S603
            [
                redis_cli_binary(),
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        deadline = time.monotonic() + timeout
        while True:
            states = [redis.Redis(port=n.port or 0).cluster("info").get("cluster_state") for n in self.nodes]
            if all(s == "ok" for s in states):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"cluster did not become ok: {states}")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
