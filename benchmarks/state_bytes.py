"""Redis persistence bytes per applied feedback event, and the learner's rate, with the event log + snapshots.

For 32 models x 64 features and 32 x 384 (LinUCB), against an embedded Redis (AOF on, ``appendfsync everysec``,
Redis's automatic rewrite off so that the file's growth is what was written): ``--cycles`` route + feedback cycles
over HTTP (4 client threads, 127.0.0.1 only), wait until the learner applied them all, then

- *written*: AOF growth during the cycles / events (disk and replication traffic);
- *retained*: AOF growth after a BGREWRITEAOF settles / events (the target's measure: what stays on disk);
- *before*: the previous design (every learner commit rewrote the whole state: A, A^-1, b, bc, n), measured by
  writing that state per event for a few events to the same kind of Redis;
- learner: applied log entries per second of one in-process learner replaying the log from the snapshot.

Run:  .venv/bin/python benchmarks/state_bytes.py [--cycles 10000] [--max-seconds 600]
      .venv/bin/python benchmarks/state_bytes.py --learner-only [--repeats 3]   (the learner's rate alone)

The learner's rate is the median of --repeats replays (a shared machine's load moves single runs a lot).

Every loop is bounded by --cycles and by --max-seconds per configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from banditroute.bandit import LinUCB
from banditroute.service.app import create_app, make_client
from banditroute.service.codec import encode_state
from banditroute.service.config import Settings
from banditroute.service.embedded import EmbeddedRedis
from banditroute.service.learner import Learner
from banditroute.service.store import Store
from banditroute.testing import ServerThread, free_port

TARGETS = {64: 2048, 384: 8192}
_REPLAYS = itertools.count()
CLIENTS = 4


def aof_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*.aof*") if p.is_file())


def settle(rd: redis.Redis) -> None:
    """Rewrite the AOF and wait until the rewrite is done."""
    while rd.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(0.05)
    rd.bgrewriteaof()
    time.sleep(0.1)
    while rd.info("persistence")["aof_rewrite_in_progress"] or rd.info("persistence")["aof_rewrite_scheduled"]:
        time.sleep(0.05)
    time.sleep(1.2)  # everysec fsync of what followed the rewrite


def cycles(url: str, k: int, d: int, n: int, max_seconds: float) -> int:
    done = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def client(w: int) -> None:
        rng = np.random.default_rng(w)
        with httpx.Client(base_url=url, timeout=30) as c:
            for _ in range(w, n, CLIENTS):
                if time.monotonic() > deadline:
                    return
                x = rng.normal(size=d) / np.sqrt(d)
                x[-1] = 1.0
                r = c.post("/v1/route", json={"features": x.tolist(), "policy": "p"})
                r.raise_for_status()
                f = c.post(
                    "/v1/feedback",
                    json={"decision_id": r.json()["decision_id"], "source": "user", "score": float(rng.random())},
                )
                f.raise_for_status()
                with lock:
                    done[0] += 1

    threads = [threading.Thread(target=client, args=(w,)) for w in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0]


def wait_applied(url: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=30) as c:
        while True:
            info: dict[str, Any] = c.get("/v1/policies/p").json()
            if info["feedback"]["pending"] == 0 or time.monotonic() > deadline:
                return info
            time.sleep(0.1)


def before_bytes(k: int, d: int, events: int) -> float:
    """Bytes per event of the previous design: each commit HSET the whole state (with A^-1)."""
    with tempfile.TemporaryDirectory(prefix="br-before-") as tmp:
        server = EmbeddedRedis(Path(tmp), port=free_port(), extra_args=["--auto-aof-rewrite-percentage", "0"]).start()
        try:
            rd = redis.Redis(port=server.port or 0)
            policy = LinUCB([f"m{j}" for j in range(k)], d)
            rng = np.random.default_rng(0)
            settle(rd)
            size0 = aof_size(Path(tmp))
            for _ in range(events):
                x = rng.normal(size=d) / np.sqrt(d)
                x[-1] = 1.0
                policy.update(x, policy.models[int(rng.integers(k))], float(rng.random()), 0.001)
                rd.hset("br:{p}:state", mapping=encode_state(policy.state_dict()))
                rd.incr("br:{p}:version")
            time.sleep(1.2)
            return (aof_size(Path(tmp)) - size0) / events
        finally:
            server.stop()


async def learner_rate(url: str, k: int, d: int, n: int) -> tuple[float, int]:
    """One learner applying ``n`` logged events of a fresh policy from its creation snapshot, in-process (reads of
    the log and the decisions' features, lease and progress writes included)."""
    from banditroute.service.runtime import policy_meta

    store = Store(make_client(url, Settings(redis_url=url)))
    pid = f"speed{next(_REPLAYS)}"  # a fresh policy per replay: repeats share the Redis
    try:
        policy = LinUCB([f"m{j}" for j in range(k)], d)
        await store.create_policy(pid, policy_meta(policy, None), policy.state_dict(), None)
        live = await store.load_snapshot(pid)
        assert live is not None
        rng = np.random.default_rng(1)
        for i in range(n):
            x = rng.normal(size=d) / np.sqrt(d)
            x[-1] = 1.0
            did = f"{pid}.{i:032x}"
            fields = {"did": did, "x": x.astype("<f8").tobytes(), "model": policy.models[i % k], "gen": live.gen}
            await store.log_decision(pid, did, {**fields, "cost_estimate": "0.001"}, 3600, None, None)
            await store.submit_feedback(pid, did, "user", float(rng.random()), 0.001, 1.0, 3600, None)
        learner = Learner(store, batch=512, snapshot_events=10**9)
        t0 = time.perf_counter()
        done = 0
        while done < n:
            step = await learner.step(pid)
            if step == 0:
                break
            done += step
        return done / (time.perf_counter() - t0), done
    finally:
        await store.r.aclose()


def run(k: int, d: int, n: int, max_seconds: float, repeats: int = 3) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="br-bytes-") as tmp:
        directory = Path(tmp)
        port = free_port()
        server = EmbeddedRedis(directory, port=port, extra_args=["--auto-aof-rewrite-percentage", "0"]).start()
        url = f"redis://127.0.0.1:{port}"
        # snapshots at the default cadence (every 10,000 entries or 300 s)
        srv = ServerThread(create_app(Settings(redis_url=url, log_level="WARNING"))).start()
        rd = redis.Redis(port=port)
        try:
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                body = {"id": "p", "policy": "linucb", "models": [f"m{j}" for j in range(k)], "dim": d}
                c.post("/v1/policies", json=body).raise_for_status()
            settle(rd)
            size0 = aof_size(directory)
            t0 = time.monotonic()
            done = cycles(srv.url, k, d, n, max_seconds)
            elapsed = time.monotonic() - t0
            info = wait_applied(srv.url)
            time.sleep(1.2)
            written = aof_size(directory) - size0
            settle(rd)
            retained = aof_size(directory) - size0
            applied = info["feedback"]["applied"]
        finally:
            srv.stop()
        rate, replayed = median_learner_rate(url, k, d, 10_000, repeats) if d == 64 else (0.0, 0)
        server.stop()
    return {
        "events": applied,
        "cycles_per_s": done / elapsed,
        "written": written / max(applied, 1),
        "retained": retained / max(applied, 1),
        "learner_rate": rate,
        "replayed": replayed,
    }


