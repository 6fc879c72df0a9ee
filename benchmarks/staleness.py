"""Worker staleness under load: how long after a feedback event is accepted do the workers' decisions reflect it?

A ``serve --workers N`` process on a shared Redis. A load process keeps route + feedback cycles going on policy
``p`` (32 models x 64 features) with --clients concurrent clients the whole time, so the workers, the learner
and Redis are busy. A probe policy ``probe`` sees only the probes, so its version grows by exactly one per
applied probe event: each probe routes, gives feedback, and from the 202 reply on polls ``/v1/route`` on
--connections keep-alive connections (the kernel spreads them over the workers) until each connection's
answer carries the new ``policy_version``. Staleness is measured from the 202, which precedes the learner's
apply, so it bounds "learner applied -> decision reflects it" from above. Target: p99 <= 200 ms.

Run:  .venv/bin/python benchmarks/staleness.py [--probes 200] [--workers 2] [--clients 16]

127.0.0.1 only; every loop is bounded by --probes and --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from banditroute.service.embedded import EmbeddedRedis
from banditroute.testing import ServeProcess, free_port

TARGET_P99_MS = 200.0
DIM = 64
MODELS = [f"m{j}" for j in range(32)]


def features(rng: np.random.Generator) -> list[float]:
    x = rng.normal(size=DIM) / np.sqrt(DIM)
    x[-1] = 1.0
    return [float(v) for v in x]


async def _load(url: str, clients: int, stop_at: float, stop: Any, counts: Any) -> None:
    async def client(i: int) -> None:
        rng = np.random.default_rng(i)
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            while not stop.is_set() and time.monotonic() < stop_at:
                try:
                    r = await c.post("/v1/route", json={"features": features(rng), "policy": "p"})
                    did = r.json()["decision_id"]
                    f = await c.post("/v1/feedback", json={"decision_id": did, "source": "user", "score": 0.5})
                    counts[0] += 1
                    counts[1] += int(f.status_code >= 500)
                except (httpx.HTTPError, KeyError, ValueError):
                    counts[2] += 1

    await asyncio.gather(*(client(i) for i in range(clients)))


def load_process(url: str, clients: int, max_seconds: float, stop: Any, counts: Any) -> None:
    asyncio.run(_load(url, clients, time.monotonic() + max_seconds, stop, counts))


async def probe_once(
    pollers: list[httpx.AsyncClient], fb: httpx.AsyncClient, x: list[float], deadline: float
) -> list[float]:
    """One probe: its staleness in ms as seen on each poller connection."""
    body = {"features": x, "policy": "probe"}
    d = (await fb.post("/v1/route", json=body)).json()
    r = await fb.post("/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 1.0})
    r.raise_for_status()
    t0 = time.perf_counter()
    target = None

    async def poll(c: httpx.AsyncClient) -> float:
        nonlocal target
        while time.monotonic() < deadline:
            v = (await c.post("/v1/route", json=body)).json()["policy_version"]
            if target is not None and v >= target:
                return (time.perf_counter() - t0) * 1000
            await asyncio.sleep(0.002)
        return float("inf")

    # the version that reflects the probe: one more than the version the decision was made with, as no other
    # event reaches this policy (the probe's own route went through the same state)
    target = d["policy_version"] + 1
    return list(await asyncio.gather(*(poll(c) for c in pollers)))


async def probes(url: str, n: int, connections: int, deadline: float) -> list[float]:
    rng = np.random.default_rng(7)
    out: list[float] = []
    pollers = [httpx.AsyncClient(base_url=url, timeout=30) for _ in range(connections)]
    async with httpx.AsyncClient(base_url=url, timeout=30) as fb:
        try:
            for _ in range(n):
                if time.monotonic() > deadline:
                    break
                out += await probe_once(pollers, fb, features(rng), deadline)
                await asyncio.sleep(0.02)
        finally:
            for c in pollers:
                await c.aclose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--max-seconds", type=float, default=180.0)
    args = ap.parse_args()
    deadline = time.monotonic() + args.max_seconds
    with tempfile.TemporaryDirectory(prefix="br-stale-") as tmp:
        server = EmbeddedRedis(Path(tmp), port=free_port()).start()
        env = {"BANDITROUTE_REDIS_URL": server.url, "BANDITROUTE_LOG_LEVEL": "WARNING"}
        try:
            with ServeProcess(args.workers, env) as srv:
                for pid in ("p", "probe"):
                    body = {"id": pid, "policy": "linucb", "models": MODELS, "dim": DIM}
                    httpx.post(srv.url + "/v1/policies", json=body, timeout=30).raise_for_status()
                stop = mp.Event()
                counts = mp.Array("q", 3)
                loader = mp.Process(target=load_process, args=(srv.url, args.clients, args.max_seconds, stop, counts))
                loader.start()
                try:
                    time.sleep(2.0)  # the load is running before the first probe
                    t0 = time.monotonic()
                    samples = asyncio.run(probes(srv.url, args.probes, args.connections, deadline))
                    elapsed = time.monotonic() - t0
                finally:
                    stop.set()
                    loader.join(timeout=60)
                    if loader.is_alive():
                        loader.terminate()
        finally:
            server.stop()
    ms = np.asarray(samples)
    p50, p99 = (float(np.percentile(ms, q)) for q in (50, 99))
    cycles, errors_5xx, transport = counts[:]
    print(
        f"{args.workers} workers, load: {args.clients} clients, {cycles} route+feedback cycles "
        f"({cycles / max(elapsed, 1e-9):.0f}/s during the probes), {errors_5xx} 5xx, {transport} client errors"
    )
    print(f"probes: {len(ms) // args.connections} x {args.connections} connections")
    print("| staleness | p50 ms | p99 ms | max ms |\n|---|---|---|---|")
    print(f"| accepted -> decisions reflect it | {p50:.1f} | {p99:.1f} | {float(ms.max()):.1f} |")
    ok = "PASS" if p99 <= TARGET_P99_MS and len(ms) > 0 else "MISS"
    print(f"worker staleness p99 {p99:.1f} ms (<= {TARGET_P99_MS:.0f}): {ok}")


if __name__ == "__main__":
    main()
