"""Cascade methods in the offline evaluation (records that carry the models' answers; others get none).

Three rows, everything chosen on the train split (its fit part for fitting, its validation part for choosing):

- ``cascade-agreement[pair]``: call a pair in parallel, return their answer when they agree, else call the best
  single model (chosen on train) and return its answer. The pair: every pair of cheaper models, the one of
  highest train quality within ``COST_CAP`` of the best single's train cost.
- ``cascade[full]``: the learned cascade (:class:`~banditroute.bandit.cascade.Cascade`) fitted on full-information
  records. Its first stage (1-3 models of the cheaper models' cost-quality frontier, or the pair above) and its
  lambda are chosen on validation: the highest quality within ``COST_CAP - SAFETY`` of the best single's cost.
  Its "cheapest within 1pt" is the cheapest (layout, lambda) on validation within 1 point (less ``MARGIN``) of
  the best single's validation quality, refitted on train and reported on test.
- ``cascade[online]``: the same layout learned cold in one seeded pass over the train queries with bandit feedback
  only (it sees the answers of the models it called and the score of the answer it returned), deciding at the
  price ``ONLINE_PRICE`` quality units per call of the best single model; then frozen.

Test figures are of the greedy policy (each decision's most probable action). Costs add up over every call;
``stages_per_query`` counts sequential rounds (latency), ``calls_per_query`` the models called.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from banditroute.bandit.cascade import AgreementCascade, Cascade, encode, replay
from banditroute.env.answers import answer_labels, answer_lengths, answers_of
from banditroute.env.records import RecordSet
from banditroute.simulations.metrics import aiq, cheapest_within, entropy_bits

COST_CAP = 0.5
SAFETY = 0.03
MARGIN = 0.004
ONLINE_PRICE = 0.05
MAX_POOL = 4
#: lambdas of the layout search on validation (every other of evaluate's sweep)
SEARCH_EVERY = 2


@dataclass(frozen=True)
class CascadeData:
    """Queries with answers: ``X: (n, d)``; ``Q, C, lengths: (n, k)``; ``codes: (n, k)`` (:func:`encode`)."""

    X: np.ndarray
    Q: np.ndarray
    C: np.ndarray
    codes: np.ndarray
    lengths: np.ndarray

    def rows(self, idx: np.ndarray) -> CascadeData:
        return CascadeData(self.X[idx], self.Q[idx], self.C[idx], self.codes[idx], self.lengths[idx])


def cascade_data(records: RecordSet, X: np.ndarray, featurizer: Any) -> CascadeData | None:
    """The records' answers as cascade data, or None when they carry none."""
    ans = answers_of(records)
    if ans is None:
        return None
    codes = encode(answer_labels(ans, featurizer if ans.kind == "text" else None))
    return CascadeData(X, records.quality, records.cost, codes, answer_lengths(records, ans))


def _as_labels(d: CascadeData) -> np.ndarray:
    """Codes back to labels for :meth:`Cascade.fit_full` (``""`` = none)."""
    return np.where(d.codes < 0, "", d.codes.astype(str))


def best_pair(d: CascadeData, final: int, cap: float) -> tuple[int, int]:
    """The agreement rule's pair: highest quality on ``d`` within ``cap`` of ``final``'s cost (else cheapest)."""
    k = d.Q.shape[1]
    mean_c = d.C.mean(axis=0)
    budget = cap * mean_c[final]
    best: tuple[float, int, int] | None = None
    cheapest: tuple[float, int, int] | None = None
    for i, j in itertools.combinations([m for m in range(k) if m != final and mean_c[m] < mean_c[final]], 2):
        agree = (d.codes[:, i] == d.codes[:, j]) & (d.codes[:, i] >= 0)
        q = float(np.where(agree, d.Q[:, i], d.Q[:, final]).mean())
        c = float((d.C[:, i] + d.C[:, j] + np.where(agree, 0.0, d.C[:, final])).mean())
        if c <= budget and (best is None or q > best[0]):
            best = (q, i, j)
        if cheapest is None or c < cheapest[0]:
            cheapest = (c, i, j)
    pick = best or cheapest
    if pick is None:
        raise ValueError("a cascade needs at least three models")
    return pick[1], pick[2]


