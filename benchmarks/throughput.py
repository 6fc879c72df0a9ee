"""Route throughput against a bare FastAPI + Redis endpoint, side by side in one run (issue 14's target: routed /
bare >= 0.7 in requests per second at 1 worker and at 2 workers, p99 <= 1.5x).

Run:  apt-get install wrk; .venv/bin/python benchmarks/throughput.py [--seconds 10] [--connections 32]

- bare: ``banditroute.testing.bare_redis_app``, one POST route that parses the same JSON body, does one Redis GET
  and one SET (``redis.asyncio``, opened in the lifespan) and returns a small JSON; served by uvicorn with the
  options ``banditroute serve`` uses (``service.serving.uvicorn_options``: httptools with TCP_NODELAY on uvloop,
  the same workers, no access log);
- routed: ``banditroute serve`` with a LinUCB artifact (--models models x 64 features, fitted on synthetic
  prompts) imported as policy ``p``, ``POST /v1/route`` with a query.

Both against the same Redis (an embedded one on a free port), under the same load generator: wrk, closed loop,
--connections keep-alive connections, 2 threads, a Lua script for the POST bodies (the same queries for both). At
each worker count both servers are up, warmed by a short wrk run, then measured alternately (--rounds times each;
the median of the rounds is reported). 127.0.0.1 only; every wrk run is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from load import POST_LUA, wrk

from banditroute.bandit import LinUCB, to_bytes
from banditroute.env.features import Featurizer
from banditroute.service.embedded import EmbeddedRedis
from banditroute.testing import BareRedisProcess, ServeProcess, free_port

THROUGHPUT_TARGET = 0.7
P99_TARGET = 1.5
DIM = 64


TOPICS = ["algebra proof theorem", "court statute contract", "python loop function", "cell protein enzyme"]


def synthetic_prompts(n: int, seed: int = 0) -> list[str]:
    """Prompts of a few topics with varied filler words (JSON- and Lua-safe: letters, digits and spaces)."""
    rng = np.random.default_rng(seed)
    words = [f"{w}{i}" for w in ("term", "case", "value", "step", "item", "note") for i in range(40)]
    out = []
    for i in range(n):
        filler = " ".join(str(w) for w in rng.choice(words, size=12))
        out.append(f"{TOPICS[i % 4]} question {i} about {TOPICS[(i * 7) % 4].split()[0]} {filler}")
    return out


def make_artifact(n_models: int) -> tuple[bytes, list[str], list[str]]:
    """A LinUCB (``n_models`` x 64 features) warm-started on synthetic prompts; its bytes, models and queries."""
    prompts = synthetic_prompts(600)
    models = [f"m{j}" for j in range(n_models)]
    fz = Featurizer(dim=DIM).fit(prompts)
    rng = np.random.default_rng(1)
    quality = rng.uniform(0.2, 0.9, size=(len(prompts), n_models))
    cost = np.tile(np.linspace(0.001, 0.02, n_models), (len(prompts), 1))
    policy = LinUCB(models, fz.dim, alpha=0.05, seed=0)
    policy.fit_full(fz.transform(prompts), quality, cost)
    return to_bytes(policy, fz), models, prompts[:200]


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": "; ".join(r["socket_errors"] for r in runs if r["socket_errors"]),
    }


def measure(workers: int, redis_url: str, artifact: bytes, scripts: dict[str, str], args: Any) -> dict[str, Any]:
    env = {"BANDITROUTE_REDIS_URL": redis_url, "BANDITROUTE_LOG_LEVEL": "WARNING"}
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "routed": []}
    with BareRedisProcess(workers, env) as bare, ServeProcess(workers, env) as serve:
        httpx.post(
            serve.url + "/v1/policies/import", params={"id": "p", "replace": True}, content=artifact, timeout=60
        ).raise_for_status()
        urls = {"bare": bare.url, "routed": serve.url}
        for name in ("bare", "routed"):  # warm-up: every worker has its Redis connections and the policy cached
            wrk(urls[name], "/", scripts[name], args.warmup, args.connections)
        for _ in range(args.rounds):
            for name in ("bare", "routed"):
                runs[name].append(wrk(urls[name], "/", scripts[name], args.seconds, args.connections))
    return {"workers": workers, **{name: median_of(r) for name, r in runs.items()}}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(results: list[dict[str, Any]], args: Any, n_models: int) -> None:
    print(
        f"wrk, {args.connections} keep-alive connections, 2 threads, {args.seconds} s per run x {args.rounds} "
        f"round(s), 127.0.0.1, {os.cpu_count()} cores, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
        f"policy LinUCB {n_models} models x {DIM} features"
    )
    print("| workers | endpoint | req/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---|---|---|---|---|")
    for row in results:
        for name in ("bare", "routed"):
            r = row[name]
            print(
                f"| {row['workers']} | {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                f"{r['non_2xx']} |"
            )
    print()
    print("| workers | routed / bare req/s (>= 0.7) | | routed / bare p99 (<= 1.5) | |")
    print("|---|---|---|---|---|")
    for row in results:
        b, r = row["bare"], row["routed"]
        clean = r["non_2xx"] == 0 and b["non_2xx"] == 0
        tput = r["rps"] / b["rps"]
        p99 = r["p99_ms"] / b["p99_ms"]
        print(
            f"| {row['workers']} | {tput:.2f} | {verdict(clean and tput >= THROUGHPUT_TARGET)} | {p99:.2f} | "
            f"{verdict(clean and p99 <= P99_TARGET)} |"
        )
    for row in results:
        for name in ("bare", "routed"):
            r = row[name]
            if r["non_2xx"] or r["socket_errors"]:
                print(f"{row['workers']} worker(s), {name}: {r['non_2xx']} non-2xx; {r['socket_errors']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--seconds", type=int, default=10, help="length of each measured wrk run")
    ap.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    ap.add_argument("--workers", default="1,2", help="uvicorn worker counts, comma-separated")
    ap.add_argument("--rounds", type=int, default=1, help="alternating bare/routed runs per worker count (median)")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up per server")
    ap.add_argument("--models", type=int, default=3, help="models of the routed policy")
    ap.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    artifact, models, queries = make_artifact(args.models)
    tmp = Path(tempfile.mkdtemp(prefix="br-throughput-"))
    scripts = {}
    lua_queries = "{" + ",".join(json.dumps(q) for q in queries) + "}"
    for name, path in (("bare", "/bare"), ("routed", "/v1/route")):
        scripts[name] = str(tmp / f"{name}.lua")
        Path(scripts[name]).write_text(POST_LUA.replace("{QUERIES}", lua_queries).replace("PATH", path))
    server = EmbeddedRedis(tmp / "redis", port=free_port()).start()
    results = []
    try:
        redis.Redis.from_url(server.url).set("br:bare:p", models[0])
        for workers in [int(w) for w in args.workers.split(",")]:
            results.append(measure(workers, server.url, artifact, scripts, args))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, args, args.models)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
