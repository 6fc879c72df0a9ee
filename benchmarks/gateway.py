"""Gateway overhead and throughput on loopback, side by side in one run.

Overhead = latency through the gateway minus latency straight to the same replay upstream, measured in the same
run under the same load: an open-loop generator at a fixed rate (default 100 requests/s in total) alternates
requests between the two paths, so both see the same machine, upstream and moment. Latency is taken from each
request's *scheduled* send time (no coordinated omission). The gateway runs as ``banditroute serve --workers 1``
with an embedded-style Redis; the upstream is ``banditroute.testing_upstreams`` in its own process.

Two reference paths run in the non-streaming mode beside them (all four alternate, so each gets a quarter of the
rate): the gateway as a plain pass-through (``model`` a configured model: no routing, still metered and logged)
and ``benchmarks/minimal_proxy.py``, an ASGI app that only forwards the body with the same server stack and
upstream client: the floor of any Python proxy hop on this machine.

Targets: non-streaming median added <= 1.5 ms and p99 added <= 6 ms; streaming time-to-first-token added
<= 1.5 ms median. Also throughput (closed loop, --concurrency in flight, --throughput-seconds each) of the bare
upstream and of the gateway with 1 and 2 workers.

Run:  .venv/bin/python benchmarks/gateway.py [--rate 100] [--seconds 15] [--upstream-ms 2]

Every loop is bounded in count and time; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from banditroute.bandit import LinUCB, to_bytes
from banditroute.env.features import Featurizer
from banditroute.service.embedded import EmbeddedRedis
from banditroute.testing import ServeProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["small", "medium", "large"]
KEY = "bench-key-0123456789"


def prompts(n: int = 400) -> list[str]:
    df = pd.read_parquet(ROOT / "data" / "mmlu_pro.parquet", columns=["prompt"])
    return [str(p)[:600] for p in df["prompt"].drop_duplicates().head(n)]


def start_upstream(port: int, upstream_ms: float) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "banditroute.testing_upstreams", "--port", str(port)]
    for m in MODELS:
        cmd += ["--model", f"{m}:{upstream_ms}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the replay upstream did not start")


def start_floor(port: int, upstream_port: int) -> subprocess.Popen[bytes]:
    """benchmarks/minimal_proxy.py on ``port``, forwarding to the replay upstream."""
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "minimal_proxy.py"),
        str(port),
        f"http://127.0.0.1:{upstream_port}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    body = {"model": MODELS[0], "messages": [{"role": "user", "content": "hi"}]}
    while time.monotonic() < deadline:
        try:
            if httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the minimal proxy did not start")


def write_upstreams(path: Path, port: int) -> None:
    lines = []
    for i, m in enumerate(MODELS):
        lines += [
            f'[models."{m}"]',
            f'base_url = "http://127.0.0.1:{port}/v1"',
            f"input_usd_per_mtok = {0.1 * 10**i}",
            f"output_usd_per_mtok = {0.4 * 10**i}",
            "",
        ]
    path.write_text("\n".join(lines))


def import_policy(url: str, texts: list[str]) -> None:
    fz = Featurizer(dim=32, max_features=2000).fit(texts)
    policy = LinUCB(MODELS, 32, alpha=0.1, seed=0)
    rng = np.random.default_rng(0)
    X = fz.transform(texts)
    policy.fit_full(X, rng.random((len(texts), 3)), np.tile([1e-4, 1e-3, 1e-2], (len(texts), 1)))
    r = httpx.post(
        url + "/v1/policies/import",
        params={"id": "bench"},
        content=to_bytes(policy, fz),
        headers={"Content-Type": "application/zip", "Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    r.raise_for_status()


LAGS: list[float] = []  # how late each open-loop request left its schedule (ms): did the machine hold the rate?


async def one(client: httpx.AsyncClient, url: str, body: dict[str, Any], stream: bool, scheduled: float) -> float:
    """Latency (ms) from the scheduled send: to the full answer, or to the first body chunk when streaming."""
    LAGS.append((time.perf_counter() - scheduled) * 1000)
    if not stream:
        r = await client.post(url, json=body)
        r.raise_for_status()
        return (time.perf_counter() - scheduled) * 1000
    async with client.stream("POST", url, json=body) as r:
        r.raise_for_status()
        first = None
        async for _chunk in r.aiter_raw():
            if first is None:
                first = (time.perf_counter() - scheduled) * 1000
        return first if first is not None else float("nan")


async def open_loop(
    paths: dict[str, tuple[str, str]], texts: list[str], rate: float, seconds: float, stream: bool
) -> dict[str, list[float]]:
    """Alternate requests between ``paths`` (name -> (url, model)) at ``rate`` per second in total, for at most
    ``seconds``; returns each path's latencies (ms)."""
    headers = {"Authorization": f"Bearer {KEY}"}
    out: dict[str, list[float]] = {k: [] for k in paths}
    names = list(paths)
    n = int(rate * seconds)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits, trust_env=False) as client:
        # warm-up: connections, featurizer, policy cache
        for i in range(50):
            for name in names:
                url, model = paths[name]
                warm: dict[str, Any] = {
                    "model": model,
                    "messages": [{"role": "user", "content": texts[i % len(texts)]}],
                }
                await one(client, url, warm | {"stream": stream}, stream, time.perf_counter())
        LAGS.clear()  # the warm-up's requests were not scheduled
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(n):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            name = names[i % len(names)]
            url, model = paths[name]
            body: dict[str, Any] = {
                "model": model,
                "messages": [{"role": "user", "content": texts[i % len(texts)]}],
                "stream": stream,
            }
            tasks.append((name, asyncio.create_task(one(client, url, body, stream, scheduled))))
        for name, t in tasks:
            out[name].append(await asyncio.wait_for(t, 60))
    return out


