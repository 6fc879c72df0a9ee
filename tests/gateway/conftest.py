"""The gateway under test: replay upstreams (one per model, each on its own loopback port so a test can kill one),
a real Redis, and the service under uvicorn; driven with the real ``openai`` client."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import redis

from banditroute.bandit import LinUCB, to_bytes
from banditroute.env.features import Featurizer
from banditroute.service.app import create_app
from banditroute.service.config import Settings
from banditroute.testing import ServerThread
from banditroute.testing_upstreams import ReplayModel, ReplayUpstream
from tests.service.conftest import redis_server, redis_url  # the service tests' real Redis, shared

__all__ = ["redis_server", "redis_url"]

ADMIN = "gw-admin-key-0123456789"
ROUTER = "gw-route-key-0123456789"
UPSTREAM_KEY = "sk-upstream-SECRET-9f8e7d6c5b4a"
KEY_ENV = "BR_TEST_UPSTREAM_KEY"
MODELS = ["small", "medium", "large"]
PRICES = {"small": (0.1, 0.4), "medium": (1.0, 4.0), "large": (5.0, 15.0), "judge": (0.1, 0.1)}
TOPICS = ["algebra proof theorem", "court statute contract", "python loop function", "cell protein enzyme"]
PROMPTS = [f"{TOPICS[i % 4]} question {i} about {TOPICS[(i * 7) % 4].split()[0]}" for i in range(80)]


@dataclass
class Upstreams:
    apps: dict[str, ReplayUpstream]
    servers: dict[str, ServerThread]

    def kill(self, name: str) -> None:
        self.servers[name].stop()


@pytest.fixture(scope="session")
def artifact() -> bytes:
    """A LinUCB over small/medium/large, 'large' best on algebra and 'small' on the rest."""
    fz = Featurizer(dim=8, max_features=300).fit(PROMPTS)
    X = fz.transform(PROMPTS)
    q = np.array([[0.2, 0.4, 0.9] if "algebra" in p else [0.8, 0.5, 0.6] for p in PROMPTS])
    c = np.tile([0.001, 0.004, 0.02], (len(PROMPTS), 1))
    policy = LinUCB(MODELS, 8, alpha=0.05, seed=0, explore_floor=0.1)
    policy.fit_full(X, q, c)
    return to_bytes(policy, fz)


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    apps: dict[str, ReplayUpstream] = {}
    servers: dict[str, ServerThread] = {}
    for m in [*MODELS, "judge"]:
        default = "8" if m == "judge" else f"{m} says: the answer is (B)."
        apps[m] = ReplayUpstream({m: ReplayModel(m, default=default)})
        servers[m] = ServerThread(apps[m]).start()
    yield Upstreams(apps, servers)
    for app in apps.values():
        app.mode = "ok"  # releases hanging calls
    for s in servers.values():
        if s.thread.is_alive():
            s.stop()


def write_config(path: Path, ups: Upstreams, extra: str = "", models: list[str] | None = None) -> Path:
    lines = []
    for m in models or [*MODELS, "judge"]:
        lines += [
            f'[models."{m}"]',
            f'base_url = "{ups.servers[m].url}/v1"',
            f'api_key_env = "{KEY_ENV}"',
            f"input_usd_per_mtok = {PRICES[m][0]}",
            f"output_usd_per_mtok = {PRICES[m][1]}",
            "timeout_s = 5",
            "",
        ]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@dataclass
class Gw:
    server: ServerThread
    app: Any
    ups: Upstreams
    redis_url: str
    clients: list[openai.OpenAI] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> openai.OpenAI:
        c = openai.OpenAI(base_url=self.url + "/v1", api_key=ROUTER, max_retries=0, timeout=20)
        self.clients.append(c)  # closed at teardown: an unclosed client's sockets warn when collected
        return c

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key=ROUTER, max_retries=0, timeout=20)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)

    def decision(self, did: str) -> dict[str, str]:
        pid = did.split(".", 1)[0]
        raw = redis.Redis.from_url(self.redis_url).hgetall(f"br:{{{pid}}}:dec:{did}")
        return {k.decode(): v.decode("utf-8", "replace") for k, v in raw.items()}

    def wait_decision(self, did: str, key: str, timeout: float = 10.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            d = self.decision(did)
            if key in d:
                return d
            if time.monotonic() > deadline:
                raise AssertionError(f"decision {did} has no {key!r}: {sorted(d)}")
            time.sleep(0.01)


def start_gateway(redis_url: str, ups: Upstreams, config: Path, artifact: bytes, monkeypatch: pytest.MonkeyPatch) -> Gw:
    monkeypatch.setenv(KEY_ENV, UPSTREAM_KEY)
    settings = Settings(
        redis_url=redis_url,
        api_keys={ADMIN: ["admin", "route", "feedback"], ROUTER: ["route", "feedback"]},
        decision_ttl_seconds=3600,
        log_level="DEBUG",
        upstreams=str(config),
    )
    app = create_app(settings)
    server = ServerThread(app).start()
    gw = Gw(server, app, ups, redis_url)
    with gw.admin() as c:
        r = c.post(
            "/v1/policies/import", params={"id": "main"}, content=artifact, headers={"Content-Type": "application/zip"}
        )
        assert r.status_code == 201, r.text
    return gw


@pytest.fixture
def gateway_factory(
    redis_url: str, upstreams: Upstreams, artifact: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    started: list[Gw] = []

    def make(extra: str = "") -> Gw:
        cfg = write_config(tmp_path / f"upstreams{len(started)}.toml", upstreams, extra)
        gw = start_gateway(redis_url, upstreams, cfg, artifact, monkeypatch)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        for c in gw.clients:
            c.close()
        gw.server.stop()


@pytest.fixture
def gateway(gateway_factory: Any) -> Gw:
    gw: Gw = gateway_factory()
    return gw


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + " " + repr(vars(record)))


@pytest.fixture
def service_logs() -> Iterator[Captured]:
    from banditroute.service.logs import JsonFormatter

    handler = Captured()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("banditroute")
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def ask(topic: int = 0, i: int = 0) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPTS[(topic + 4 * i) % 80]}]
