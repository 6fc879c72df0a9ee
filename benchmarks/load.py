"""Service speed with wrk on loopback: POST /v1/route, POST /v1/feedback and the baseline GET /v1/baseline (one
Redis GET and nothing else) at 1 and 2 uvicorn workers, 32 connections, 20 s each; requests per second, p50/p99
latency, and the ratios route/baseline and feedback/baseline measured side by side in one run.

Run:  apt-get install wrk; .venv/bin/python benchmarks/load.py [--duration 20] [--connections 32]

Decisions for the feedback load are written into Redis beforehand in the service's own format (what a route would
have logged), so that every feedback request is a first, accepted one. Targets 127.0.0.1 only; every wrk run is
bounded by --duration.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from banditroute.bandit import LinUCB, to_bytes
from banditroute.env.features import Featurizer
from banditroute.env.records import load_records
from banditroute.service.embedded import EmbeddedRedis
from banditroute.service.store import encode_x, k_decision
from banditroute.testing import ServeProcess, free_port

ROOT = Path(__file__).resolve().parents[1]

#: a wrk script POSTing ``{"policy": "p", "query": ...}`` to PATH, cycling through {QUERIES}
POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local queries = {QUERIES}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "PATH", nil, '{"policy": "p", "query": "' .. queries[(n % #queries) + 1] .. '"}')
end
"""
ROUTE_LUA = POST_LUA.replace("PATH", "/v1/route")

FEEDBACK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
local counter = 1
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  ids = {}
  for line in io.lines("IDS") do ids[#ids + 1] = line end
  n = 0
end
request = function()
  local i = tid + n * NTHREADS
  n = n + 1
  if i > #ids then i = ((i - 1) % #ids) + 1 end
  return wrk.format(nil, "/v1/feedback", nil,
    '{"decision_id": "' .. ids[i] .. '", "source": "user", "score": 0.75, "cost_usd": 0.001}')
end
"""


def parse(out: str) -> dict[str, Any]:
    def to_ms(v: str, unit: str) -> float:
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {p: to_ms(v, u) for p, v, u in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)\b", out)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "p50_ms": lat.get("50", float("nan")),
        "p99_ms": lat.get("99", float("nan")),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def wrk(url: str, path: str, script: str | None, duration: int, connections: int, threads: int = 2) -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url + path], capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    return parse(out)


def seed_decisions(rd: redis.Redis, tmp: Path, n_ids: int, model: str) -> None:
    """Enough decisions for the feedback run, in the service's own decision format, and wrk's script for them."""
    x = encode_x(np.r_[np.zeros(63), 1.0])
    ids = [f"p.{uuid.uuid4().hex}" for _ in range(n_ids)]
    pipe = rd.pipeline(transaction=False)
    for did in ids:
        fields = {"did": did, "x": x, "model": model, "cost_estimate": "0.001", "experiment": "", "arm": ""}
        pipe.hset(k_decision("p", did), mapping=fields)  # type: ignore[arg-type]
        pipe.expire(k_decision("p", did), 3600)
    pipe.execute()
    (tmp / "ids.txt").write_text("\n".join(ids) + "\n")
    (tmp / "feedback.lua").write_text(FEEDBACK_LUA.replace("IDS", str(tmp / "ids.txt")).replace("NTHREADS", "2"))


def print_table(results: list[dict[str, Any]]) -> None:
    print("| workers | endpoint | req/s | p50 ms | p99 ms | non-2xx | req/s vs baseline | p99 vs baseline |")
    print("|---|---|---|---|---|---|---|---|")
    for row in results:
        b = row["baseline"]
        for name in ("baseline", "route", "feedback"):
            r = row[name]
            print(
                f"| {row['workers']} | {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                f"{r['non_2xx']} | {r['rps'] / b['rps']:.2f} | {r['p99_ms'] / b['p99_ms']:.2f} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    records = load_records(
        ROOT / "data" / "mmlu_pro.parquet",
        models=["gpt-4o-2024-05-13", "gemini-1.5-flash-002", "Meta-Llama-3_1-8B-Instruct"],
    )
    prompts = [str(p) for p in records.prompts[:3000]]
    fz = Featurizer(dim=64).fit(prompts)
    policy = LinUCB(list(records.models), 64)
    policy.fit_full(fz.transform(prompts), records.quality[:3000], records.cost[:3000])
    artifact = to_bytes(policy, fz)
    queries = [re.sub(r"[^A-Za-z0-9 ,.?]", " ", p)[:300] for p in prompts[:200]]
    tmp = Path(tempfile.mkdtemp(prefix="br-load-"))
    (tmp / "route.lua").write_text(ROUTE_LUA.replace("{QUERIES}", "{" + ",".join(json.dumps(q) for q in queries) + "}"))
    results = []
    rport = free_port()
    server = EmbeddedRedis(tmp / "redis", port=rport).start()
    rd = redis.Redis(port=rport)
    rd.set("br:baseline", "1")
    try:
        for workers in [int(w) for w in args.workers.split(",")]:
            serve = ServeProcess(workers, {"BANDITROUTE_REDIS_URL": server.url, "BANDITROUTE_LOG_LEVEL": "WARNING"})
            try:
                serve.start()
                url = serve.url
                httpx.post(
                    url + "/v1/policies/import", params={"id": "p", "replace": True}, content=artifact, timeout=60
                ).raise_for_status()
                seed_decisions(rd, tmp, 60_000 * args.duration // 20, records.models[0])
                for _ in range(200):  # warm the workers' caches
                    httpx.post(url + "/v1/route", json={"policy": "p", "query": queries[0]}, timeout=10)
                row: dict[str, Any] = {"workers": workers}
                row["baseline"] = wrk(url, "/v1/baseline", None, args.duration, args.connections)
                row["route"] = wrk(url, "/v1/route", str(tmp / "route.lua"), args.duration, args.connections)
                row["feedback"] = wrk(url, "/v1/feedback", str(tmp / "feedback.lua"), args.duration, args.connections)
                results.append(row)
            finally:
                serve.stop()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrk, {args.connections} connections, {args.duration} s per run, 127.0.0.1, {os.cpu_count()} cores")
    print_table(results)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
