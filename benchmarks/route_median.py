"""Service route median (featurize + select + log), this release against a baseline release, side by side in one
run: issue 11's target is "no slower than 1.2x today's", today being the release the issue was filed against
(the default ``--baseline``, the commit before its featurizer registry).

Both releases are served at once, each by its own ``banditroute serve`` (1 worker) on its own Redis, each with the
LinUCB artifact its own ``banditroute fit`` makes from data/mmlu_pro.parquet with its default features (the
baseline: tf-idf/SVD; this release: ``category``). One client sends the same queries, test prompts of the records,
one route at a time on a keep-alive connection, alternating between the two services request by request, so a
shift of the machine's speed lands on both. The baseline is built from git (``git archive`` and ``pip install
--no-deps --target``) and run with this environment's packages.

Run:  .venv/bin/python benchmarks/route_median.py [--baseline 728a064^] [--requests 400] [--policy linucb]

127.0.0.1 only; Redis on free ports; every loop bounded by --requests and --max-seconds.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from banditroute.service.embedded import EmbeddedRedis
from banditroute.testing import ServeProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "data" / "mmlu_pro.parquet"
#: the release issue 11 was filed against: the parent of the commit that added the featurizer registry
ISSUE_11_BASE = "728a064^"
TARGET = 1.2


def build(ref: str, into: Path) -> Path:
    """Release ``ref`` of this repository installed (no dependencies) into ``into/site``; its path."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    src = into / "src"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(src, filter="data")
    site = into / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site)]
    subprocess.run([*pip, str(src)], check=True, capture_output=True)
    return site


def fit(env: dict[str, str], policy: str, out: Path, cwd: Path) -> None:
    """The release's own ``banditroute fit`` of ``policy`` on the records, with its default features."""
    cmd = [sys.executable, "-m", "banditroute", "fit", "--records", str(RECORDS), "--policy", policy]
    subprocess.run([*cmd, "--out", str(out)], env={**os.environ, **env}, cwd=cwd, check=True, capture_output=True)


def queries(n: int) -> list[str]:
    prompts = pd.read_parquet(RECORDS, columns=["prompt"])["prompt"].drop_duplicates()
    return [str(t) for t in prompts.sample(n=min(n, len(prompts)), random_state=0)]


def measure(baseline: str, policy: str, requests: int, max_seconds: float) -> dict[str, tuple[int, list[float]]]:
    """Per release (``"baseline"``, ``"this release"``): the served policy's context dim and its route latencies
    (ms), the two services queried alternately."""
    texts = queries(requests + 20)
    with tempfile.TemporaryDirectory(prefix="br-rm-") as tmp_name:
        tmp = Path(tmp_name)
        site = build(baseline, tmp / "baseline")
        envs = {
            "baseline": {"PYTHONPATH": str(site), "BANDITROUTE_CACHE_DIR": str(tmp / "cache-baseline")},
            "this release": {"BANDITROUTE_CACHE_DIR": str(tmp / "cache-this")},
        }
        redis = {name: EmbeddedRedis(tmp / f"redis-{i}", port=free_port()).start() for i, name in enumerate(envs)}
        servers: dict[str, ServeProcess] = {}
        clients: dict[str, httpx.Client] = {}
        dims: dict[str, int] = {}
        try:
            for name, env in envs.items():
                artifact = tmp / f"{name.replace(' ', '-')}.zip"
                fit(env, policy, artifact, cwd=tmp)
                env.update(BANDITROUTE_REDIS_URL=redis[name].url, BANDITROUTE_LOG_LEVEL="WARNING")
                # run from the temporary folder: no repository folder on the server's import path, so each release
                # imports its own code (the baseline from PYTHONPATH, this release from its editable install)
                servers[name] = ServeProcess(1, env, cwd=tmp).start()
                clients[name] = c = httpx.Client(base_url=servers[name].url, timeout=30)
                zipped = {"Content-Type": "application/zip"}
                c.post("/v1/policies/import?id=main", content=artifact.read_bytes(), headers=zipped).raise_for_status()
                dims[name] = int(c.get("/v1/policies/main").json()["dim"])  # which features it serves
            times: dict[str, list[float]] = {name: [] for name in envs}
            deadline = time.monotonic() + max_seconds
            for i, text in enumerate(texts):
                for name, c in clients.items():
                    t0 = time.perf_counter()
                    c.post("/v1/route", json={"query": text, "policy": "main"}).raise_for_status()
                    if i >= 20:  # warm-up: caches, first featurizer calls
                        times[name].append((time.perf_counter() - t0) * 1000)
                if time.monotonic() > deadline:
                    break
        finally:
            for c in clients.values():
                c.close()
            for s in servers.values():
                s.stop()
            for r in redis.values():
                r.stop()
    return {name: (dims[name], t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default=ISSUE_11_BASE, help="git ref of the release to compare with")
    ap.add_argument("--policy", default="linucb")
    ap.add_argument("--requests", type=int, default=400, help="routes per release, after 20 of warm-up")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    args = ap.parse_args()
    runs = measure(args.baseline, args.policy, args.requests, args.max_seconds)
    med = {name: statistics.median(t) for name, (_, t) in runs.items()}
    print(f"route median with a query ({args.policy}, 1 worker, {len(runs['baseline'][1])} routes each, alternating)")
    print("| release | context dim | median (ms) | p90 (ms) |\n|---|---|---|---|")
    for name, (dim, t) in runs.items():
        label = f"{name} ({args.baseline})" if name == "baseline" else name
        print(f"| {label} | {dim} | {med[name]:.2f} | {statistics.quantiles(t, n=10)[-1]:.2f} |")
    ratio = med["this release"] / med["baseline"]
    print(f"this release / baseline median: {ratio:.2f} (<= {TARGET}): {'PASS' if ratio <= TARGET else 'MISS'}")


if __name__ == "__main__":
    main()
