"""Cascade methods in the offline evaluation (records that carry the models' answers; others get none).

Three rows, everything chosen on the train split (its fit part for fitting, its validation part for choosing):

- ``cascade-agreement[pair]``: call a pair in parallel, return their answer when they agree, else call the best
  single model (chosen on train) and return its answer. The pair: every pair of cheaper models, the one of
  highest train quality within ``COST_CAP`` of the best single's train cost.
- ``cascade[full]``: the learned cascade (:class:`~banditroute.bandit.cascade.Cascade`) fitted on full-information
  records. Its first stage (1-2 models of the cheaper models' cost-quality frontier, 3 of its best 4, or the pair
  above), its final answer (the vote of all, or the best single's own) and its lambda are chosen on validation:
  the highest quality within ``COST_CAP - SAFETY`` of the best single's cost.
  Its "cheapest within 1pt" is the cheapest (layout, lambda) on validation within 1 point (less
  ``metrics.VALIDATION_MARGIN``) of the best single's validation quality, refitted on train and reported on test.
- ``cascade[online]``: the same layout learned cold in one seeded pass over the train queries with bandit feedback
  only (it sees the answers of the models it called and the score of the answer it returned, at most
  ``ONLINE_BATCH`` queries late), deciding at the price ``ONLINE_PRICE`` quality units per call of the best single
  model; then frozen.

Test figures are of the greedy policy (each decision's most probable action). Costs add up over every call;
``stages_per_query`` counts sequential rounds (latency), ``calls_per_query`` the models called.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from banditroute.bandit.cascade import FINAL_ANSWERS, AgreementCascade, Cascade, encode, replay
from banditroute.bandit.cascade.replay import learn_replay
from banditroute.bandit.cascade.vote import NEXT_COST
from banditroute.env.answers import answer_labels, answer_lengths, answers_of
from banditroute.env.records import RecordSet
from banditroute.simulations.metrics import VALIDATION_MARGIN, aiq, cheapest_within, entropy_bits

COST_CAP = 0.5
SAFETY = 0.03
ONLINE_PRICE = 0.05
MAX_POOL = 6
#: queries decided between two updates of the online pass (feedback arrives that late at most)
ONLINE_BATCH = 16


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


def as_labels(d: CascadeData) -> np.ndarray:
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
    base: Cascade,
    stages: list[list[str]],
    d: CascadeData,
    cls: type[Cascade] = Cascade,
    seed: int = 0,
    final_answer: str | None = None,
) -> Cascade:
    """A cascade with ``stages`` taking ``base``'s query-level regressions, its stop decision fitted on ``d``."""
    extra: dict[str, Any] = {} if final_answer is None else {"final_answer": final_answer}
    p = cls(base.models, base.dim, stages=stages, cost_scale=base.cost_scale, seed=seed, **extra)
    _copy_query_level(base, p)
    p.fit_stop(d.X, d.Q, d.C, d.codes, d.lengths)
    return p


