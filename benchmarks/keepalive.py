"""Keep-alive route latency, 1 uvicorn worker vs 2, at low load (one client, sequential requests on one
connection): the 2-worker median must stay within 1.3x the 1-worker median (TCP_NODELAY on every accepted
connection, service/serving.py).

Run:  .venv/bin/python benchmarks/keepalive.py [--requests 400]

127.0.0.1 only; a Redis on a free port; loops bounded by --requests and --max-seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from banditroute.service.embedded import EmbeddedRedis
from banditroute.testing import ServeProcess, free_port


def median_ms(workers: int, redis_url: str, n: int, max_seconds: float) -> float:
    env = {"BANDITROUTE_REDIS_URL": redis_url, "BANDITROUTE_LOG_LEVEL": "WARNING"}
    with ServeProcess(workers, env) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        body = {"id": f"ka{workers}", "policy": "linucb", "models": [f"m{j}" for j in range(8)], "dim": 16}
        c.post("/v1/policies", json=body)
        features = [0.1] * 15 + [1.0]
        times = []
        deadline = time.monotonic() + max_seconds
        for i in range(n + 20):
            t0 = time.perf_counter()
            c.post("/v1/route", json={"features": features, "policy": f"ka{workers}"}).raise_for_status()
            if i >= 20:  # warm-up: every worker has loaded the policy
                times.append((time.perf_counter() - t0) * 1000)
            if time.monotonic() > deadline:
                break
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="br-ka-") as tmp:
        server = EmbeddedRedis(Path(tmp), port=free_port()).start()
        try:
            one = median_ms(1, server.url, args.requests, args.max_seconds)
            two = median_ms(2, server.url, args.requests, args.max_seconds)
        finally:
            server.stop()
    ratio = two / one
    print("| workers | keep-alive route median (ms) |\n|---|---|")
    print(f"| 1 | {one:.2f} |\n| 2 | {two:.2f} |")
    print(f"2-worker / 1-worker median: {ratio:.2f} (<= 1.3): {'PASS' if ratio <= 1.3 else 'MISS'}")


if __name__ == "__main__":
    main()
