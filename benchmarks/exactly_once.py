"""Exactly-once under load: 4 uvicorn workers, 64 concurrent clients, 100,000 feedback events of which 5% repeat an
accepted (decision, source) and 5% name unknown decisions. Accepted must equal applied updates in the policy state,
duplicates 409, unknowns 404, zero 5xx. Loopback only; bounded by --events and --max-seconds.

With --restart-at F (default 0.5), once that fraction of the feedback events was sent the whole server
(supervisor, workers, and so the learner holding the lease, mid-batch) is killed with SIGKILL and started again
on the same port while the clients keep sending: a request that meets the dead server is retried (a retried
accepted event must come back 409, never be applied twice). --restart-at 0 turns this off.

Run:  .venv/bin/python benchmarks/exactly_once.py [--events 100000] [--workers 4] [--clients 64] [--restart-at 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from banditroute.bandit import LinUCB, to_bytes
from banditroute.service.embedded import EmbeddedRedis
from banditroute.testing import ServeProcess, free_port

MODELS = ["small", "medium", "large"]
#: feedback events answered so far (read by the restart thread)
SENT = [0]


def restart_when(serve: ServeProcess, threshold: int, deadline: float, log: list[str]) -> threading.Thread:
    """A thread that SIGKILLs ``serve``'s whole process group once ``threshold`` events were answered, and starts
    a new server on the same port (``serve.proc`` then belongs to the new one)."""

    def run() -> None:
        while SENT[0] < threshold and time.monotonic() < deadline:
            time.sleep(0.05)
        if serve.proc is None or time.monotonic() >= deadline:
            return
        t0 = time.monotonic()
        os.killpg(serve.proc.pid, signal.SIGKILL)
        serve.proc.wait(timeout=30)
        serve.proc = None
        serve.start(timeout=120)
        log.append(f"server SIGKILLed after {SENT[0]} events, serving again after {time.monotonic() - t0:.1f} s")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def run_all(url: str, bodies: list[tuple[str, dict[str, Any]]], clients: int, deadline: float) -> Counter[int]:
    codes: Counter[int] = Counter()
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty() and time.monotonic() < deadline:
            path, body = queue.get_nowait()
            while time.monotonic() < deadline:  # bounded: a server that is restarting is retried until it answers
                try:
                    r = await client.post(path, json=body)
                    codes[r.status_code] += 1
                    break
                except httpx.HTTPError:
                    codes[-1] += 1
                    await asyncio.sleep(0.2)
            SENT[0] += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    return codes


async def route_all(url: str, n: int, clients: int, deadline: float) -> list[str]:
    ids: list[str] = []
    rng = np.random.default_rng(0)
    feats = rng.uniform(-0.5, 0.5, (n, 8))
    feats[:, -1] = 1.0
    next_i = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_i
        while next_i < n and time.monotonic() < deadline:
            i = next_i
            next_i += 1
            for _attempt in range(3):  # a route is safe to retry (a lost reply only leaves an unused decision)
                try:
                    r = await client.post("/v1/route", json={"features": feats[i].tolist(), "policy": "p"})
                except httpx.HTTPError:
                    continue
                if r.status_code == 200:
                    ids.append(r.json()["decision_id"])
                break

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    return ids


def feedback_events(ids: list[str], n_events: int) -> list[tuple[str, dict[str, Any]]]:
    """One feedback per decision, then 5% duplicates and 5% unknown decisions, shuffled after the first copies."""
    rnd = random.Random(0)
    bodies = [("/v1/feedback", {"decision_id": d, "source": "user", "score": rnd.random()}) for d in ids]
    dups = [
        ("/v1/feedback", {"decision_id": rnd.choice(ids), "source": "user", "score": 0.5})
        for _ in range(int(n_events * 0.05))
    ]
    unknown = [
        ("/v1/feedback", {"decision_id": f"p.{uuid.uuid4().hex}", "source": "user", "score": 0.5})
        for _ in range(int(n_events * 0.05))
    ]
    # duplicates go after the first copy of their decision so that exactly one copy of each is accepted
    rnd.shuffle(unknown)
    mixed = bodies + dups + unknown
    head, tail = mixed[: len(bodies)], mixed[len(bodies) :]
    rnd.shuffle(tail)
    return head + tail


def wait_drained(url: str, deadline: float) -> dict[str, Any]:
    """The policy's info once no feedback is pending (or at the deadline)."""
    while True:
        info: dict[str, Any] = httpx.get(url + "/v1/policies/p", timeout=30).json()
        if info["feedback"]["pending"] == 0 or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