async def closed_loop(url: str, model: str, texts: list[str], concurrency: int, seconds: float) -> float:
    """Requests per second with ``concurrency`` in flight for ``seconds`` (bounded)."""
    headers = {"Authorization": f"Bearer {KEY}"}
    done = 0
    errors: list[str] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits, trust_env=False) as client:

        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.perf_counter() < deadline and i < 10_000_000:
                body = {"model": model, "messages": [{"role": "user", "content": texts[i % len(texts)]}]}
                r = await client.post(url, json=body)
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                else:
                    done += 1
                i += concurrency

        for i in range(20):  # warm-up (each worker's first featurize imports scikit-learn)
            body = {"model": model, "messages": [{"role": "user", "content": texts[i]}]}
            await client.post(url, json=body)
        deadline = time.perf_counter() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        if errors:
            print(f"  {url}: {len(errors)} errors, e.g. {errors[0]}")
        return done / (time.perf_counter() - t0)


def held(lags: list[float]) -> bool:
    """The generator kept its schedule: median send lag under 1 ms and p99 under 5 ms."""
    return bool(lags) and float(np.median(lags)) < 1.0 and float(np.percentile(lags, 99)) < 5.0


def hold_rate(paths: dict[str, tuple[str, str]], texts: list[str], args: argparse.Namespace) -> float:
    """The highest of ``--rate``, half and a quarter of it that a 3 s probe run holds (else the lowest)."""
    top = float(args.rate)
    for rate in (top, top / 2, top / 4):
        LAGS.clear()
        asyncio.run(open_loop(paths, texts, rate, 3.0, False))
        if held(LAGS):
            return rate
        print(f"  {rate:g} req/s not held (send lag median {np.median(LAGS):.1f} ms); trying lower")
    return top / 4


def verdict(ok: bool, valid: bool = True) -> str:
    if not valid:
        return "MISS (rate not held: figures invalid)"
    return "PASS" if ok else "MISS"


def run(args: argparse.Namespace) -> int:
    texts = prompts()
    up_port = free_port()
    upstream = start_upstream(up_port, args.upstream_ms)
    floor_port = free_port()
    floor = start_floor(floor_port, up_port)
    tmp = Path(tempfile.mkdtemp(prefix="banditroute-gwbench-"))
    cfg = tmp / "upstreams.toml"
    write_upstreams(cfg, up_port)
    results: dict[str, Any] = {}
    try:
        with EmbeddedRedis(tmp / "redis", port=free_port()) as red:
            env = {
                "BANDITROUTE_REDIS_URL": red.url,
                "BANDITROUTE_UPSTREAMS": str(cfg),
                "BANDITROUTE_API_KEYS": f'{{"{KEY}": ["admin", "route", "feedback"]}}',
                "BANDITROUTE_LOG_LEVEL": "WARNING",
            }
            direct = f"http://127.0.0.1:{up_port}/v1/chat/completions"
            with ServeProcess(workers=1, env=env) as gw:
                import_policy(gw.url, texts)
                paths = {"direct": (direct, "small"), "gateway": (gw.url + "/v1/chat/completions", "router/bench")}
                references = {
                    "pass": (gw.url + "/v1/chat/completions", "small"),
                    "floor": (f"http://127.0.0.1:{floor_port}/v1/chat/completions", "small"),
                }
                results["rate"] = hold_rate(paths | references, texts, args)
                for stream in (False, True):
                    LAGS.clear()
                    mode = paths if stream else paths | references
                    lat = asyncio.run(open_loop(mode, texts, results["rate"], args.seconds, stream))
                    results["stream" if stream else "plain"] = lat
                    results["held"] = results.get("held", True) and held(LAGS)
                tput_up = asyncio.run(closed_loop(direct, "small", texts, args.concurrency, args.throughput_seconds))
                tput_1 = asyncio.run(
                    closed_loop(paths["gateway"][0], "router/bench", texts, args.concurrency, args.throughput_seconds)
                )
            with ServeProcess(workers=2, env=env) as gw2:
                tput_2 = asyncio.run(
                    closed_loop(
                        gw2.url + "/v1/chat/completions",
                        "router/bench",
                        texts,
                        args.concurrency,
                        args.throughput_seconds,
                    )
                )
    finally:
        for proc in (floor, upstream):
            proc.terminate()
            proc.wait(timeout=10)
    return report(args, results, tput_up, tput_1, tput_2)