def sweep(p: Cascade, d: CascadeData, lams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy quality and cost ``(len(lams),)`` on ``d`` at each lambda. A fixed two-stage layout decides once,
    escalating iff ``q_escalate - lam * next cost / cost_scale > q_stop``: one full-information replay gives
    both outcomes of every query and every lambda's figures follow (the same as a replay per lambda)."""
    if p.stages is None or len(p.stages) != 2 or isinstance(p, AgreementCascade):
        rs = [replay(p, d.X, d.codes, d.Q, d.C, d.lengths, float(lam)) for lam in lams]
        return np.array([r.quality.mean() for r in rs]), np.array([r.cost.mean() for r in rs])
    r = replay(p, d.X, d.codes, d.Q, d.C, d.lengths, mode="full")
    assert r.training is not None and r.training[0].shape[0] == d.X.shape[0]  # one decision per query
    Phi, q_stop, q_esc = r.training
    est = p.stop_estimates(Phi)
    gain, price = est[:, 1] - est[:, 0], Phi[:, NEXT_COST]  # the next stage's cost in cost_scale units
    first = np.zeros(p.k, dtype=bool)
    first[[p.index_of(m) for m in p.stages[0]]] = True
    c_stop = d.C[:, first].sum(axis=1)
    c_esc = np.where(r.called, d.C, 0.0).sum(axis=1)  # the always-escalate path called both stages
    esc = gain[None, :] - np.asarray(lams)[:, None] * price[None, :] > 0  # (lams, n)
    return np.where(esc, q_esc, q_stop).mean(axis=1), np.where(esc, c_esc, c_stop).mean(axis=1)


def run_stream(p: Cascade, d: CascadeData, idx: np.ndarray, lam: float, learn: bool = True) -> dict[str, np.ndarray]:
    """The queries ``idx`` of ``d`` in order through ``p`` with bandit feedback only: per query it decides
    (exploring), the answers of the models it called are revealed, and it learns the recorded score of the answer
    it returned and the cost of each call. Per step: ``quality``, ``cost``, ``calls``, ``stages`` (arrays)."""
    labels = as_labels(d)
    out = {key: np.empty(idx.size) for key in ("quality", "cost", "calls", "stages")}
    for t, i in enumerate(idx):
        x, answers, lens = d.X[i], {}, {}
        steps = [p.decide(x, lam=lam)]
        while steps[-1].action == "call":
            for m in steps[-1].models:
                j = p.index_of(m)
                answers[m], lens[m] = str(labels[i, j]), float(d.lengths[i, j])
            steps.append(p.decide(x, answers, lam, lengths=lens))
        score = float(d.Q[i, p.index_of(steps[-1].answer_model or "")])
        costs = {m: float(d.C[i, p.index_of(m)]) for m in answers}
        if learn:
            p.learn(x, steps, answers, costs, score)
        out["quality"][t], out["cost"][t] = score, sum(costs.values())
        out["calls"][t], out["stages"][t] = len(answers), len(steps) - 1
    return out


def online_pass(p: Cascade, d: CascadeData, lam: float, seed: int, batch: int = ONLINE_BATCH) -> dict[str, Any]:
    """One cold seeded pass of bandit feedback over ``d``: ``batch`` queries at a time the cascade decides
    (exploring, as served), then learns what they revealed (:func:`learn_replay`: the answers of the models it
    called, the score of the answer it returned); feedback arrives at most ``batch`` queries late. The pass's own
    figures."""
    order = np.random.default_rng(seed).permutation(d.X.shape[0])
    got, t0 = [], time.perf_counter()
    for start in range(0, order.size, batch):
        b = d.rows(order[start : start + batch])
        r = replay(p, b.X, b.codes, b.Q, b.C, b.lengths, lam, mode="sample")
        learn_replay(p, b.X, b.codes, b.C, r)
        got.append(r.quality)
    secs = time.perf_counter() - t0
    quality = np.concatenate(got)
    return {"online_mean_quality": float(quality.mean()), "steps": int(quality.size), "fit_seconds": round(secs, 2)}


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

    # layouts of the learned cascade, each with its final answer and lambda, chosen on validation
    pool = frontier(fit, final)
    firsts = {tuple(sorted(s)) for r in (1, 2) for s in itertools.combinations(pool, r)}
    firsts |= {tuple(sorted(s)) for s in itertools.combinations(pool[:4], 3)} | {tuple(sorted((i, j)))}
    vq_best = float(val.Q[:, final].mean())
    vc_best = float(val.C[:, final].mean())
    Pick = tuple[float, list[list[str]], str, float]
    top: Pick | None = None
    cheap: Pick | None = None
    for first, how in itertools.product(sorted(firsts), FINAL_ANSWERS):
        stages = [[models[m] for m in first], [models[final]]]
        q, c = sweep(fitted(base_fit, stages, fit, seed=seed, final_answer=how), val, lams)
        ok = np.flatnonzero(c <= (COST_CAP - SAFETY) * vc_best)
        if ok.size and (top is None or q[ok].max() > top[0]):
            b = int(ok[np.argmax(q[ok])])
            top = (float(q[b]), stages, how, float(lams[b]))
        w = cheapest_within(c, q, vq_best + VALIDATION_MARGIN)
        if w is not None and (cheap is None or c[w] < cheap[0]):
            cheap = (float(c[w]), stages, how, float(lams[w]))
    if top is None:  # nothing fits the cap: the agreement pair's layout, its cheapest lambda
        top = (float("nan"), pair, "vote", float(lams[-1]))
    learned = fitted(base, top[1], train, seed=seed, final_answer=top[2])
    notes: dict[str, Any] = {"hyperparameters": learned.hyperparameters(), "layouts_searched": 2 * len(firsts)}
    add("cascade[full]", learned, top[3], notes)
    if cheap is not None:
        p_cheap = fitted(base, cheap[1], train, seed=seed, final_answer=cheap[2])
        r = replay(p_cheap, test.X, test.codes, test.Q, test.C, test.lengths, cheap[3])
        results["cascade[full]"].update(
            cheapest_within_1pt_cost_share=float(r.cost.mean()) / ref["best_single_cost_usd"],
            cheapest_within_1pt_quality=float(r.quality.mean()),
            cheapest_within_1pt_lambda=cheap[3],
            cheapest_within_1pt_stages=cheap[1],
            cheapest_within_1pt_final_answer=cheap[2],
            cheapest_within_1pt_holds_on_test=bool(r.quality.mean() >= ref["best_single_quality"] - 0.01),
        )

    online = Cascade(models, train.X.shape[1], stages=top[1], final_answer=top[2], cost_scale=cost_scale, seed=seed)
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


def is_cascade(name: str) -> bool:
    """Whether the registry's policy ``name`` is a cascade (it needs the records' answers)."""
    from banditroute.bandit.registry import policy_class

    return issubclass(policy_class(name), Cascade)


def stream_learners(
    ctx: Any, names: list[str], idx: np.ndarray, lam: float
) -> tuple[list[tuple[str, dict[str, np.ndarray], float]], dict[str, str]]:
    """``simulate online``'s hook: each cascade of ``names`` learns cold on the test stream ``idx`` from
    feedback only (config ``[hyperparameters.NAME]``, e.g. ``stages``); per learner (name, per-step trace,
    seconds); and the cascades skipped, with why (records without answers)."""
    from banditroute.simulations.scenarios.common import policy

    prep = ctx.prep
    d = cascade_data(prep.test, prep.x_test, prep.featurizer)
    if d is None:
        return [], {n: "the records carry no answers (pred or response): a cascade has nothing to read" for n in names}
    out = []
    for name in names:
        p = policy(ctx, name)
        assert isinstance(p, Cascade)
        t0 = time.perf_counter()
        trace = run_stream(p, d, idx, lam)
        out.append((name, trace, time.perf_counter() - t0))
    return out, {}