def frontier(d: CascadeData, final: int, size: int = MAX_POOL) -> list[int]:
    """Models cheaper than ``final`` that no cheaper model beats on quality, best ``size`` of them."""
    q, c = d.Q.mean(axis=0), d.C.mean(axis=0)
    cheaper = [m for m in range(len(q)) if m != final and c[m] < c[final]]
    front = [m for m in cheaper if not any(c[o] <= c[m] and q[o] > q[m] for o in cheaper if o != m)]
    return sorted(front, key=lambda m: -q[m])[:size]


def _copy_query_level(src: Cascade, dst: Cascade) -> None:
    for name in ("A", "A_inv", "b", "bc", "n"):
        setattr(dst, name, getattr(src, name).copy())
    dst._refresh_theta()


def fitted(
    base: Cascade, stages: list[list[str]], d: CascadeData, cls: type[Cascade] = Cascade, seed: int = 0
) -> Cascade:
    """A cascade with ``stages`` taking ``base``'s query-level regressions, its stop decision fitted on ``d``."""
    p = cls(base.models, base.dim, stages=stages, cost_scale=base.cost_scale, seed=seed)
    _copy_query_level(base, p)
    p.fit_stop(d.X, d.Q, d.C, _as_labels(d), d.lengths)
    return p


def sweep(p: Cascade, d: CascadeData, lams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy quality and cost ``(len(lams),)`` on ``d`` at each lambda."""
    rs = [replay(p, d.X, d.codes, d.Q, d.C, d.lengths, float(lam)) for lam in lams]
    return np.array([r.quality.mean() for r in rs]), np.array([r.cost.mean() for r in rs])


def online_pass(p: Cascade, d: CascadeData, lam: float, seed: int) -> dict[str, Any]:
    """One cold seeded pass of bandit feedback over ``d``: per query the cascade decides (exploring), the
    answers of the models it called are revealed, and it learns the recorded score of the answer it returned."""
    order = np.random.default_rng(seed).permutation(d.X.shape[0])
    models = p.models
    labels = _as_labels(d)
    got, t0 = [], time.perf_counter()
    for i in order:
        x, answers, lens = d.X[i], {}, {}
        steps = [p.decide(x, lam=lam)]
        while steps[-1].action == "call":
            for m in steps[-1].models:
                j = p.index_of(m)
                answers[m], lens[m] = str(labels[i, j]), float(d.lengths[i, j])
            steps.append(p.decide(x, answers, lam, lengths=lens))
        j = models.index(steps[-1].answer_model or "")
        score = float(d.Q[i, j])
        p.learn(x, steps, answers, {m: float(d.C[i, p.index_of(m)]) for m in answers}, score)
        got.append(score)
    secs = time.perf_counter() - t0
    return {"online_mean_quality": float(np.mean(got)), "steps": len(got), "fit_seconds": round(secs, 2)}


def _row(
    p: Cascade, d: CascadeData, lam: float, ref: dict[str, Any], curve: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any]:
    r = replay(p, d.X, d.codes, d.Q, d.C, d.lengths, lam)
    calls = r.called.sum(axis=0) / max(int(r.called.sum()), 1)
    costs = d.C.mean(axis=0)
    q = float(r.quality.mean())
    bs = ref["best_single_quality"]
    return {
        "quality": q,
        "cost_usd": float(r.cost.mean()),
        "v_b": q / bs if bs > 0 else None,
        "regret": ref["oracle_quality"] - q,
        "aiq": aiq(curve[1], curve[0], float(costs.min()), float(costs.max())),
        "call_share": {m: float(s) for m, s in zip(p.models, calls, strict=True)},
        "call_share_entropy_bits": entropy_bits(calls),
        "cheapest_within_1pt_cost_share": None,
        "calls_per_query": float(r.calls.mean()),
        "stages_per_query": float(r.stages.mean()),
        "escalated_share": float((r.stages > 1).mean()),
        "cost_share_of_best_single": float(r.cost.mean()) / ref["best_single_cost_usd"],
        "stages": p.stages,
        "lam": float(lam),
    }


def evaluate_cascades(
    train: CascadeData,
    test: CascadeData,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    models: tuple[str, ...],
    cost_scale: float,
    lams: np.ndarray,
    ref: dict[str, Any],
    seed: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, list[float]]]]:
    """The cascade rows (metrics) and their cost-quality curves over ``lams`` on the test split."""
    fit, val = train.rows(fit_idx), train.rows(val_idx)
    final = models.index(ref["best_single_model"])
    results: dict[str, dict[str, Any]] = {}
    curves: dict[str, dict[str, list[float]]] = {}

    def add(name: str, p: Cascade, lam: float, notes: dict[str, Any]) -> None:
        qc = sweep(p, test, lams) if not isinstance(p, AgreementCascade) else sweep(p, test, lams[:1])
        if isinstance(p, AgreementCascade):
            qc = (np.repeat(qc[0], len(lams)), np.repeat(qc[1], len(lams)))
        results[name] = {**_row(p, test, lam, ref, qc), **notes}
        curves[name] = {"cost_usd": qc[1].tolist(), "quality": qc[0].tolist()}

    base_fit = Cascade(models, train.X.shape[1], cost_scale=cost_scale, seed=seed)
    base_fit.fit_full(fit.X, fit.Q, fit.C)
    base = Cascade(models, train.X.shape[1], cost_scale=cost_scale, seed=seed)
    base.fit_full(train.X, train.Q, train.C)

    i, j = best_pair(train, final, COST_CAP)
    pair = [[models[i], models[j]], [models[final]]]
    add("cascade-agreement[pair]", fitted(base, pair, train, AgreementCascade, seed), 0.0, {})

    # layouts of the learned cascade, each with its lambda, chosen on validation
    pool = frontier(fit, final)
    firsts = {tuple(sorted(s)) for r in (1, 2, 3) for s in itertools.combinations(pool, r)} | {tuple(sorted((i, j)))}
    grid = lams[::SEARCH_EVERY]
    vq_best = float(val.Q[:, final].mean())
    vc_best = float(val.C[:, final].mean())
    top: tuple[float, list[list[str]], float] | None = None
    cheap: tuple[float, list[list[str]], float] | None = None
    for first in sorted(firsts):
        stages = [[models[m] for m in first], [models[final]]]
        q, c = sweep(fitted(base_fit, stages, fit, seed=seed), val, grid)
        ok = np.flatnonzero(c <= (COST_CAP - SAFETY) * vc_best)
        if ok.size and (top is None or q[ok].max() > top[0]):
            b = int(ok[np.argmax(q[ok])])
            top = (float(q[b]), stages, float(grid[b]))
        w = cheapest_within(c, q, vq_best + MARGIN)
        if w is not None and (cheap is None or c[w] < cheap[0]):
            cheap = (float(c[w]), stages, float(grid[w]))
    if top is None:  # nothing fits the cap: the agreement pair's layout, its cheapest lambda
        top = (float("nan"), pair, float(lams[-1]))
    learned = fitted(base, top[1], train, seed=seed)
    notes: dict[str, Any] = {"hyperparameters": learned.hyperparameters()}
    add("cascade[full]", learned, top[2], notes)
    if cheap is not None:
        p_cheap = fitted(base, cheap[1], train, seed=seed)
        r = replay(p_cheap, test.X, test.codes, test.Q, test.C, test.lengths, cheap[2])
        results["cascade[full]"].update(
            cheapest_within_1pt_cost_share=float(r.cost.mean()) / ref["best_single_cost_usd"],
            cheapest_within_1pt_quality=float(r.quality.mean()),
            cheapest_within_1pt_lambda=cheap[2],
            cheapest_within_1pt_stages=cheap[1],
            cheapest_within_1pt_holds_on_test=bool(r.quality.mean() >= ref["best_single_quality"] - 0.01),
        )

    online = Cascade(models, train.X.shape[1], stages=top[1], cost_scale=cost_scale, seed=seed)
    lam_online = ONLINE_PRICE * cost_scale / max(float(train.C[:, final].mean()), 1e-12)
    info = online_pass(online, train, lam_online, seed)
    add("cascade[online]", online, lam_online, {**info, "hyperparameters": online.hyperparameters()})
    return results, curves


def add_rows(
    prep: Any,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    ref: dict[str, Any],
    seed: int,
    lams: np.ndarray,
    results: dict[str, Any],
    curves: dict[str, Any],
) -> None:
    """evaluate's hook: the cascade rows and curves of a :class:`~banditroute.simulations.data.Prepared` split
    (none when the records carry no answers or route fewer than three models)."""
    if prep.train.n_models < 3:
        return
    train = cascade_data(prep.train, prep.x_train, prep.featurizer)
    test = cascade_data(prep.test, prep.x_test, prep.featurizer)
    if train is None or test is None:
        return
    rows, cq = evaluate_cascades(train, test, fit_idx, val_idx, prep.train.models, prep.cost_scale, lams, ref, seed)
    results.update(rows)
    curves.setdefault("cost_quality", {}).update(cq)
