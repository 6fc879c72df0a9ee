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
from banditroute.simulations.scenarios.common import policy
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
    for name, p in twins.items():
        assert p is not None
        uploads[name] = to_bytes(p, prep.featurizer)
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


def _in_process(
    twin: Policy, X: np.ndarray, Q: np.ndarray, C: np.ndarray, rows: np.ndarray, lam: float, seed: int
) -> np.ndarray:
    """The arm's policy run in-process on the queries the service sent to that arm, in order."""
    twin.rng = np.random.default_rng(seed)
    got = np.empty(rows.size)
    for t, i in enumerate(rows):
        d = twin.select(X[i], lam=lam)
        got[t] = Q[i, d.index]
        twin.update(X[i], d.model, float(Q[i, d.index]), float(C[i, d.index]))
    return got


def run(ctx: Context) -> dict[str, Any]:
    cfg, prep = ctx.cfg, ctx.prep
    lam = float(cfg.get("lam", 0.0))
    steps = min(int(cfg["steps"]), len(prep.test))
    order = np.random.default_rng(ctx.seed).permutation(len(prep.test))[:steps]
    Q, C, prompts = prep.test.quality, prep.test.cost, prep.test.prompts
    models = list(prep.test.models)
    with tempfile.TemporaryDirectory(prefix="banditroute-ab-") as tmp:
        twins, uploads = _arms(ctx, Path(tmp))
        # the service gets its own copies; twins keep the same starting state for the in-process replay
        start_states = {n: (p.state_dict() if p is not None else None) for n, p in twins.items()}
        settings = Settings(redis_url=None, embedded_dir=str(Path(tmp) / "redis"), api_keys={}, log_level="WARNING")
        tally: dict[str, list[int]] = {n: [] for n in twins}
        t0 = time.perf_counter()
        with ServerThread(create_app(settings)) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
            for name, blob in uploads.items():
                path = "/v1/policies/import-onnx" if name == "sb3-ppo" else "/v1/policies/import"
                _check(c.post(path, params={"id": f"ab-{name}"}, content=blob))
            arms = [{"name": n, "policy": f"ab-{n}", "weight": 1.0} for n in twins]
            _check(c.post("/v1/experiments", json={"id": "ab", "arms": arms, "control": "best-single"}))
            for i in tqdm(order, desc="A/B over HTTP", disable=not ctx.progress):
                # a unit id per query: assignment is the experiment's stable hash, so a seeded run repeats exactly
                body = {"query": str(prompts[i]), "experiment": "ab", "lam": lam, "unit_id": f"seed{ctx.seed}-q{i}"}
                d = _check(c.post("/v1/route", json=body)).json()
                j = models.index(d["model"])
                _check(
                    c.post(
                        "/v1/feedback",
                        json={
                            "decision_id": d["decision_id"],
                            "source": "evaluator",
                            "score": float(Q[i, j]),
                            "cost_usd": float(C[i, j]),
                        },
                    )
                )
                tally[d["arm"]].append(int(i) * len(models) + j)
            http_seconds = time.perf_counter() - t0
            deadline = time.monotonic() + 60
            while any(_check(c.get(f"/v1/policies/ab-{n}")).json()["feedback"]["pending"] for n in twins):
                if time.monotonic() > deadline:
                    raise RuntimeError("feedback still pending after 60 s")
                time.sleep(0.05)
            report = _check(c.get("/v1/experiments/ab")).json()
    rows, exact, within = [], True, True
    for arm in report["arms"]:
        name = arm["name"]
        picks = np.array(tally[name], dtype=np.int64)
        qi, mj = picks // len(models), picks % len(models)
        client_q = Q[qi, mj] if picks.size else np.array([])
        client_c = C[qi, mj] if picks.size else np.array([])
        svc = arm["score"]["mean"]
        row = {
            "arm": name,
            "decisions": arm["decisions"],
            "feedback": arm["feedback"],
            "quality (service)": svc,
            "quality 95% CI": arm["score"]["ci95"],
            "cost USD (service)": arm["cost_usd"]["mean"],
            "quality (client tally)": float(client_q.mean()) if picks.size else None,
        }
        if picks.size:
            exact &= abs(svc - float(client_q.mean())) < 1e-9 and abs(arm["cost_usd"]["mean"] - client_c.mean()) < 1e-12
        twin = twins[name]
        if twin is not None and picks.size > 1:
            twin.load_state_dict(start_states[name])
            got = _in_process(twin, prep.x_test, Q, C, qi, lam, ctx.seed)
            se = np.sqrt(client_q.var(ddof=1) / client_q.size + got.var(ddof=1) / got.size)
            z = abs(float(client_q.mean()) - float(got.mean())) / se if se > 0 else 0.0
            row.update({"quality (in-process)": float(got.mean()), "difference in SEs": float(z)})
            within &= z <= float(cfg.get("in_process_sigmas", 3.0))
        if arm.get("score_minus_control"):
            row["minus control"] = arm["score_minus_control"]["mean"]
            row["minus control 95% CI"] = arm["score_minus_control"]["ci95"]
        rows.append(row)
    sub = order
    best_j = int(np.argmax(prep.train.quality.mean(axis=0)))
    reference = [
        {
            "method": f"best single ({models[best_j]}) on the same queries",
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
    return {
        "tables": {"arms (from the service's experiment report)": rows, "reference": reference},
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
