"""``banditroute demo --gateway``: the OpenAI-compatible gateway end to end, on loopback.

Local replay upstreams answer from the bundled records (each model's recorded answer letter, a ``usage`` block
from the recorded lengths, each model with its own latency); the gateway (embedded Redis) routes to them with a
cold LinUCB whose featurizer is fitted on held-in prompts; chat requests go through the real ``openai`` client; the
user's feedback (the records' score of the model that answered) is posted to ``/v1/feedback``; and the routing
shares, quality and cost are printed window by window as the policy learns.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import typer

DEMO_MODELS = {  # name: illustrative latency (s) of its replay upstream
    "gpt-4o-2024-05-13": 0.040,
    "gemini-1.5-flash-002": 0.015,
    "Meta-Llama-3_1-70B-Instruct": 0.030,
    "Mistral-7B-Instruct-v0.2": 0.010,
}
KEY = "demo-key-0123456789abcdef"


def _records(path: Path, seed: int, steps: int) -> tuple[Any, list[str], list[str]]:
    import pandas as pd

    df = pd.read_parquet(path, columns=["query_id", "prompt", "model", "score", "pred", "output_chars"])
    df = df[df["model"].isin(list(DEMO_MODELS))]
    complete = df.groupby("query_id")["model"].transform("nunique") == len(DEMO_MODELS)
    df = df[complete]
    # a query's rows may carry slightly different prompt texts: keep the texts every model answered
    per_text = df.groupby("prompt")["model"].transform("nunique") == len(DEMO_MODELS)
    df = df[per_text]
    prompts = df["prompt"].drop_duplicates().sample(frac=1.0, random_state=seed).tolist()
    n_fit = min(2000, len(prompts) // 2)
    return df, prompts[:n_fit], prompts[n_fit : n_fit + steps]


def _prices(records: Path) -> dict[str, tuple[float, float]]:
    """USD per million input and output tokens of the demo models, from the prices.csv beside the records."""
    from banditroute.env.costs import PriceTable

    table = PriceTable.load(records.parent / "prices.csv")
    table.check_models(DEMO_MODELS)
    return {m: (table.input_usd_per_mtok[m], table.output_usd_per_mtok[m]) for m in DEMO_MODELS}


def _upstreams_file(directory: Path, servers: dict[str, Any], prices: dict[str, tuple[float, float]]) -> Path:
    lines = []
    for m, srv in servers.items():
        inp, out = prices[m]
        lines += [
            f'[models."{m}"]',
            f'base_url = "{srv.url}/v1"',
            f"input_usd_per_mtok = {inp}",
            f"output_usd_per_mtok = {out}",
            "",
        ]
    path = directory / "upstreams.toml"
    path.write_text("\n".join(lines))
    return path


def demo_gateway(records: Path, steps: int, seed: int, windows: int = 5) -> None:
    import httpx
    import openai

    from banditroute.bandit import LinUCB, to_bytes
    from banditroute.env.features import Featurizer
    from banditroute.service.app import create_app
    from banditroute.service.config import Settings
    from banditroute.testing import ServerThread
    from banditroute.testing_upstreams import ReplayUpstream, models_from_records

    prices = _prices(records)
    df, fit_prompts, run_prompts = _records(records, seed, steps)
    score = {(p, m): float(s) for p, m, s in df[["prompt", "model", "score"]].itertuples(index=False)}
    typer.echo(f"replay upstreams for {len(DEMO_MODELS)} models from {records} ...")
    replay = models_from_records(records, list(DEMO_MODELS), DEMO_MODELS)
    ups = {m: ServerThread(ReplayUpstream({m: replay[m]})).start() for m in DEMO_MODELS}
    tmp = Path(tempfile.mkdtemp(prefix="banditroute-gwdemo-"))
    settings = Settings(
        redis_url=None,
        embedded_dir=str(tmp / "redis"),
        api_keys={KEY: ["admin", "route", "feedback"]},
        upstreams=str(_upstreams_file(tmp, ups, prices)),
        log_level="WARNING",
    )
    gw = ServerThread(create_app(settings)).start()
    try:
        fz = Featurizer(dim=32, max_features=5000).fit(fit_prompts)
        policy = LinUCB(list(DEMO_MODELS), fz.dim, alpha=0.3, seed=seed, explore_floor=0.05)
        with httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as admin:
            r = admin.post(
                "/v1/policies/import",
                params={"id": "demo"},
                content=to_bytes(policy, fz),
                headers={"Content-Type": "application/zip"},
            )
            r.raise_for_status()
            typer.echo(f"gateway at {gw.url}/v1 (cold LinUCB 'demo'); {len(run_prompts)} chat requests ...\n")
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
            _run(client, admin, run_prompts, score, prices, windows)
    finally:
        gw.stop()
        for s in ups.values():
            s.stop()


def _run(
    client: Any,
    admin: Any,
    prompts: list[str],
    score: dict[tuple[str, str], float],
    prices: dict[str, tuple[float, float]],
    windows: int,
) -> None:
    size = max(1, len(prompts) // windows)
    names = list(DEMO_MODELS)
    short = [m.split("-")[0][:6] + m.split("-")[1][:4] for m in names]
    typer.echo(f"{'requests':>10s} " + " ".join(f"{s:>10s}" for s in short) + f" {'quality':>8s} {'USD/1k':>8s}")
    rows: list[tuple[str, float, float]] = []
    start = time.monotonic()
    for i, prompt in enumerate(prompts):
        raw = client.chat.completions.with_raw_response.create(
            model="router/demo", messages=[{"role": "user", "content": prompt}]
        )
        completion = raw.parse()
        model = raw.headers["x-banditroute-model"]
        q = score[(prompt, model)]
        usage = completion.usage
        cost = (
            0.0
            if usage is None
            else (usage.prompt_tokens * prices[model][0] + usage.completion_tokens * prices[model][1]) / 1e6
        )
        rows.append((model, q, cost))
        admin.post(
            "/v1/feedback",
            json={"decision_id": raw.headers["x-banditroute-decision-id"], "source": "user", "score": q},
        )
        if (i + 1) % size == 0 or i + 1 == len(prompts):
            window = rows[-size:]
            shares = [sum(1 for r in window if r[0] == m) / len(window) for m in names]
            quality = sum(r[1] for r in window) / len(window)
            cost = 1000 * sum(r[2] for r in window) / len(window)
            cells = " ".join(f"{s:10.0%}" for s in shares)
            typer.echo(f"{i + 1:10d} {cells} {quality:8.3f} {cost:8.4f}")
    elapsed = time.monotonic() - start
    best = max(names, key=lambda m: sum(score.get((p, m), 0.0) for p in prompts))
    best_q = sum(score.get((p, best), 0.0) for p in prompts) / len(prompts)
    typer.echo(f"\nbest single model on these queries: {best} (quality {best_q:.3f})")
    typer.echo(f"{len(prompts)} chat requests + feedback in {elapsed:.1f} s through the real openai client")
