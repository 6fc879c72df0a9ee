"""Offline evaluation: every method on one train/test split of real performance records.

Methods: baselines (``oracle``, ``random``, ``best_single``, ``single:MODEL``, ``supervised_ridge``), each bandit
policy learned two ways (``NAME[full]`` from full-information train records, ``NAME[online]`` from one seeded
pass of bandit feedback over the train queries), and given SB3 agents (``rl:DIR``). The bandit policies are the
registry's learners unless the config names some (see :func:`methods.learning_policies`).

Held-out habit: everything that is chosen is chosen on the training split. The lambda behind "cheapest within
1 point" is picked on a validation part of the train split (methods refitted on the rest), then the methods
fitted on the whole train split are reported at that lambda on the test split. The headline figures (quality,
cost, V_B, regret) are at lambda = 0.

``evaluate`` returns the report as a JSON-able dict and writes it (report.json) with its human-readable form
(:mod:`simulations.report`: report.md and plots, made from that dict alone).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from banditroute.env.features import FeaturizerSpec
from banditroute.simulations import cascade, methods
from banditroute.simulations.data import DataOptions, Prepared, prepare
from banditroute.simulations.methods import Router, Split, TableRouter
from banditroute.simulations.metrics import (
    STRONG_SHARES,
    VALIDATION_MARGIN,
    aiq,
    apgr,
    cheapest_within,
    cpt,
    entropy_bits,
    strong_share_curve,
)
from banditroute.simulations.output import staged_dir
from banditroute.simulations.report import write_evaluation_report

__all__ = ["LAMBDAS", "EvalConfig", "evaluate", "parse_csv"]

LAMBDAS = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 31)])


@dataclass
class EvalConfig:
    """Everything that decides an evaluation run (saved in report.json beside the results).

    ``policies``: registry names of the bandit policies to fit; None: every registered policy that learns.
    ``features``: featurizer specs (``category``, ``category+lexical``, ...); with several, every learned method
    is fitted on each and named ``NAME @FEATURES``; None: the default featurizer.
    """

    records: str
    out: str
    seed: int = 0
    test_frac: float = 0.3
    val_frac: float = 0.2
    models: list[str] | None = None
    benchmark: str | None = None
    policies: list[str] | None = None
    hyperparameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    rl_dirs: list[str] = field(default_factory=list)
    dim: int = 64
    nan_scores: str = "error"
    progress: bool = True
    features: list[str] | None = None
    prices: str | None = None
    split_column: str | None = None
    keep_duplicates: bool = False
    label_column: str = "benchmark"

    def options(self) -> DataOptions:
        return DataOptions(
            prices=self.prices,
            split_column=self.split_column,
            merge_duplicates=not self.keep_duplicates,
            nan_scores=self.nan_scores,
            label_column=self.label_column,
        )


@dataclass(frozen=True)
class Setup:
    """The prepared records of one run: train/test, and the train split cut into fit/validation parts."""

    prep: Prepared
    train: Split
    test: Split
    fit: Split
    val: Split
    fit_idx: np.ndarray
    val_idx: np.ndarray

    @property
    def models(self) -> tuple[str, ...]:
        return self.prep.train.models


def _setup(cfg: EvalConfig, features: str | None) -> Setup:
    prep = prepare(
        cfg.records,
        seed=cfg.seed,
        test_frac=cfg.test_frac,
        models=cfg.models,
        benchmark=cfg.benchmark,
        spec=None if features is None else FeaturizerSpec.parse(features, dim=cfg.dim),
        options=cfg.options(),
        dim=cfg.dim,
    )
    train = Split(prep.x_train, prep.train.quality, prep.train.cost)
    test = Split(prep.x_test, prep.test.quality, prep.test.cost)
    # validation part of the train split, for choosing lambda
    perm = np.random.default_rng(cfg.seed + 1).permutation(len(prep.train))
    n_val = max(1, round(len(perm) * cfg.val_frac))
    val_idx, fit_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return Setup(prep, train, test, train.rows(fit_idx), train.rows(val_idx), fit_idx, val_idx)


def _fit_all(
    cfg: EvalConfig, policies: list[str], fit: Split, models: tuple[str, ...], cost_scale: float, bar: Any
) -> tuple[dict[str, Router], dict[str, Any]]:
    """Every baseline and every policy fitted on ``fit``; routers and per-method training notes."""
    routers, notes = methods.baselines(fit, models, cost_scale)
    for name in policies:
        r, n = methods.learned(name, fit, models, cost_scale, cfg.seed, cfg.hyperparameters.get(name, {}))
        routers.update(r)
        notes.update(n)
        bar.update(1)
    return routers, notes


def _oracle(s: Split, cost_scale: float) -> TableRouter:
    return TableRouter("oracle", lambda _X: s.Q, lambda _X: s.C, cost_scale)


def _curve(router: Router, s: Split, lams: np.ndarray) -> dict[str, np.ndarray]:
    """Expected quality, cost and call shares of ``router`` on split ``s`` at each lambda."""
    q, c, shares = [], [], []
    P = None
    for lam in lams:
        if P is None or not router.lam_free:
            P = router.pmf(s.X, float(lam))
        q.append(float((P * s.Q).sum(axis=1).mean()))
        c.append(float((P * s.C).sum(axis=1).mean()))
        shares.append(P.mean(axis=0))
    return {"quality": np.array(q), "cost": np.array(c), "shares": np.array(shares)}


def _reference(st: Setup) -> dict[str, Any]:
    """The figures every method is measured against (best single chosen on train, reported on test)."""
    models, train, test = st.models, st.train, st.test
    best_j = int(np.argmax(train.Q.mean(axis=0)))
    two = len(models) == 2
    return {
        "best_single_model": models[best_j],
        "best_single_quality": float(test.Q[:, best_j].mean()),
        "best_single_cost_usd": float(test.C[:, best_j].mean()),
        "oracle_quality": float(test.Q.max(axis=1).mean()),
        "strong_model": models[best_j] if two else None,
        "weak_model": models[1 - best_j] if two else None,
    }


def _cheapest_within_1pt(tc: dict[str, np.ndarray], r_val: Router, st: Setup, ref: dict[str, Any]) -> dict[str, Any]:
    """Cheapest within 1 point of the best single: lambda chosen on validation, reported on test."""
    bs_val_q = float(st.val.Q[:, int(np.argmax(st.fit.Q.mean(axis=0)))].mean())
    vc = _curve(r_val, st.val, LAMBDAS)
    i = cheapest_within(vc["cost"], vc["quality"], bs_val_q + VALIDATION_MARGIN)
    if i is None:
        return {}
    return {
        "cheapest_within_1pt_cost_share": float(tc["cost"][i]) / ref["best_single_cost_usd"],
        "cheapest_within_1pt_quality": float(tc["quality"][i]),
        "cheapest_within_1pt_lambda": float(LAMBDAS[i]),
        "cheapest_within_1pt_holds_on_test": bool(tc["quality"][i] >= ref["best_single_quality"] - 0.01),
    }


def _strong_share(
    name: str, router: Router, st: Setup, ref: dict[str, Any], rng: np.random.Generator
) -> tuple[dict[str, Any], list[float] | None]:
    """RouteLLM's APGR and CPT on two-model pools (for methods that rank queries, and random)."""
    if ref["strong_model"] is None:
        return {}, None
    strong, weak = st.models.index(ref["strong_model"]), st.models.index(ref["weak_model"])
    test = st.test
    scores = router.quality_scores(test.X)
    if scores is None and name != "random":
        return {}, None
    margin = (scores[:, strong] - scores[:, weak]) if scores is not None else rng.random(len(test.X))
    wq, sq = float(test.Q[:, weak].mean()), float(test.Q[:, strong].mean())
    sc = strong_share_curve(margin, test.Q[:, strong], test.Q[:, weak], rng)
    return {"apgr": apgr(sc, wq, sq), "cpt50": cpt(sc, wq, sq, 0.5), "cpt80": cpt(sc, wq, sq, 0.8)}, sc.tolist()


