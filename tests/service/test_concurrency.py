"""Several uvicorn worker processes, many concurrent clients: every accepted feedback is applied exactly once."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from banditroute.testing import ServeProcess
from tests.service.conftest import ADMIN, KEYS, import_policy, wait_applied

WORKERS = 3
CLIENTS = 32
DECISIONS = 400


@pytest.fixture
def multiworker(redis_url: str) -> Iterator[str]:
    env = {
        "BANDITROUTE_REDIS_URL": redis_url,
        "BANDITROUTE_API_KEYS": json.dumps(KEYS),
        "BANDITROUTE_LOG_LEVEL": "WARNING",
        # this test is about exactly-once, not latency: a loaded 2-core CI box must not turn slow calls into 503s
        "BANDITROUTE_REDIS_TIMEOUT_SECONDS": "20",
    }
    with ServeProcess(WORKERS, env) as srv:
        yield srv.url


def test_no_feedback_lost_or_doubled_under_concurrent_workers(multiworker: str, artifact: bytes) -> None:
    exactly_once_round(multiworker, artifact, "conc")


def exactly_once_round(multiworker: str, artifact: bytes, pid: str) -> None:
    """Route DECISIONS queries from CLIENTS concurrent clients, post feedback with duplicates, a second source and
    unknown ids; every accepted event is applied exactly once, and nothing else is."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=multiworker, headers=headers, timeout=30) as admin:
        import_policy(admin, artifact, pid)
        before = admin.get(f"/v1/policies/{pid}").json()

    errors: list[str] = []

    def session(worker: int) -> tuple[list[int], list[int]]:
        """One client: routes its share of queries, then posts feedback, with duplicates and a second source."""
        route_codes, fb_codes = [], []
        with httpx.Client(base_url=multiworker, headers=headers, timeout=30) as c:
            ids = []
            for i in range(worker, DECISIONS, CLIENTS):
                r = c.post("/v1/route", json={"query": f"algebra court python question {i}", "policy": pid})
                route_codes.append(r.status_code)
                if r.status_code != 200:
                    errors.append(r.text)
                    continue
                ids.append(r.json()["decision_id"])
            for j, did in enumerate(ids):
                sends = (
                    [("user", 1.0)]
                    + ([("user", 0.0)] if j % 5 == 0 else [])
                    + ([("evaluator", 0.5)] if j % 3 == 0 else [])
                )
                if j % 20 == 7:  # about 5% of events name a decision that never existed
                    sends.append(("unknown", 0.5))
                for source, score in sends:
                    target = f"{pid}.{uuid.uuid4().hex}" if source == "unknown" else did
                    source = "user" if source == "unknown" else source
                    r = c.post("/v1/feedback", json={"decision_id": target, "source": source, "score": score})
                    fb_codes.append(r.status_code)
                    if r.status_code not in (202, 404, 409):
                        errors.append(r.text)
        return route_codes, fb_codes

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(session, range(CLIENTS)))
    route_codes = Counter(c for r, _ in results for c in r)
    fb_codes = Counter(c for _, f in results for c in f)
    assert not errors, errors[:5]
    assert route_codes == {200: DECISIONS}
    assert set(fb_codes) <= {202, 404, 409}  # no 5xx, nothing else
    assert fb_codes[404] == sum(
        1 for w in range(CLIENTS) for j, _ in enumerate(range(w, DECISIONS, CLIENTS)) if j % 20 == 7
    )
    accepted = fb_codes[202]
    expected_accepted = DECISIONS + sum(
        1 for w in range(CLIENTS) for j, _ in enumerate(range(w, DECISIONS, CLIENTS)) if j % 3 == 0
    )
    assert accepted == expected_accepted
    assert fb_codes[409] == sum(
        1 for w in range(CLIENTS) for j, _ in enumerate(range(w, DECISIONS, CLIENTS)) if j % 5 == 0
    )
    with httpx.Client(base_url=multiworker, headers=headers, timeout=30) as admin:
        info = wait_applied(admin, pid, timeout=60)
        assert info["feedback"] == {"accepted": accepted, "applied": accepted, "skipped": 0, "pending": 0}
        assert info["n_updates"] == before["n_updates"] + accepted
        time.sleep(0.3)  # nothing is applied late, twice
        assert admin.get(f"/v1/policies/{pid}").json()["n_updates"] == before["n_updates"] + accepted
