"""Cascade policies: ask one model (or a few in parallel) first, look at what came back, stop or escalate.

A cascade over ``models`` has three parts:

- **The query-level policy** (inherited from :class:`~banditroute.bandit.linear.LinUCB`: per-model ridge
  regressions of quality and cost on the query's features). It chooses the first stage when no layout is fixed,
  estimates each model's probability of being right on this query (the vote's weights) and each call's cost
  (the price of escalating), and answers :meth:`Policy.select` with the first stage's (first) model, so every
  single-call code path keeps working.
- **The stop-or-escalate decision**, a contextual bandit over ``ACTIONS = ("stop", "escalate")`` on the stop
  features of :func:`.vote.stop_features` (agreement pattern, vote posteriors, missing answers, answer lengths,
  stages done, the next stage's estimated quality and cost, the query's features): one ridge regression of the
  returned answer's quality per action, ``score(stop) = q_stop``, ``score(escalate) = q_escalate - lam *
  estimated cost of the next stage / cost_scale``, epsilon-greedy (``stop_epsilon``) with its propensity.
- **The aggregator**: the log-odds weighted vote of :mod:`.vote` over every answer seen; the response returned
  is the winning label's heaviest voter's.

Layout: ``stages`` (a list of lists of model names: stage 1 called in parallel, then each later stage when the
decision escalates) or None: one model per stage, the first chosen by the query-level policy at the request's
lambda, each later one the uncalled model of highest estimated quality, up to ``max_stages``. Candidates
restrict every stage; a stage left empty is skipped.

Costs add up over every call made; latency is the number of sequential stages (parallel calls count once).
The two-call protocol: :meth:`Cascade.decide` with no answers gives the first stage; called again with the
answers (``""`` for a failed call) it gives the next stage to call or the answer to return; :meth:`Cascade.learn`
applies the feedback on the returned answer to both the stop decision and the query-level regressions.
Simulations replay whole batches through :mod:`.replay`, on the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from banditroute.bandit.base import Policy
from banditroute.bandit.cascade import vote as V
from banditroute.bandit.cascade.step import (
    ACTIONS,
    ESCALATE,
    FINAL_ANSWERS,
    STOP,
    CascadeStep,
    check_stages,
    last_stage,
)
from banditroute.bandit.cascade.stop import StopDecision
from banditroute.bandit.checks import check_context, check_lam, check_scalar
from banditroute.bandit.errors import InvalidHyperparameterError, InvalidInputError, StateError
from banditroute.bandit.linear import LinUCB


class Cascade(StopDecision, LinUCB):
    """The learned cascade (see the module docstring).

    Args:
        stages: fixed layout (list of lists of model names) or None (one model per stage, chosen per query).
        max_stages: stage limit when ``stages`` is None (>= 1).
        stop_epsilon: exploration share of the stop decision, in [0, 1).
        stop_ridge: prior precision of the stop regressions, > 0.
        n_choices: possible answers per query for the vote's posterior (10 for MMLU-Pro; large for free text).
        final_answer: after an escalation, return the vote of every answer (``"vote"``) or the latest stage's
            (``"last"``: a strong last model that cheaper voters should not outvote).
        (and :class:`LinUCB`'s arguments: the query-level policy)
    """

    name = "cascade"
    #: the stop decision's policy arrays (not per model: axis None)
    _STOP = ("stop_A", "stop_A_inv", "stop_b", "stop_n")
    _DERIVED = (("A_inv", "A"), ("stop_A_inv", "stop_A"))
    learn_stop: ClassVar[bool] = True

    def __init__(
        self,
        models: Sequence[str],
        dim: int,
        *,
        stages: Sequence[Sequence[str]] | None = None,
        max_stages: int = 2,
        stop_epsilon: float = 0.1,
        stop_ridge: float = 1.0,
        n_choices: int = 10,
        final_answer: str = "vote",
        **kwargs: Any,
    ) -> None:
        super().__init__(models, dim, **kwargs)
        if final_answer not in FINAL_ANSWERS:
            raise InvalidHyperparameterError(f"final_answer must be one of {FINAL_ANSWERS}, got {final_answer!r}")
        self.final_answer = final_answer
        self.stages = check_stages(stages, self.models)
        self.max_stages = int(check_scalar(max_stages, "max_stages", low=1, high=16, integer=True))
        self.stop_epsilon = check_scalar(stop_epsilon, "stop_epsilon", low=0.0, high=1.0, high_inclusive=False)
        self.stop_ridge = check_scalar(stop_ridge, "stop_ridge", low=0.0, low_inclusive=False)
        self.n_choices = int(check_scalar(n_choices, "n_choices", low=2, integer=True))
        self._hyper.update(
            stages=self.stages,
            max_stages=self.max_stages,
            stop_epsilon=self.stop_epsilon,
            stop_ridge=self.stop_ridge,
            n_choices=self.n_choices,
            final_answer=self.final_answer,
        )
        self._init_stop(self.stop_dim, V.N_SCALAR - 1, self.prior_quality)

    # ---- layout ----------------------------------------------------------------------------------------
    @property
    def stop_dim(self) -> int:
        return V.N_SCALAR + 2 * self.dim

    @property
    def n_stages(self) -> int:
        return len(self.stages) if self.stages is not None else self.max_stages

    def _stage_masks(self, mask: np.ndarray) -> list[np.ndarray]:
        """Fixed layout: each non-empty stage's ``(n, k)`` model mask within the candidates ``mask: (n, k)``."""
        assert self.stages is not None
        out = []
        for s in self.stages:
            m = np.zeros(self.k, dtype=bool)
            m[[self._index[x] for x in s]] = True
            out.append(mask & m[None])
        return out

    def next_stage(self, X: np.ndarray, called: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The next stage of every query: ``(n, k)`` bool models to call (all False: none left) and ``(n,)``
        stages done so far."""
        n = X.shape[0]
        if self.stages is None:
            done = called.sum(axis=1)
            q = np.where(mask & ~called, self._estimates(X)[0], -np.inf)
            j = np.argmax(q, axis=1)
            nxt = np.zeros_like(called)
            ok = np.isfinite(q[np.arange(n), j]) & (done < self.max_stages)
            nxt[np.arange(n)[ok], j[ok]] = True
            return nxt, done
        done = np.zeros(n, dtype=np.int64)
        nxt = np.zeros_like(called)
        open_ = np.ones(n, dtype=bool)  # still looking for the first stage not wholly called
        for sm in self._stage_masks(mask):
            left = sm & ~called
            has = left.any(axis=1)
            take = open_ & has
            nxt[take] = left[take]
            done += (open_ & ~has & sm.any(axis=1)).astype(np.int64)
            open_ &= ~has
        return nxt, done

    # ---- the query-level part ----------------------------------------------------------------------------
    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        if self.stages is None:
            return super()._pmf(X, mask, lam)
        first, _ = self.next_stage(X, np.zeros_like(mask), mask)
        pick = np.argmax(first, axis=1)  # the stage's first model in the policy's order
        out = np.zeros(mask.shape)
        out[np.arange(X.shape[0]), pick] = 1.0
        return out

    def first_stage(self, x: Any, candidates: Sequence[str] | None = None, lam: float = 0.0) -> CascadeStep:
        """The models to call first on ``x: (dim,)``: the fixed first stage, or one model chosen (sampled, with
        its propensity) by the query-level policy."""
        x = check_context(x, self.dim)
        lam = check_lam(lam)
        mask = self.candidate_mask(candidates)[None]
        if self.stages is not None:
            nxt, _ = self.next_stage(x[None], np.zeros_like(mask), mask)
            models = tuple(self.models[j] for j in np.flatnonzero(nxt[0]))
            return CascadeStep("call", models, None, None, 0, {"stage": 1.0}, 1.0, lam)
        d = self.select(x, candidates, lam)
        return CascadeStep("call", (d.model,), None, None, 0, d.pmf_dict(), d.propensity, lam)

    def _weights(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.clip(self._estimates(X)[0], 0.0, 1.0)
        return q, V.vote_weights(q, self.n_choices)

    def _vote_mask(self, called: np.ndarray, last: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The models whose answers vote: every called model, or (``final_answer="last"``, after an escalation)
        the latest stage's where it answered."""
        if self.final_answer == "vote":
            return called
        own = last & (codes >= 0)
        use_last = own.any(axis=1) & (last.sum(axis=1) < called.sum(axis=1))
        out: np.ndarray = np.where(use_last[:, None], last, called)
        return out

    # ---- the stop decision ---------------------------------------------------------------------------------
    def context(
        self,
        X: np.ndarray,
        codes: np.ndarray,
        called: np.ndarray,
        last: np.ndarray,
        lengths: np.ndarray,
        mask: np.ndarray,
    ) -> tuple[np.ndarray, V.Vote, np.ndarray, np.ndarray, np.ndarray]:
        """What a stop decision sees after the calls ``called: (n, k)`` (``last``: the latest stage's):
        (stop features, the vote, the next stage's models ``(n, k)``, its estimated cost ``(n,)`` USD, stages
        done ``(n,)``)."""
        q, w = self._weights(X)
        v = V.weighted_vote(codes, self._vote_mask(called, last, codes), w, self.n_choices)
        nxt, done = self.next_stage(X, called, mask)
        cost = np.where(nxt, self._estimates(X)[1], 0.0).sum(axis=1)
        next_q = np.where(nxt, q, 0.0).max(axis=1)
        phi = V.stop_features(X, v, called, q, lengths, next_q, cost / self.cost_scale, done, self.n_stages)
        return phi, v, nxt, cost, done

    # ---- one query at a time (the service) ---------------------------------------------------------------
    def decide(
        self,
        x: Any,
        answers: Mapping[str, str] | None = None,
        lam: float = 0.0,
        candidates: Sequence[str] | None = None,
        lengths: Mapping[str, float] | None = None,
        explore: bool = True,
    ) -> CascadeStep:
        """The next step on ``x: (dim,)`` given the ``answers`` so far (model -> answer label, ``""`` for a call
        that failed or gave none): the first stage when there are none, else the next stage to call or the
        answer to return. ``explore=False``: the greedy action (propensity still of the exploring policy)."""
        if not answers:
            return self.first_stage(x, candidates, lam)
        x = check_context(x, self.dim)
        lam = check_lam(lam)
        for m in answers:
            self.index_of(m)
        mask = self.candidate_mask(candidates)[None] | self.candidate_mask(list(answers))[None]
        codes = V.encode([dict(answers)], self.models)
        called = np.array([[m in answers for m in self.models]])
        lens = np.array([[float((lengths or {}).get(m, 0.0)) for m in self.models]])
        phi, v, nxt, cost, done = self.context(
            x[None], codes, called, last_stage(self.stages, self.models, answers), lens, mask
        )
        can = np.asarray(nxt.any(axis=1))
        if can[0]:
            pmf = self.stop_pmf(phi, cost, can, lam)[0]
            a = int(self.rng.choice(2, p=pmf)) if explore else int(np.argmax(pmf))
            dist, kind = {ACTIONS[i]: float(pmf[i]) for i in range(2)}, "stop-decision"
        else:
            a, pmf, dist, kind = STOP, np.array([1.0, 0.0]), {"stop": 1.0}, "forced-stop"
        if a == ESCALATE:
            models = tuple(self.models[j] for j in np.flatnonzero(nxt[0]))
            return CascadeStep("call", models, None, None, int(done[0]), dist, float(pmf[a]), lam, phi[0], kind)
        j = int(v.winner[0])
        label = str(answers.get(self.models[j], ""))
        return CascadeStep("stop", (), label, self.models[j], int(done[0]), dist, float(pmf[a]), lam, phi[0], kind)

    def learn(
        self,
        x: Any,
        steps: Sequence[CascadeStep],
        answers: Mapping[str, str],
        costs: Mapping[str, float],
        score: float,
        weight: float = 1.0,
    ) -> None:
        """Feedback on one cascade: ``score`` in [0, 1] of the answer it returned (``steps[-1]``), the
        ``answers`` and ``costs`` (USD) of every call made. Every stop decision learns the score of the answer
        finally returned; every called model learns its call's cost and a quality inferred from the answers: the
        score where it gave the returned answer, 0 where it gave none, 0 where it gave another answer and the
        returned one scored 1 (one right answer); a model whose quality cannot be inferred is not updated."""
        x = check_context(x, self.dim)
        if not steps or steps[-1].action != "stop":
            raise InvalidInputError("steps must end with the cascade's stop step (the answer it returned)")
        if set(costs) != set(answers):
            raise InvalidInputError(f"costs must name the called models {sorted(answers)}, got {sorted(costs)}")
        q = float(check_scalar(score, "score", low=0.0, high=1.0)) if not isinstance(score, bool) else float(score)
        returned = steps[-1].answer or ""
        rows, qs, cs = [], [], []
        for m, ans in answers.items():
            if returned and ans == returned:
                qm: float | None = q
            elif not ans:
                qm = 0.0
            else:
                qm = 0.0 if q >= 1.0 else None
            if qm is not None:
                rows.append(m)
                qs.append(qm)
                cs.append(float(costs[m]))
        logged = [s for s in steps if s.kind == "stop-decision" and s.features is not None]
        for s in logged:
            if s.features is None or s.features.shape != (self.stop_dim,):
                raise InvalidInputError(f"a stop step's features must have shape ({self.stop_dim},)")
        if rows:
            self.update_batch(np.repeat(x[None], len(rows), axis=0), rows, qs, cs, np.full(len(rows), weight))
        if logged and self.learn_stop:
            Phi = np.stack([s.features for s in logged if s.features is not None])
            act = np.array([ACTIONS.index("escalate" if s.action == "call" else "stop") for s in logged])
            self._update_stop(Phi, act, np.full(len(logged), q), np.full(len(logged), float(weight)))

    # ---- full information (records with answers) -----------------------------------------------------------
    def fit_full(
        self,
        X: Any,
        quality: Any,
        cost: Any,
        answers: np.ndarray | None = None,
        lengths: np.ndarray | None = None,
        lam: float = 0.0,
    ) -> None:
        """Warm start from full-information records: the query-level regressions from every model's
        ``quality, cost: (n, k)``; with ``answers`` (``(n, k)`` labels, ``""`` = none) and optional answer
        ``lengths: (n, k)``, the stop decision too: at every decision point (stage-1 first stage at ``lam``,
        then the always-escalate path) both actions' outcomes, the returned answer's recorded score."""
        super().fit_full(X, quality, cost)
        if answers is not None:
            self.fit_stop(X, quality, cost, answers, lengths, lam)

    def fit_stop(
        self,
        X: Any,
        quality: Any,
        cost: Any,
        answers: np.ndarray,
        lengths: np.ndarray | None = None,
        lam: float = 0.0,
    ) -> None:
        """The stop decision's part of :meth:`fit_full` alone (the query-level regressions as they are)."""
        if self.learn_stop:
            from banditroute.bandit.cascade.replay import fit_stop

            fit_stop(self, check_context(X, self.dim, batch=True), quality, cost, answers, lengths, lam)

    # ---- state ---------------------------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        return {**super()._arrays(), **{n: getattr(self, n) for n in self._STOP}}

    def _array_shapes(self, k: int) -> dict[str, tuple[int, ...]]:
        p = self.stop_dim
        stop = {"stop_A": (2, p, p), "stop_A_inv": (2, p, p), "stop_b": (2, p), "stop_n": (2,)}
        base = {name: (k, *a.shape[1:]) for name, a in super()._arrays().items()}
        return {**base, **stop}

    def _arm_axes(self) -> dict[str, int | None]:
        return {**dict.fromkeys(super()._arrays(), 0), **dict.fromkeys(self._STOP, None)}

    def _drop_arm(self, j: int) -> None:
        gone = self.models[j]
        if self.stages is not None:
            left = [[m for m in s if m != gone] for s in self.stages]
            if not any(left):
                raise InvalidInputError(f"cannot remove {gone!r}: it is the cascade's last staged model")
            self.stages = [s for s in left if s]
            self._hyper["stages"] = self.stages
        super()._drop_arm(j)

    def _meta_extra(self) -> dict[str, Any]:
        return {**super()._meta_extra(), "stages": self.stages}

    def warm_start(self, source: Policy) -> None:
        """:meth:`Policy.warm_start`; the layout, a hyperparameter, stays this policy's."""
        own = self.stages
        self._keep_layout = True
        try:
            super().warm_start(source)
        finally:
            self._keep_layout = False
        self.stages = own

    def _set_meta_extra(self, meta: Mapping[str, Any]) -> None:
        super()._set_meta_extra(meta)
        if getattr(self, "_keep_layout", False):
            return
        stages = meta.get("stages")
        models = meta.get("models")
        try:
            self.stages = check_stages(stages, models if isinstance(models, list) else [])
        except InvalidHyperparameterError as exc:
            raise StateError(f"state 'stages': {exc}") from exc
        self._hyper["stages"] = self.stages
