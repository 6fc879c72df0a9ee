"""``ab``: an A/B experiment run through the live service. The service (with an embedded Redis) is started in
this process; learning arms, a static best-single arm and optionally an SB3 agent (imported as ONNX) are imported
as policies; held-out queries go over HTTP, simulated evaluators post feedback, and each arm is reported from the
service's own experiment report. Two checks: the service's means equal the client's own tally exactly, and the
same policies run in-process on the same queries agree within sampling error."""

from __future__ import annotations

import io
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tqdm.auto import tqdm

from banditroute.bandit import BestSingle, Policy, to_bytes
from banditroute.service.app import create_app
from banditroute.service.config import Settings
from banditroute.simulations import stream
from banditroute.simulations.scenarios.common import policy, test_stream
from banditroute.simulations.simulate import Context
from banditroute.testing import ServerThread


def _check(r: httpx.Response) -> httpx.Response:
    if r.status_code >= 400:
        raise RuntimeError(f"service answered {r.status_code}: {r.text}")
    return r


def _arms(ctx: Context, workdir: Path) -> tuple[dict[str, Policy | None], dict[str, bytes]]:
    """Arm name -> in-process twin (None for the ONNX agent), and the bytes to import for each."""
    prep, cfg = ctx.prep, ctx.cfg
    twins: dict[str, Policy | None] = {}
    uploads: dict[str, bytes] = {}
    best = BestSingle(prep.train.models, prep.x_train.shape[1], cost_scale=prep.cost_scale, seed=ctx.seed)
    best.fit_full(prep.x_train, prep.train.quality, prep.train.cost)
    twins["best-single"] = best
    for name in cfg.get("learning_arms", ["linucb"]):
        p = policy(ctx, name)
        if cfg.get("warm_start", True):
            p.fit_full(prep.x_train, prep.train.quality, prep.train.cost)
        twins[name] = p
    for name, twin in twins.items():
        if twin is not None:
            uploads[name] = to_bytes(twin, prep.featurizer)
    if int(cfg.get("rl_steps", 0)) > 0:
        from banditroute.simulations.rl import train_rl

        out = workdir / "agent"
        train_rl(
            cfg["records"],
            algo="ppo",
            steps=int(cfg["rl_steps"]),
            out=out,
            seed=ctx.seed,
            test_frac=float(cfg.get("test_frac", 0.3)),
            lam=float(cfg.get("lam", 0.0)),
            models=cfg.get("models"),
            progress_bar=False,
        )
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for f in ("policy.onnx", "featurizer.json", "featurizer.npz", "metrics.json"):
                z.write(out / f, f)
        twins["sb3-ppo"] = None
        uploads["sb3-ppo"] = buf.getvalue()
    return twins, uploads


def _in_process(twin: Policy, data: stream.StreamData, rows: np.ndarray, lam: float, seed: int) -> np.ndarray:
    """Quality per step of the arm's policy run in-process on the queries the service sent to that arm, in order."""
    twin.rng = np.random.default_rng(seed)
    return stream.run(stream.PolicyLearner(twin.name, twin, lam), data, rows, lam).quality


def _over_http(
    ctx: Context, arms: list[str], uploads: dict[str, bytes], order: np.ndarray, workdir: Path
) -> tuple[dict[str, Any], dict[str, list[int]], float]:
    """Serve the arms, route ``order``'s queries over HTTP and post their feedback; the service's experiment
    report, the client's own tally (arm -> query * k + model) and the seconds the requests took."""
    lam = float(ctx.cfg.get("lam", 0.0))
    Q, C, prompts = ctx.prep.test.quality, ctx.prep.test.cost, ctx.prep.test.prompts
    models = list(ctx.prep.test.models)
    settings = Settings(redis_url=None, embedded_dir=str(workdir / "redis"), api_keys={}, log_level="WARNING")
    tally: dict[str, list[int]] = {n: [] for n in arms}
    t0 = time.perf_counter()
    with ServerThread(create_app(settings)) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        for name, blob in uploads.items():
            path = "/v1/policies/import-onnx" if name == "sb3-ppo" else "/v1/policies/import"
            _check(c.post(path, params={"id": f"ab-{name}"}, content=blob))
        spec = [{"name": n, "policy": f"ab-{n}", "weight": 1.0} for n in arms]
        _check(c.post("/v1/experiments", json={"id": "ab", "arms": spec, "control": "best-single"}))
        for i in tqdm(order, desc="A/B over HTTP", disable=not ctx.progress):
            # a unit id per query: assignment is the experiment's stable hash, so a seeded run repeats exactly
            body = {"query": str(prompts[i]), "experiment": "ab", "lam": lam, "unit_id": f"seed{ctx.seed}-q{i}"}
            d = _check(c.post("/v1/route", json=body)).json()
            j = models.index(d["model"])
            feedback = {"decision_id": d["decision_id"], "source": "evaluator", "score": float(Q[i, j])}
            _check(c.post("/v1/feedback", json={**feedback, "cost_usd": float(C[i, j])}))
            tally[d["arm"]].append(int(i) * len(models) + j)
        http_seconds = time.perf_counter() - t0
        deadline = time.monotonic() + 60
        while any(_check(c.get(f"/v1/policies/ab-{n}")).json()["feedback"]["pending"] for n in arms):
            if time.monotonic() > deadline:
                raise RuntimeError("feedback still pending after 60 s")
            time.sleep(0.05)
        return _check(c.get("/v1/experiments/ab")).json(), tally, http_seconds


