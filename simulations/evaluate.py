"""Offline evaluation: every method on one train/test split of real performance records.

Methods: baselines (``oracle``, ``random``, ``best_single``, ``single:MODEL``, ``supervised_ridge``), each bandit
policy learned two ways (``NAME[full]`` from full-information train records, ``NAME[online]`` from one seeded
pass of bandit feedback over the train queries), and given SB3 agents (``rl:DIR``).

Held-out habit: everything that is chosen is chosen on the training split. The lambda behind "cheapest within
1 point" is picked on a validation part of the train split (methods refitted on the rest), then the methods
fitted on the whole train split are reported at that lambda on the test split. The headline figures (quality,
cost, V_B, regret) are at lambda = 0.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from banditroute.env.features import Featurizer, FeaturizerSpec
from banditroute.simulations.data import Prepared, prepare
from banditroute.simulations.methods import (
    FixedRouter,
    OnnxRouter,
    PolicyRouter,
    Router,
    TableRouter,
    build_policy,
    online_pass,
    supervised_ridge,
)
from banditroute.simulations.metrics import (
    STRONG_SHARES,
    aiq,
    apgr,
    cheapest_within,
    cpt,
    entropy_bits,
    strong_share_curve,
)

BANDITS = ("linucb", "lints", "linear-eps-greedy", "ucb1", "thompson")
LAMBDAS = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 31)])


@dataclass
class EvalConfig:
    """Everything that decides an evaluation run (saved in report.json beside the results)."""

    records: str
    out: str
    seed: int = 0
    test_frac: float = 0.3
    val_frac: float = 0.2
    models: list[str] | None = None
    benchmark: str | None = None
    policies: list[str] = field(default_factory=lambda: list(BANDITS))
    hyperparameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    rl_dirs: list[str] = field(default_factory=list)
    dim: int = 64
    nan_scores: str = "error"
    progress: bool = True


@dataclass
class Split:
    X: np.ndarray
    Q: np.ndarray
    C: np.ndarray


def _curve(router: Router, s: Split, lams: np.ndarray) -> dict[str, np.ndarray]:
    """Expected quality, cost and call shares of ``router`` on split ``s`` at each lambda."""
    lam_free = isinstance(router, FixedRouter | OnnxRouter)
    q, c, shares = [], [], []
    P = None
    for lam in lams:
        if P is None or not lam_free:
            P = router.pmf(s.X, float(lam))
        q.append(float((P * s.Q).sum(axis=1).mean()))
        c.append(float((P * s.C).sum(axis=1).mean()))
        shares.append(P.mean(axis=0))
    return {"quality": np.array(q), "cost": np.array(c), "shares": np.array(shares)}


def _fit_methods(
    cfg: EvalConfig, prep: Prepared, fit: Split, models: tuple[str, ...], seed: int, progress: Any
) -> tuple[dict[str, Router], dict[str, Any]]:
    """Every method fitted on ``fit``; returns routers and per-method training notes."""
    k, dim = len(models), fit.X.shape[1]
    routers: dict[str, Router] = {"random": FixedRouter("random", np.full(k, 1.0 / k))}
    best = int(np.argmax(fit.Q.mean(axis=0)))
    routers["best_single"] = FixedRouter("best_single", np.eye(k)[best])
    for j, m in enumerate(models):
        routers[f"single:{m}"] = FixedRouter(f"single:{m}", np.eye(k)[j])
    routers["supervised_ridge"] = supervised_ridge(fit.X, fit.Q, fit.C, prep.cost_scale)
    notes: dict[str, Any] = {"best_single": {"model": models[best]}}
    for name in cfg.policies:
        hyper = cfg.hyperparameters.get(name, {})
        full = build_policy(name, models, dim, prep.cost_scale, seed, hyper)
        t0 = time.perf_counter()
        full.fit_full(fit.X, fit.Q, fit.C)
        routers[f"{name}[full]"] = PolicyRouter(f"{name}[full]", full)
        notes[f"{name}[full]"] = {
            "fit_seconds": round(time.perf_counter() - t0, 3),
            "hyperparameters": full.hyperparameters(),
        }
        online = build_policy(name, models, dim, prep.cost_scale, seed, hyper)
        t0 = time.perf_counter()
        info = online_pass(online, fit.X, fit.Q, fit.C, seed=seed)
        secs = time.perf_counter() - t0
        routers[f"{name}[online]"] = PolicyRouter(f"{name}[online]", online)
        notes[f"{name}[online]"] = {
            **info,
            "fit_seconds": round(secs, 3),
            "decisions_per_second": round(info["steps"] / secs, 1),
            "hyperparameters": online.hyperparameters(),
        }
        progress.update(1)
    return routers, notes


def _rl_routers(cfg: EvalConfig, prep: Prepared, split_prompts: np.ndarray, k: int) -> dict[str, Router]:
    routers: dict[str, Router] = {}
    for d in cfg.rl_dirs:
        path = Path(d)
        meta = json.loads((path / "metrics.json").read_text())
        if meta.get("models") != list(prep.train.models):
            raise ValueError(
                f"{path}: the agent routes {meta.get('models')}, this evaluation {list(prep.train.models)}"
            )
        if meta.get("env") != "routing":
            raise ValueError(f"{path}: only agents of the routing env can be evaluated per query")
        fz = Featurizer.load(path)
        feats = fz.transform(list(split_prompts)).astype(np.float32)

        def to_obs(X: np.ndarray, feats: np.ndarray = feats) -> np.ndarray:
            return feats  # the agent sees its own featurizer's vectors of the same test prompts

        name = f"rl:{meta['algo']}:{path.name}"
        routers[name] = OnnxRouter(name, path / "policy.onnx", to_obs, k)
    return routers


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run the evaluation; write report.json, report.md and plots into ``cfg.out``; return the report."""
    t_start = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = FeaturizerSpec(dim=cfg.dim)
    prep = prepare(
        cfg.records,
        seed=cfg.seed,
        test_frac=cfg.test_frac,
        models=cfg.models,
        benchmark=cfg.benchmark,
        spec=spec,
        nan_scores=cfg.nan_scores,
    )
    models = prep.train.models
    k = len(models)
    train = Split(prep.x_train, prep.train.quality, prep.train.cost)
    test = Split(prep.x_test, prep.test.quality, prep.test.cost)
    # validation part of the train split, for choosing lambda
    perm = np.random.default_rng(cfg.seed + 1).permutation(len(prep.train))
    n_val = max(1, round(len(perm) * cfg.val_frac))
    val_idx, fit_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    fit = Split(train.X[fit_idx], train.Q[fit_idx], train.C[fit_idx])
    val = Split(train.X[val_idx], train.Q[val_idx], train.C[val_idx])

    with tqdm(total=2 * len(cfg.policies), desc="fitting policies", disable=not cfg.progress) as bar:
        routers_val, _ = _fit_methods(cfg, prep, fit, models, cfg.seed, bar)
        routers, notes = _fit_methods(cfg, prep, train, models, cfg.seed, bar)
    routers.update(_rl_routers(cfg, prep, prep.test.prompts, k))
    oracle_for: Callable[[Split], Router] = lambda s: TableRouter(  # noqa: E731
        "oracle", lambda _X, s=s: s.Q, lambda _X, s=s: s.C, prep.cost_scale
    )

    best_j = int(np.argmax(train.Q.mean(axis=0)))
    bs_test_q, bs_test_c = float(test.Q[:, best_j].mean()), float(test.C[:, best_j].mean())
    best_val_j = int(np.argmax(fit.Q.mean(axis=0)))
    bs_val_q = float(val.Q[:, best_val_j].mean())
    oracle_q = float(test.Q.max(axis=1).mean())
    c_min, c_max = float(test.C.mean(axis=0).min()), float(test.C.mean(axis=0).max())
    two = k == 2
    strong = best_j
    weak = 1 - best_j if two else None
    rng = np.random.default_rng(cfg.seed)

    methods: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    names = ["oracle", *routers]
    for name in tqdm(names, desc="evaluating", disable=not cfg.progress):
        r_test = oracle_for(test) if name == "oracle" else routers[name]
        r_val = oracle_for(val) if name == "oracle" else routers_val.get(name)
        tc = _curve(r_test, test, LAMBDAS)
        q0, c0, share0 = float(tc["quality"][0]), float(tc["cost"][0]), tc["shares"][0]
        m: dict[str, Any] = {
            "quality": q0,
            "cost_usd": c0,
            "v_b": q0 / bs_test_q if bs_test_q > 0 else None,
            "regret": oracle_q - q0,
            "aiq": aiq(tc["cost"], tc["quality"], c_min, c_max),
            "call_share": {mm: float(s) for mm, s in zip(models, share0, strict=True)},
            "call_share_entropy_bits": entropy_bits(share0),
        }
        # cheapest within 1 point: lambda chosen on validation, reported on test
        m["cheapest_within_1pt_cost_share"] = None
        if r_val is not None:
            vc = _curve(r_val, val, LAMBDAS)
            i = cheapest_within(vc["cost"], vc["quality"], bs_val_q)
            if i is not None:
                m.update(
                    cheapest_within_1pt_cost_share=float(tc["cost"][i]) / bs_test_c,
                    cheapest_within_1pt_quality=float(tc["quality"][i]),
                    cheapest_within_1pt_lambda=float(LAMBDAS[i]),
                    cheapest_within_1pt_holds_on_test=bool(tc["quality"][i] >= bs_test_q - 0.01),
                )
        if two and weak is not None:
            scores = r_test.quality_scores(test.X)
            if scores is not None or name == "random":
                margin = (scores[:, strong] - scores[:, weak]) if scores is not None else rng.random(len(test.X))
                wq, sq = float(test.Q[:, weak].mean()), float(test.Q[:, strong].mean())
                sc = strong_share_curve(margin, test.Q[:, strong], test.Q[:, weak], rng)
                m.update(apgr=apgr(sc, wq, sq), cpt50=cpt(sc, wq, sq, 0.5), cpt80=cpt(sc, wq, sq, 0.8))
                curves.setdefault("strong_share", {})[name] = sc.tolist()
        m.update(notes.get(name, {}))
        methods[name] = m
        curves.setdefault("cost_quality", {})[name] = {
            "cost_usd": tc["cost"].tolist(),
            "quality": tc["quality"].tolist(),
        }
    report = {
        "dataset": {
            "path": str(cfg.records),
            "models": list(models),
            "n_train": len(prep.train),
            "n_test": len(prep.test),
            "n_dropped_incomplete": prep.records.n_dropped_incomplete,
            "benchmark": cfg.benchmark,
            "cost_scale_usd": prep.cost_scale,
        },
        "reference": {
            "best_single_model": models[best_j],
            "best_single_quality": bs_test_q,
            "best_single_cost_usd": bs_test_c,
            "oracle_quality": oracle_q,
            "strong_model": models[strong] if two else None,
            "weak_model": models[weak] if two and weak is not None else None,
        },
        "methods": methods,
        "curves": {"lambdas": LAMBDAS.tolist(), "strong_shares": STRONG_SHARES.tolist(), **curves},
        "config": asdict(cfg),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    from banditroute.simulations.report import write_evaluation_report

    write_evaluation_report(report, out)
    return report


def parse_csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def summary_rows(report: dict[str, Any], names: Sequence[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Methods in report order, single models last (the table a person reads first)."""
    items = list(report["methods"].items())
    if names:
        items = [(n, m) for n, m in items if n in names]
    head = [(n, m) for n, m in items if not n.startswith("single:")]
    tail = [(n, m) for n, m in items if n.startswith("single:")]
    return head + tail
