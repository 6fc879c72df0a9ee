"""POST /v1/route is answered by service.route_fast, not FastAPI's operation: the same answers, request by request.

The same requests go over HTTP to the service as built and to one whose fast path is taken out (FastAPI's own
operation answers there), on the same Redis and policy; statuses and error bodies must be equal, and a good route
must be answered (and counted under the operation's path template) by both.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from banditroute.service.app import create_app
from banditroute.service.route_fast import RouteFastPath
from banditroute.testing import ServerThread

from .conftest import ADMIN, FEEDBACK, ROUTER, import_policy, settings_for

ASKS: list[tuple[str, dict[str, str], bytes]] = [
    ("no key, bad JSON", {"content-type": "application/json"}, b'{"query": '),
    ("no key, good body", {"content-type": "application/json"}, b'{"query": "hi", "policy": "main"}'),
    ("bad key", {"content-type": "application/json", "x-api-key": "nope"}, b'{"query": "hi"}'),
    ("feedback-only key", {"content-type": "application/json", "x-api-key": FEEDBACK}, b'{"query": "x"}'),
    ("no body", {"x-api-key": ROUTER}, b""),
    ("no content type", {"x-api-key": ROUTER}, b'{"query": "hi", "policy": "main"}'),
    ("text/plain", {"x-api-key": ROUTER, "content-type": "text/plain"}, b'{"query": "hi", "policy": "main"}'),
    ("+json type", {"x-api-key": ROUTER, "content-type": "application/vnd.x+json"}, b'{"query": "hi", "policy": "p0"}'),
    ("bad JSON", {"x-api-key": ROUTER, "content-type": "application/json"}, b'{"query": "hi",}'),
    ("a list", {"x-api-key": ROUTER, "content-type": "application/json"}, b"[1, 2]"),
    ("unknown field", {"x-api-key": ROUTER, "content-type": "application/json"}, b'{"query": "a", "zz": 1}'),
    ("wrong type", {"x-api-key": ROUTER, "content-type": "application/json"}, b'{"query": 5, "policy": "main"}'),
    ("deep", {"x-api-key": ROUTER, "content-type": "application/json"}, b"[" * 100_000 + b"]" * 100_000),
    ("unknown policy", {"x-api-key": ROUTER, "content-type": "application/json"}, b'{"query": "a", "policy": "zz"}'),
]


@pytest.fixture
def both(redis_url: str, artifact: bytes) -> Iterator[tuple[str, str]]:
    fast = create_app(settings_for(redis_url, max_body_bytes=1 << 20))
    plain = create_app(settings_for(redis_url, max_body_bytes=1 << 20))
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not RouteFastPath]
    a, b = ServerThread(fast).start(), ServerThread(plain).start()
    with httpx.Client(base_url=a.url, headers={"x-api-key": ADMIN}) as admin:
        import_policy(admin, artifact)
    try:
        yield a.url, b.url
    finally:
        a.stop()
        b.stop()


def test_fast_path_answers_as_fastapi_does(both: tuple[str, str]) -> None:
    fast, plain = both
    for label, headers, body in ASKS:
        got = httpx.post(fast + "/v1/route", headers=headers, content=body, timeout=30)
        want = httpx.post(plain + "/v1/route", headers=headers, content=body, timeout=30)
        assert (got.status_code, got.json()) == (want.status_code, want.json()), label
        assert got.status_code >= 400, label
    for url in (fast, plain):
        before = _routes_counted(fast)
        ok = httpx.post(url + "/v1/route", headers={"x-api-key": ROUTER}, json={"query": "hi", "policy": "main"})
        assert ok.status_code == 200 and ok.json()["policy"] == "main"
        assert _routes_counted(fast) == before + 1  # under the operation's template (one registry per process)


def _routes_counted(url: str) -> float:
    line = 'banditroute_requests_total{method="POST",path="/v1/route",status="200"}'
    found = [ln for ln in httpx.get(url + "/metrics").text.splitlines() if ln.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0
