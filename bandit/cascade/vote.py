"""What came back from the called models, as numbers: the weighted vote and the stop decision's features.

Everything here is batched over ``n`` queries and pure numpy, so that one query served by the gateway and ten
thousand replayed by a simulation go through the very same arithmetic.

Answers are integer **codes** per query: ``codes: (n, k)``, equal codes = the same answer, ``-1`` = no answer
(the model failed or gave none); a missing answer agrees with nothing. :func:`encode` turns answer labels (the
normalised choices of :mod:`env.answers`, or cluster labels of free-text answers) into codes.

The vote (a one-coin Dawid-Skene vote): every called model with an answer votes for it with the weight
``log(q (K - 1) / (1 - q))``, where ``q`` is the query-level estimate of that model's probability of being
right on this query and ``K`` the number of possible answers; a label's score is the sum of its voters'
weights, its posterior ``exp(score) / (sum over seen labels of exp(score) + (K - seen labels))``. The winner
is the label with the highest score (ties: the voter with the highest weight), and the answer returned is its
heaviest voter's (that model's own response is what a caller gets back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["N_SCALAR", "Vote", "encode", "stop_features", "vote_weights", "weighted_vote"]

#: Probability clip of the vote weights (a model estimated always right or always wrong would outvote all).
Q_CLIP = (0.05, 0.95)
#: Scalars of the stop features before the query's own features (see :func:`stop_features`).
N_SCALAR = 15
#: Columns of the stop features: "every called model answered and all agree"; the next stage's estimated cost.
UNANIMOUS, NEXT_COST = 7, 11


def encode(answers: Sequence[Mapping[str, str]] | np.ndarray, models: Sequence[str] = ()) -> np.ndarray:
    """Answer labels to codes ``(n, k)``: an ``(n, k)`` array of labels (``""`` = none), or one mapping per
    query from model name to label (models not in it: not called, code -1) with ``models`` naming the columns."""
    if isinstance(answers, np.ndarray):
        labels = answers.astype(str)
    else:
        labels = np.array([[str(a.get(m, "")) for m in models] for a in answers], dtype=str).reshape(
            len(answers), len(models)
        )
    flat, inverse = np.unique(labels, return_inverse=True)
    codes = inverse.reshape(labels.shape).astype(np.int64)
    if flat.size and flat[0] == "":
        codes -= 1  # "" sorts first: it becomes -1, every real label >= 0
    return codes


def vote_weights(q: np.ndarray, n_choices: int) -> np.ndarray:
    """Log-odds vote weights ``(n, k)`` from estimated probabilities of being right ``q: (n, k)``."""
    p = np.clip(q, *Q_CLIP)
    w: np.ndarray = np.log(p * max(n_choices - 1, 1) / (1.0 - p))
    return w


@dataclass(frozen=True)
class Vote:
    """The vote over the called models of ``n`` queries (all ``(n,)``).

    Attributes:
        winner: column of the model whose answer is returned (the winning label's heaviest voter; the called
            model of highest weight when no called model answered).
        answered: whether any called model gave an answer.
        posterior: the winning label's posterior; ``runner_up``: the next label's (0 if none).
        weighted_share: the winner's share of the answering voters' (positive part of the) weight.
        share: the winner's voters over the called models; ``distinct``: distinct labels over the called models;
        missing: called models without an answer over the called models; ``unanimous``: every called model
        answered and all agree.
    """

    winner: np.ndarray
    answered: np.ndarray
    posterior: np.ndarray
    runner_up: np.ndarray
    weighted_share: np.ndarray
    share: np.ndarray
    distinct: np.ndarray
    missing: np.ndarray
    unanimous: np.ndarray


def weighted_vote(codes: np.ndarray, called: np.ndarray, weights: np.ndarray, n_choices: int) -> Vote:
    """The weighted vote of the ``called: (n, k)`` models with answers ``codes: (n, k)`` and ``weights: (n, k)``.

    Every row must have at least one called model."""
    cols = np.flatnonzero(called.any(axis=0))
    if cols.size < codes.shape[1]:  # only the columns some query called can vote: a cascade calls a few of many
        v = _vote(codes[:, cols], called[:, cols], weights[:, cols], n_choices)
        return Vote(cols[v.winner], *(getattr(v, f) for f in _FIELDS[1:]))
    return _vote(codes, called, weights, n_choices)


_FIELDS = (
    "winner",
    "answered",
    "posterior",
    "runner_up",
    "weighted_share",
    "share",
    "distinct",
    "missing",
    "unanimous",
)


def _vote(codes: np.ndarray, called: np.ndarray, weights: np.ndarray, n_choices: int) -> Vote:
    n, k = codes.shape
    present = called & (codes >= 0)
    same = (codes[:, :, None] == codes[:, None, :]) & present[:, :, None] & present[:, None, :]
    score = np.einsum("njm,nm->nj", same, weights)  # score of column j's label
    # the first column of each label stands for it
    first = present & ~np.any(same & np.tri(k, k, -1, dtype=bool)[None], axis=2)
    key = np.where(present, score + 1e-9 * weights, -np.inf)
    answered = np.asarray(present.any(axis=1))
    fallback = np.argmax(np.where(called, weights, -np.inf), axis=1)
    winner = np.where(answered, np.argmax(key, axis=1), fallback)
    rows = np.arange(n)
    s_win = np.where(answered, score[rows, winner], 0.0)
    label_scores = np.where(first, score, -np.inf)
    n_labels = first.sum(axis=1)
    top = np.max(np.where(first, score, -np.inf), axis=1, keepdims=True)
    shift = np.where(np.isfinite(top), top, 0.0)
    unseen = np.maximum(n_choices - n_labels, 0)[:, None]
    denom = np.exp(np.where(first, label_scores - shift, -np.inf)).sum(axis=1, keepdims=True)
    denom = denom + unseen * np.exp(-shift)
    posterior = np.where(answered, np.exp(s_win[:, None] - shift)[:, 0] / denom[:, 0], 0.0)
    win_label = codes[rows, winner]
    others = first & (codes != win_label[:, None])
    second = np.max(np.where(others, score, -np.inf), axis=1)
    runner_up = np.where(np.isfinite(second), np.exp(np.where(np.isfinite(second), second, 0.0) - shift[:, 0]), 0.0)
    runner_up = runner_up / denom[:, 0]
    n_called = np.maximum(called.sum(axis=1), 1)
    pos_w = np.where(present, np.maximum(weights, 0.0), 0.0).sum(axis=1)
    voters = np.where(answered, same[rows, winner].sum(axis=1), 0)
    win_w = np.where(answered, np.maximum(score[rows, winner], 0.0), 0.0)
    return Vote(
        winner=winner,
        answered=answered,
        posterior=posterior,
        runner_up=runner_up,
        weighted_share=np.where(pos_w > 0, win_w / np.where(pos_w > 0, pos_w, 1.0), 0.0),
        share=voters / n_called,
        distinct=n_labels / n_called,
        missing=(called & (codes < 0)).sum(axis=1) / n_called,
        unanimous=(voters == called.sum(axis=1)) & answered,
    )


def stop_features(
    X: np.ndarray,
    v: Vote,
    called: np.ndarray,
    q: np.ndarray,
    lengths: np.ndarray,
    next_quality: np.ndarray,
    next_cost: np.ndarray,
    stage: np.ndarray,
    max_stages: int,
) -> np.ndarray:
    """The stop-or-escalate decision's context ``(n, N_SCALAR + 2 d)``.

    Scalars (in order): winner's posterior, runner-up's posterior, posterior margin, weighted share, share of
    voters, distinct labels, missing answers, unanimous, winner's estimated quality, mean estimated quality of
    the called models, best estimated quality of the next stage, the next stage's estimated cost (in
    ``cost_scale`` units), stages done over the limit, mean ``log1p(answer length) / 8`` of the called answers,
    1; then the query's features ``X: (n, d)`` and the same times the winner's posterior (how confident a
    vote must be depends on the kind of query).

    Args:
        q: ``(n, k)`` estimated probability of each model being right; ``lengths: (n, k)`` answer lengths in
            characters (0 where unknown); ``next_quality, next_cost: (n,)``; ``stage: (n,)`` stages done.
    """
    n = X.shape[0]
    rows = np.arange(n)
    n_called = np.maximum(called.sum(axis=1), 1)
    loglen = np.where(called, np.log1p(np.maximum(lengths, 0.0)) / 8.0, 0.0).sum(axis=1) / n_called
    scalars = np.column_stack(
        [
            v.posterior,
            v.runner_up,
            v.posterior - v.runner_up,
            v.weighted_share,
            v.share,
            v.distinct,
            v.missing,
            v.unanimous.astype(float),
            q[rows, v.winner],
            np.where(called, q, 0.0).sum(axis=1) / n_called,
            next_quality,
            next_cost,
            stage / max_stages,
            loglen,
            np.ones(n),
        ]
    )
    return np.hstack([scalars, X, X * v.posterior[:, None]])