def _arm_row(
    ctx: Context, arm: dict[str, Any], picks: np.ndarray, twin: Policy | None
) -> tuple[dict[str, Any], bool, bool]:
    """One arm's table row; whether the service's means equal the client's tally, and whether the in-process
    twin (started from the uploaded state) agrees within ``in_process_sigmas`` standard errors."""
    data = test_stream(ctx)
    k = len(data.models)
    qi, mj = picks // k, picks % k
    client_q, client_c = data.Q[qi, mj], data.C[qi, mj]
    svc = arm["score"]["mean"]
    row = {
        "arm": arm["name"],
        "decisions": arm["decisions"],
        "feedback": arm["feedback"],
        "quality (service)": svc,
        "quality 95% CI": arm["score"]["ci95"],
        "cost USD (service)": arm["cost_usd"]["mean"],
        "quality (client tally)": float(client_q.mean()) if picks.size else None,
    }
    exact = within = True
    if picks.size:
        exact = abs(svc - float(client_q.mean())) < 1e-9 and abs(arm["cost_usd"]["mean"] - client_c.mean()) < 1e-12
    if twin is not None and picks.size > 1:
        got = _in_process(twin, data, qi, float(ctx.cfg.get("lam", 0.0)), ctx.seed)
        se = np.sqrt(client_q.var(ddof=1) / client_q.size + got.var(ddof=1) / got.size)
        z = abs(float(client_q.mean()) - float(got.mean())) / se if se > 0 else 0.0
        row.update({"quality (in-process)": float(got.mean()), "difference in SEs": float(z)})
        within = z <= float(ctx.cfg.get("in_process_sigmas", 3.0))
    if arm.get("score_minus_control"):
        row["minus control"] = arm["score_minus_control"]["mean"]
        row["minus control 95% CI"] = arm["score_minus_control"]["ci95"]
    return row, bool(exact), bool(within)


def _reference(ctx: Context, sub: np.ndarray) -> list[dict[str, Any]]:
    """Best single (chosen on train), oracle and random on the queries the experiment saw."""
    Q, C = ctx.prep.test.quality, ctx.prep.test.cost
    best_j = int(np.argmax(ctx.prep.train.quality.mean(axis=0)))
    return [
        {
            "method": f"best single ({ctx.prep.test.models[best_j]}) on the same queries",
            "quality": float(Q[sub, best_j].mean()),
            "cost_usd": float(C[sub, best_j].mean()),
        },
        {
            "method": "oracle on the same queries",
            "quality": float(Q[sub].max(axis=1).mean()),
            "cost_usd": float(C[sub, Q[sub].argmax(axis=1)].mean()),
        },
        {"method": "random on the same queries", "quality": float(Q[sub].mean()), "cost_usd": float(C[sub].mean())},
    ]


def run(ctx: Context) -> dict[str, Any]:
    lam = float(ctx.cfg.get("lam", 0.0))
    steps = min(int(ctx.cfg["steps"]), len(ctx.prep.test))
    order = np.random.default_rng(ctx.seed).permutation(len(ctx.prep.test))[:steps]
    with tempfile.TemporaryDirectory(prefix="banditroute-ab-") as tmp:
        twins, uploads = _arms(ctx, Path(tmp))
        # the service gets its own copies; twins keep the same starting state for the in-process replay
        start_states = {n: p.state_dict() for n, p in twins.items() if p is not None}
        report, tally, http_seconds = _over_http(ctx, list(twins), uploads, order, Path(tmp))
    rows, exact, within = [], True, True
    for arm in report["arms"]:
        twin = twins[arm["name"]]
        if twin is not None:
            twin.load_state_dict(start_states[arm["name"]])
        row, arm_exact, arm_within = _arm_row(ctx, arm, np.array(tally[arm["name"]], dtype=np.int64), twin)
        rows.append(row)
        exact &= arm_exact
        within &= arm_within
    return {
        "tables": {"arms (from the service's experiment report)": rows, "reference": _reference(ctx, order)},
        "checks": {"service_equals_client_tally": bool(exact), "service_agrees_with_in_process": bool(within)},
        "http": {
            "requests": 2 * steps,
            "seconds": round(http_seconds, 2),
            "requests_per_second": round(2 * steps / http_seconds, 1),
        },
        "plots": [],
        "notes": [
            f"{steps} held-out queries over HTTP at lambda {lam}; feedback = the evaluator's recorded score "
            f"and cost of the chosen model"
        ],
    }
