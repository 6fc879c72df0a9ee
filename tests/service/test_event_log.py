"""The log + snapshot design over HTTP against a real Redis: snapshots hold sufficient statistics and the log
position, workers follow the log without the learner, a learner restart replays exactly once, the log is trimmed
only below what a snapshot covers."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import redis

from banditroute.service.app import create_app, make_client
from banditroute.service.eventlog import id_key
from banditroute.service.learner import Learner
from banditroute.service.store import Store
from tests.service.conftest import ADMIN, LiveServer, import_policy, route, settings_for, wait_applied

H = {"Authorization": f"Bearer {ADMIN}"}


def _cycle(c: httpx.Client, pid: str, n: int, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        d = route(c, query=f"algebra court question {i}", policy=pid).json()
        r = c.post("/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": (i % 3) / 2})
        assert r.status_code == 202, r.text
        ids.append(r.json()["feedback_id"])
    return ids


def test_snapshots_hold_sufficient_statistics_and_their_position(redis_url: str, artifact: bytes) -> None:
    app = create_app(settings_for(redis_url, snapshot_every_events=5))
    rd = redis.Redis.from_url(redis_url)
    with LiveServer(app) as srv, httpx.Client(base_url=srv.url, headers=H, timeout=30) as c:
        import_policy(c, artifact, "s")
        before = c.get("/v1/policies/s").json()
        ids = _cycle(c, "s", 12)
        info = wait_applied(c, "s")
        assert info["n_updates"] == before["n_updates"] + 12
        assert info["version"] == before["version"] + 12
        deadline = time.monotonic() + 10
        while id_key(rd.hget("br:{s}:state", "pos").decode()) < id_key(ids[9]):
            assert time.monotonic() < deadline, "no snapshot after 10 events"
            time.sleep(0.02)
        fields = rd.hkeys("br:{s}:state")
        assert b"arr:A" in fields and b"arr:b" in fields and b"arr:A_inv" not in fields  # no inverses
        snap_pos = rd.hget("br:{s}:state", "pos").decode()
        # the log keeps what the snapshot does not cover: at most the entries since the previous snapshot
        remaining = [e[0].decode() for e in rd.xrange("br:{s}:feedback")]
        assert all(id_key(e) >= id_key(ids[4]) for e in remaining)
        assert {i for i in ids if id_key(i) > id_key(snap_pos)} <= set(remaining)
    # a new process rebuilds the same policy from snapshot + log
    with LiveServer(create_app(settings_for(redis_url))) as srv2, httpx.Client(base_url=srv2.url, headers=H) as c2:
        again = c2.get("/v1/policies/s").json()
        assert (again["n_updates"], again["version"]) == (info["n_updates"], info["version"])
        x = list(np.linspace(0.1, 1.0, 8))
        d1 = route(c2, features=x, policy="s", lam=0.0).json()
        assert d1["policy_version"] == info["version"]


def test_workers_follow_the_log_without_the_learner(redis_url: str, artifact: bytes) -> None:
    """Freshness does not depend on the learner or the snapshot: a worker applies the log itself."""
    app = create_app(settings_for(redis_url, learner=False, state_staleness_ms=0))
    with LiveServer(app) as srv, httpx.Client(base_url=srv.url, headers=H, timeout=30) as c:
        import_policy(c, artifact, "w")
        before = c.get("/v1/policies/w").json()
        first = route(c, query="algebra proof theorem", policy="w").json()
        _cycle(c, "w", 6)
        info = c.get("/v1/policies/w").json()
        assert info["n_updates"] == before["n_updates"] + 6  # decisions see every accepted event ...
        assert info["feedback"]["applied"] == 0 and info["feedback"]["pending"] == 6  # ... the learner none
        later = route(c, query="algebra proof theorem", policy="w").json()
        assert later["policy_version"] == first["policy_version"] + 6
    with LiveServer(create_app(settings_for(redis_url))) as srv2, httpx.Client(base_url=srv2.url, headers=H) as c2:
        done = wait_applied(c2, "w")
        assert done["feedback"]["applied"] == 6 and done["n_updates"] == info["n_updates"]


def test_a_learner_restarted_mid_log_applies_every_event_exactly_once(redis_url: str, artifact: bytes) -> None:
    app = create_app(settings_for(redis_url, learner=False))
    with LiveServer(app) as srv, httpx.Client(base_url=srv.url, headers=H, timeout=30) as c:
        import_policy(c, artifact, "r")
        before = c.get("/v1/policies/r").json()
        _cycle(c, "r", 30)

    async def run() -> tuple[int, int, dict[str, str]]:
        store = Store(make_client(redis_url, settings_for(redis_url)))
        try:
            first = Learner(store, batch=7, snapshot_events=10)
            applied = sum([await first.step("r") for _ in range(3)])  # 21 applied, a snapshot at 14
            assert applied == 21
            # the first learner dies without a word: memory lost, lease left to expire (here: dropped)
            await store.r.delete("br:{r}:learner")
            second = Learner(store, batch=100, snapshot_events=10)
            again = await second.step("r")  # from the snapshot at 14: replays 15..30
            live = second.held["r"].live
            progress = await store.progress("r")
            return again, live.policy.n_updates, progress
        finally:
            await store.r.aclose()

    again, n_updates, progress = asyncio.run(run())
    assert again == 16
    assert n_updates == before["n_updates"] + 30
    assert int(progress["applied"]) == 30 and int(progress["dead"]) == 0 and int(progress["skipped"]) == 0
    with LiveServer(create_app(settings_for(redis_url))) as srv2, httpx.Client(base_url=srv2.url, headers=H) as c2:
        info = wait_applied(c2, "r")
        assert info["feedback"] == {"accepted": 30, "applied": 30, "skipped": 0, "pending": 0}
        assert info["n_updates"] == before["n_updates"] + 30


def test_a_raising_update_is_dead_lettered_and_the_rest_flows(redis_url: str, artifact: bytes) -> None:
    rd = redis.Redis.from_url(redis_url)
    with LiveServer(create_app(settings_for(redis_url))) as srv, httpx.Client(base_url=srv.url, headers=H) as c:
        import_policy(c, artifact, "d1")
        import_policy(c, artifact, "d2")
        before = c.get("/v1/policies/d1").json()
        d = route(c, query="algebra", policy="d1").json()
        # an event whose update raises (a score that is not a number): as a corrupted or hand-written entry would be
        rd.xadd(
            "br:{d1}:feedback",
            {
                "did": d["decision_id"],
                "model": d["model"],
                "score": "abc",
                "cost": "0",
                "weight": "1",
                "source": "user",
            },
        )
        rd.hincrby("br:{d1}:counters", "accepted", 1)
        _cycle(c, "d1", 3)
        _cycle(c, "d2", 3)
        info = wait_applied(c, "d1")
        assert info["dead_letters"] == 1 and info["feedback"]["applied"] == 3
        assert info["n_updates"] == before["n_updates"] + 3
        assert wait_applied(c, "d2")["feedback"]["applied"] == 3  # other policies never stall
        letters = c.get("/v1/policies/d1/dead-letters").json()
        assert len(letters) == 1 and letters[0]["did"] == d["decision_id"] and "ValueError" in letters[0]["error"]