def report(args: argparse.Namespace, results: dict[str, Any], up: float, one_w: float, two_w: float) -> int:
    valid = bool(results["held"])
    print(
        f"gateway overhead, open loop at {results['rate']:g} req/s in total (direct, through the gateway and, "
        f"non-streaming, the two references, alternating), {args.seconds:g} s per mode, 1 gateway worker, "
        f"upstream latency {args.upstream_ms:g} ms"
    )
    plain_d, plain_g = np.array(results["plain"]["direct"]), np.array(results["plain"]["gateway"])
    st_d, st_g = np.array(results["stream"]["direct"]), np.array(results["stream"]["gateway"])
    med_add = float(np.median(plain_g) - np.median(plain_d))
    p99_add = float(np.percentile(plain_g, 99) - np.percentile(plain_d, 99))
    ttft_add = float(np.nanmedian(st_g) - np.nanmedian(st_d))
    print(f"{'':34s} {'direct':>9s} {'gateway':>9s} {'added':>9s}  target")
    print(
        f"{'non-streaming median (ms)':34s} {np.median(plain_d):9.2f} {np.median(plain_g):9.2f} {med_add:9.2f}"
        f"  <= 1.5  {verdict(med_add <= 1.5, valid)}"
    )
    print(
        f"{'non-streaming p99 (ms)':34s} {np.percentile(plain_d, 99):9.2f} {np.percentile(plain_g, 99):9.2f} "
        f"{p99_add:9.2f}  <= 6    {verdict(p99_add <= 6.0, valid)}"
    )
    print(
        f"{'streaming TTFT median (ms)':34s} {np.nanmedian(st_d):9.2f} {np.nanmedian(st_g):9.2f} {ttft_add:9.2f}"
        f"  <= 1.5  {verdict(ttft_add <= 1.5, valid)}"
    )
    for name, label in (("pass", "gateway as a pass-through (no routing)"), ("floor", "minimal Python proxy hop")):
        ref = np.array(results["plain"][name])
        print(
            f"  reference, {label}: median added {np.median(ref) - np.median(plain_d):.2f} ms, "
            f"p99 added {np.percentile(ref, 99) - np.percentile(plain_d, 99):.2f} ms"
        )
    print(f"samples: {len(plain_d)} + {len(plain_g)} non-streaming, {len(st_d)} + {len(st_g)} streaming")
    print(f"rate held by the load generator: {'yes' if valid else 'NO'}; load average {os.getloadavg()[0]:.1f}")
    print(
        f"throughput (closed loop, {args.concurrency} in flight, {args.throughput_seconds:g} s, one Python client "
        f"process on the same {os.cpu_count()} cores): bare upstream {up:.0f} req/s, gateway 1 worker "
        f"{one_w:.0f} req/s, gateway 2 workers {two_w:.0f} req/s"
    )
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=100.0, help="requests per second in total (open loop)")
    ap.add_argument("--seconds", type=float, default=15.0, help="duration of each open-loop mode")
    ap.add_argument("--upstream-ms", type=float, default=2.0, help="replay upstream latency")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--throughput-seconds", type=float, default=5.0)
    args = ap.parse_args()
    if not (0 < args.rate <= 2000 and 0 < args.seconds <= 300 and 0 < args.throughput_seconds <= 120):
        raise SystemExit("--rate in (0, 2000], --seconds in (0, 300], --throughput-seconds in (0, 120]")
    raise SystemExit(run(args))


if __name__ == "__main__":
    main()
