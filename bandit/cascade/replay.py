"""Cascades replayed on whole batches of recorded queries (pure numpy): the evaluation's and the full-information
fit's view of a :class:`~banditroute.bandit.cascade.policy.Cascade`, on the same arithmetic as one served query.

Given every model's recorded answer, quality and cost on ``n`` queries, :func:`replay` runs the cascade the way a
gateway would (first stage, stop decision, later stages), but for all queries at once. The quality of the
returned answer is the recorded score of the called model whose answer is returned (records may carry
per-model gold keys that differ: a model's own score is the one that counts). Costs add up over every call;
``stages`` counts sequential rounds (the latency), ``calls`` the models called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from banditroute.bandit.cascade import vote as V
from banditroute.bandit.cascade.step import ESCALATE, STOP
from banditroute.bandit.errors import InvalidInputError

if TYPE_CHECKING:
    from banditroute.bandit.cascade.policy import Cascade

__all__ = ["Replay", "fit_stop", "learn_replay", "replay"]

Mode = Literal["greedy", "sample", "full"]


@dataclass(frozen=True)
class Replay:
    """A batch of cascades, all ``(n,)`` unless noted.

    Attributes:
        quality: recorded score of the returned answer; ``cost``: USD of every call made; ``calls``: models
            called; ``stages``: sequential rounds; ``answer_model``: column of the model whose answer is returned;
            ``called: (n, k)``.
        log: the stop decisions taken (mode ``greedy``/``sample``): ``(rows, features (m, p), action (m,),
            propensity (m,))`` per round.
        training: mode ``full``: ``(features (m, p), quality if stopping (m,), quality if escalating (m,))`` of
            every decision point on the always-escalate path.
    """

    quality: np.ndarray
    cost: np.ndarray
    calls: np.ndarray
    stages: np.ndarray
    answer_model: np.ndarray
    called: np.ndarray
    log: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    training: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def check_batch(policy: Cascade, X: np.ndarray, codes: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """``lengths`` as ``(n, k)`` floats (zeros when None); the shapes checked against ``X`` and the policy."""
    n, k = X.shape[0], policy.k
    if codes.shape != (n, k):
        raise InvalidInputError(f"answers must be (n, k) = ({n}, {k}), got {codes.shape}")
    if lengths is None:
        return np.zeros((n, k))
    lens = np.asarray(lengths, dtype=np.float64)
    if lens.shape != (n, k) or not np.isfinite(lens).all():
        raise InvalidInputError(f"answer lengths must be finite and (n, k) = ({n}, {k}), got {lens.shape}")
    return lens


def replay(
    policy: Cascade,
    X: np.ndarray,
    codes: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    lengths: np.ndarray | None = None,
    lam: float = 0.0,
    mode: Mode = "greedy",
    candidates: list[str] | None = None,
) -> Replay:
    """Run ``policy`` on ``n`` recorded queries: ``X: (n, d)``, answer ``codes`` (:func:`.vote.encode`),
    recorded ``quality, cost`` and answer ``lengths`` (characters), all ``(n, k)`` in the policy's model order.

    Modes: ``greedy`` (each decision's most probable action), ``sample`` (drawn with the policy's generator, as
    served), ``full`` (full information: every decision point's outcome under both actions, for fitting)."""
    n, k = X.shape[0], policy.k
    lens = check_batch(policy, X, codes, lengths)
    mask = np.broadcast_to(policy.candidate_mask(candidates), (n, k)).copy()
    rows_all = np.arange(n)
    called = np.zeros((n, k), dtype=bool)
    if policy.stages is None:
        pmf = policy.pmf_batch(X, lam, candidates)
        if mode == "sample":
            u = policy.rng.random((n, 1))
            first = np.minimum((pmf.cumsum(axis=1) < u).sum(axis=1), k - 1)
        else:
            first = np.argmax(pmf, axis=1)
        nxt = np.zeros((n, k), dtype=bool)
        nxt[rows_all, first] = True
    else:
        nxt, _ = policy.next_stage(X, called, mask)
    called |= nxt
    last = nxt.copy()
    stages = np.ones(n, dtype=np.int64)
    answer = np.zeros(n, dtype=np.int64)
    active = rows_all
    log: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    train: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for _ in range(policy.n_stages + 1):
        a = active
        phi, v, nxt, ncost, _done = policy.context(X[a], codes[a], called[a], last[a], lens[a], mask[a])
        can = np.asarray(nxt.any(axis=1))
        if mode == "full":
            q_stop = quality[a, v.winner]
            c2 = called[a] | nxt
            _, w = policy._weights(X[a])
            v2 = V.weighted_vote(codes[a], policy._vote_mask(c2, nxt, codes[a]), w, policy.n_choices)
            q_esc = quality[a, v2.winner]
            train.append((phi[can], q_stop[can], q_esc[can]))
            esc = can
        else:
            pmf2 = policy.stop_pmf(phi, ncost, can, lam)
            if mode == "sample":
                act = (policy.rng.random(len(a)) < pmf2[:, 1]).astype(np.int64)
            else:
                act = (pmf2[:, 1] > pmf2[:, 0]).astype(np.int64)
            esc = can & (act == 1)
            if can.any():
                log.append((a[can], phi[can], act[can], pmf2[can, act[can]]))
        stop_rows = a[~esc]
        answer[stop_rows] = v.winner[~esc]
        go = a[esc]
        called[go] |= nxt[esc]
        last[go] = nxt[esc]
        stages[go] += 1
        active = go
        if active.size == 0:
            break
    training = None
    if mode == "full":
        training = tuple(np.concatenate(parts) for parts in zip(*train, strict=True)) if train else None
    return Replay(
        quality=quality[rows_all, answer],
        cost=np.where(called, cost, 0.0).sum(axis=1),
        calls=called.sum(axis=1),
        stages=stages,
        answer_model=answer,
        called=called,
        log=log,
        training=training,  # type: ignore[arg-type]
    )


def fit_stop(
    policy: Cascade,
    X: np.ndarray,
    quality: Any,
    cost: Any,
    answers: Any,
    lengths: np.ndarray | None = None,
    lam: float = 0.0,
) -> None:
    """Fit ``policy``'s stop decision on full-information records (``answers``: ``(n, k)`` labels, or codes of
    :func:`.vote.encode`): every decision point's outcome under both actions (:func:`replay`'s ``full`` mode), the
    returned answer's recorded score as the target."""
    raw = np.asarray(answers)
    codes = raw.astype(np.int64) if raw.dtype.kind in "iu" else V.encode(raw.astype(str))
    r = replay(policy, X, codes, np.asarray(quality, float), np.asarray(cost, float), lengths, lam, mode="full")
    if r.training is None or r.training[0].shape[0] == 0:
        return
    Phi, q_stop, q_esc = r.training
    m = Phi.shape[0]
    policy._update_stop(
        np.vstack([Phi, Phi]),
        np.concatenate([np.full(m, STOP), np.full(m, ESCALATE)]),
        np.concatenate([q_stop, q_esc]),
        np.ones(2 * m),
    )


def learn_replay(policy: Cascade, X: np.ndarray, codes: np.ndarray, cost: np.ndarray, r: Replay) -> None:
    """Bandit feedback on a batch of cascades replayed in ``sample`` (or ``greedy``) mode, as
    :meth:`Cascade.learn` applies it to one: each stop decision learns the score of the answer returned
    (``r.quality``); each called model its call's ``cost: (n, k)`` and the quality inferred from the answers
    (the score where it gave the returned answer, 0 where it gave none, 0 where it gave another and the returned
    one scored 1)."""
    n = X.shape[0]
    score = r.quality
    ret = codes[np.arange(n), r.answer_model]
    same = r.called & (codes == ret[:, None]) & (ret[:, None] >= 0)
    none = r.called & (codes < 0)
    known = same | none | (r.called & (score[:, None] >= 1.0))
    rows, cols = np.nonzero(known)
    if rows.size:
        quality = np.where(same[rows, cols], score[rows], 0.0)
        policy.update_batch(X[rows], [policy.models[j] for j in cols], quality, cost[rows, cols])
    if policy.learn_stop:
        for idx, Phi, act, _prop in r.log:
            policy._update_stop(Phi, act, score[idx], np.ones(idx.size))