def median_learner_rate(url: str, k: int, d: int, n: int, repeats: int) -> tuple[float, int]:
    runs = [asyncio.run(learner_rate(url, k, d, n)) for _ in range(max(repeats, 1))]
    rates = sorted(r for r, _ in runs)
    return rates[len(rates) // 2], min(done for _, done in runs)


def learner_only(repeats: int, events: int) -> None:
    with tempfile.TemporaryDirectory(prefix="br-learner-") as tmp:
        server = EmbeddedRedis(Path(tmp), port=free_port()).start()
        try:
            rate, replayed = median_learner_rate(server.url, 32, 64, events, repeats)
        finally:
            server.stop()
    ok = "PASS" if rate >= 5000 else "MISS"
    print(
        f"learner at 32 x 64: {rate:,.0f} applied events/s, median of {repeats} replays of {replayed} log entries "
        f"(>= 5,000): {ok}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=10_000)
    ap.add_argument("--max-seconds", type=float, default=600.0)
    ap.add_argument("--before-events", type=int, default=20)
    ap.add_argument("--learner-only", action="store_true", help="Measure only the learner's rate.")
    ap.add_argument("--repeats", type=int, default=3, help="Learner replays; the median is reported.")
    args = ap.parse_args()
    if args.learner_only:
        learner_only(args.repeats, 10_000)
        return
    print(f"route + feedback cycles: {args.cycles} per configuration (max {args.max_seconds:.0f} s), {CLIENTS} clients")
    print("| models x features | before B/event | written B/event | retained B/event (target) | result |")
    print("|---|---|---|---|---|")
    rates = []
    for d in (64, 384):
        k = 32
        before = before_bytes(k, d, args.before_events)
        r = run(k, d, args.cycles, args.max_seconds, args.repeats)
        target = TARGETS[d]
        ok = "PASS" if r["retained"] <= target and r["events"] >= args.cycles else "MISS"
        print(
            f"| {k} x {d} | {before:,.0f} | {r['written']:,.0f} | {r['retained']:,.0f} (<= {target:,}) | {ok} |"
            f"  ({r['events']} events, {r['cycles_per_s']:.0f} cycles/s)"
        )
        rates.append((k, d, r["learner_rate"], r["replayed"]))
    for k, d, rate, replayed in rates:
        if d == 64:
            ok = "PASS" if rate >= 5000 else "MISS"
            print(
                f"learner at {k} x {d}: {rate:,.0f} applied events/s, median of {args.repeats} replays of {replayed} "
                f"log entries (>= 5,000): {ok}"
            )


if __name__ == "__main__":
    main()