def summary(
    args: argparse.Namespace,
    ids: list[str],
    codes: Counter[int],
    info: dict[str, Any],
    t_route: float,
    t_fb: float,
    t_drain: float,
) -> dict[str, Any]:
    fb = info["feedback"]
    return {
        "workers": args.workers,
        "clients": args.clients,
        "decisions": len(ids),
        "feedback_events_sent": sum(codes.values()),
        "status_counts": dict(codes),
        "accepted_202": codes[202],
        "duplicates_409": codes[409],
        "unknown_404": codes[404],
        "server_errors_5xx": sum(v for k, v in codes.items() if k >= 500),
        "transport_errors": codes[-1],
        "policy_feedback": fb,
        "policy_n_updates": info["n_updates"],
        "route_per_second": round(len(ids) / t_route, 1),
        "feedback_per_second": round(sum(codes.values()) / t_fb, 1),
        "drain_seconds_after_load": round(t_drain, 2),
        # a feedback whose reply was lost in transport may have been accepted: it must then be applied too
        "exactly_once": fb["accepted"] == fb["applied"] == info["n_updates"]
        and codes[202] <= fb["accepted"] <= codes[202] + codes[-1],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--max-seconds", type=float, default=1200)
    ap.add_argument("--restart-at", type=float, default=0.5, help="Kill and restart the server at this fraction.")
    args = ap.parse_args()
    deadline = time.monotonic() + args.max_seconds
    n_unique = int(args.events * 0.9)
    tmp = tempfile.mkdtemp(prefix="br-exactly-once-")
    redis_port = free_port()
    server = EmbeddedRedis(Path(tmp) / "redis", port=redis_port).start()
    env = {
        "BANDITROUTE_REDIS_URL": server.url,
        "BANDITROUTE_LOG_LEVEL": "WARNING",
        "BANDITROUTE_REDIS_TIMEOUT_SECONDS": "30",
        "BANDITROUTE_LEARNER_BATCH": "1024",
    }
    serve = ServeProcess(args.workers, env)
    try:
        serve.start()
        url = serve.url
        httpx.post(
            url + "/v1/policies/import", params={"id": "p"}, content=to_bytes(LinUCB(MODELS, 8)), timeout=30
        ).raise_for_status()
        t0 = time.perf_counter()
        ids = asyncio.run(route_all(url, n_unique, args.clients, deadline))
        t_route = time.perf_counter() - t0
        events = feedback_events(ids, args.events)
        restarts: list[str] = []
        restarter = (
            restart_when(serve, int(len(events) * args.restart_at), deadline, restarts) if args.restart_at > 0 else None
        )
        t0 = time.perf_counter()
        codes = asyncio.run(run_all(url, events, args.clients, deadline))
        t_fb = time.perf_counter() - t0
        if restarter is not None:
            restarter.join(timeout=max(deadline - time.monotonic(), 1))
        t0 = time.perf_counter()
        info = wait_drained(url, deadline)
        t_drain = time.perf_counter() - t0
        result = summary(args, ids, codes, info, t_route, t_fb, t_drain)
        result["restart"] = restarts[0] if restarts else "none"
        result["events_answered"] = SENT[0]
        print(json.dumps(result, indent=2))
        lost = result["policy_feedback"]["accepted"] - result["policy_feedback"]["applied"]
        ok = (
            result["exactly_once"]
            and result["server_errors_5xx"] == 0
            and (args.restart_at <= 0 or bool(restarts))
            and SENT[0] >= len(events)
        )
        print(
            f"exactly-once, {args.workers} workers x {args.clients} clients x {args.events} events"
            f"{' across a server restart' if restarts else ''}: accepted {result['policy_feedback']['accepted']} "
            f"= applied {result['policy_feedback']['applied']} = updates {result['policy_n_updates']}, "
            f"lost {max(lost, 0)}, doubled {max(-lost, 0)}, 5xx {result['server_errors_5xx']}: "
            f"{'PASS' if ok else 'MISS'}"
        )
    finally:
        serve.stop()
        server.stop()


if __name__ == "__main__":
    main()