def _score(
    name: str, r_test: Router, r_val: Router | None, st: Setup, ref: dict[str, Any], rng: np.random.Generator
) -> tuple[dict[str, Any], dict[str, Any], list[float] | None]:
    """One method's metrics, its cost-quality curve and (two-model pools) its strong-share curve."""
    tc = _curve(r_test, st.test, LAMBDAS)
    q0, c0, share0 = float(tc["quality"][0]), float(tc["cost"][0]), tc["shares"][0]
    costs = st.test.C.mean(axis=0)
    bs_q = ref["best_single_quality"]
    m: dict[str, Any] = {
        "quality": q0,
        "cost_usd": c0,
        "v_b": q0 / bs_q if bs_q > 0 else None,
        "regret": ref["oracle_quality"] - q0,
        "aiq": aiq(tc["cost"], tc["quality"], float(costs.min()), float(costs.max())),
        "call_share": {mm: float(s) for mm, s in zip(st.models, share0, strict=True)},
        "call_share_entropy_bits": entropy_bits(share0),
        "cheapest_within_1pt_cost_share": None,
    }
    if r_val is not None:
        m.update(_cheapest_within_1pt(tc, r_val, st, ref))
    routellm, strong_curve = _strong_share(name, r_test, st, ref, rng)
    m.update(routellm)
    return m, {"cost_usd": tc["cost"].tolist(), "quality": tc["quality"].tolist()}, strong_curve


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run the evaluation; write report.json, report.md and plots into ``cfg.out``; return the report.

    The output directory appears whole when the run succeeds; a failed run leaves none behind."""
    t_start = time.perf_counter()
    policies = list(cfg.policies) if cfg.policies is not None else methods.learning_policies()
    feature_sets: list[str | None] = list(cfg.features) if cfg.features else [None]  # None: the default
    results: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    first: Setup | None = None
    ref: dict[str, Any] = {}
    for i, features in enumerate(feature_sets):
        st = _setup(cfg, features)
        if first is None:
            first, ref = st, _reference(st)
        suffix = f" @{features}" if len(feature_sets) > 1 else ""
        _evaluate_features(cfg, st, policies, ref, suffix, with_baselines=i == 0, results=results, curves=curves)
    assert first is not None  # feature_sets is never empty
    report = {
        "dataset": _dataset(cfg, first),
        "reference": ref,
        "methods": results,
        "curves": {"lambdas": LAMBDAS.tolist(), "strong_shares": STRONG_SHARES.tolist(), **curves},
        "config": asdict(
            replace(
                cfg,
                policies=policies,
                features=[first.prep.featurizer.spec.describe()] if cfg.features is None else cfg.features,
            )
        ),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    with staged_dir(cfg.out) as stage:
        (stage / "report.json").write_text(json.dumps(report, indent=2))
        write_evaluation_report(report, stage)
    return report


def _feature_free(name: str) -> bool:
    """Methods whose decisions ignore the context: reported once, not per feature set."""
    return name in ("oracle", "random", "best_single") or name.startswith("single:")


def _evaluate_features(
    cfg: EvalConfig,
    st: Setup,
    policies: list[str],
    ref: dict[str, Any],
    suffix: str,
    *,
    with_baselines: bool,
    results: dict[str, Any],
    curves: dict[str, Any],
) -> None:
    """Fit and score every method on one feature set, adding rows (named with ``suffix``) to ``results``."""
    cost_scale = st.prep.cost_scale
    with tqdm(total=2 * len(policies), desc=f"fitting policies{suffix}", disable=not cfg.progress) as bar:
        routers_val, _ = _fit_all(cfg, policies, st.fit, st.models, cost_scale, bar)
        routers, notes = _fit_all(cfg, policies, st.train, st.models, cost_scale, bar)
    if with_baselines:
        routers.update(methods.rl_routers(cfg.rl_dirs, st.models, st.prep.test.prompts))
    rng = np.random.default_rng(cfg.seed)
    names = [n for n in ["oracle", *routers] if with_baselines or not _feature_free(n)]
    for name in tqdm(names, desc="evaluating", disable=not cfg.progress):
        r_test = _oracle(st.test, cost_scale) if name == "oracle" else routers[name]
        r_val = _oracle(st.val, cost_scale) if name == "oracle" else routers_val.get(name)
        m, cq, strong_curve = _score(name, r_test, r_val, st, ref, rng)
        label = name if _feature_free(name) else name + suffix
        if strong_curve is not None:
            curves.setdefault("strong_share", {})[label] = strong_curve
        results[label] = {**m, **notes.get(name, {})}
        curves.setdefault("cost_quality", {})[label] = cq
    if with_baselines:  # records with answers: the cascade methods (simulations.cascade)
        cascade.add_rows(st.prep, st.fit_idx, st.val_idx, ref, cfg.seed, LAMBDAS, results, curves)


def _dataset(cfg: EvalConfig, st: Setup) -> dict[str, Any]:
    return {
        "path": str(cfg.records),
        "models": list(st.models),
        "n_train": len(st.prep.train),
        "n_test": len(st.prep.test),
        "n_dropped_incomplete": st.prep.records.n_dropped_incomplete,
        "n_merged_duplicates": st.prep.records.n_merged_duplicates,
        "features": st.prep.featurizer.spec.describe(),
        "split": f"column {cfg.split_column!r}"
        if cfg.split_column
        else f"seeded {1 - cfg.test_frac:.0%}/{cfg.test_frac:.0%}",
        "benchmark": cfg.benchmark,
        "cost_scale_usd": st.prep.cost_scale,
    }


def parse_csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None
