"""POST /v1/route/{decision_id}/answers: the second half of the two-call cascade protocol.

For callers who call the models themselves. ``POST /v1/route`` on a cascade policy logs the decision and answers
its first stage (``cascade``: the models to call, in parallel). The caller calls them and posts their responses
here; the answer is the next step: more models to call (post their answers here again, same decision id) or the
answer to return (``answer_model``'s own response). Then ``POST /v1/feedback`` on the decision id, as for any
decision: it trains the stop decision and the query-level policy together.

Errors: 404 unknown or expired decision; 409 a single-call decision, a cascade that already stopped, a stage
posted twice, a policy replaced since the decision; 422 answers from models the stage did not ask, answers
missing for models it asked, costs for models not asked, a ``kind`` that contradicts the decision's.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Path, Request

from banditroute.bandit.cascade import CascadeStep
from banditroute.service.cascade_answers import DEFAULT_READER, AnswerReader
from banditroute.service.cascade_record import CascadeRecord, advance, fixed_stage_decision, start
from banditroute.service.cascade_store import load, write_step
from banditroute.service.deps import SECURED, require_fast
from banditroute.service.errors import Conflict, Invalid, NotFound, responses
from banditroute.service.schemas import DECISION_PATTERN
from banditroute.service.schemas_cascade import CascadeAnswers, CascadeStage, CascadeStepResponse
from banditroute.service.store import decode_x

router = APIRouter(tags=["routing"])


def stage_of(did: str, step: CascadeStep) -> CascadeStage:
    """A step as the API shows it."""
    if step.action == "call":
        return CascadeStage(action="call", models=list(step.models), stage=step.stage, answers_url=answers_url(did))
    return CascadeStage(action="stop", models=[], stage=step.stage, answer=step.answer, answer_model=step.answer_model)


def first_stage(policy: Any, pending: Any, choice: Any) -> CascadeStage:
    """Begin a cascade on a decision not logged yet (``pending``: its log write, ``choice``: the decider's
    choice): its record goes into the decision's fields; returns the first stage to show.

    Raises:
        Invalid: no candidate model is left for the first stage.
    """
    try:
        step = start(policy, pending.fields, choice.decision, choice.x)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    if policy.stages is not None:  # a fixed first stage: logged as taken for sure (the record's first step)
        d = choice.decision = fixed_stage_decision(policy, step, choice.decision)
        pending.model = d.model
        pending.fields.update(model=d.model, propensity=repr(1.0), pmf=json.dumps(d.pmf_dict(), separators=(",", ":")))
        pending.fields["quality_estimate"], pending.fields["cost_estimate"] = _estimates(policy, choice.x, d.model)
    return stage_of(pending.did, step)


def _estimates(policy: Any, x: Any, model: str) -> tuple[str, str]:
    q, c = policy.estimates(x[None])
    j = policy.index_of(model)
    return repr(float(q[0, j])), repr(float(c[0, j]))


def answers_url(did: str) -> str:
    return f"/v1/route/{did}/answers"


def reader_for(app_state: Any, pid: str, kind: str = "") -> AnswerReader:
    """How ``pid``'s answers are read: the router's table in the upstreams file (when the gateway is on), else
    the default (choice letters); ``kind`` (the decision's, or the request's) overrides the kind."""
    gw = getattr(app_state, "gateway", None)
    routers = getattr(getattr(gw, "config", None), "routers", None) or {}
    reader: AnswerReader = routers.get(pid, DEFAULT_READER)
    if kind and kind != reader.kind:
        reader = AnswerReader(kind, None, reader.threshold)
    return reader


@router.post(
    "/v1/route/{decision_id}/answers",
    response_model=CascadeStepResponse,
    responses=responses(401, 403, 404, 409, 422, 503),
    summary="Post a cascade stage's answers; get the next stage or the answer to return",
    openapi_extra=SECURED,
    dependencies=[require_fast("route")],
)
async def post_answers(
    body: CascadeAnswers,
    request: Request,
    decision_id: str = Path(pattern=DECISION_PATTERN, description="The id `/v1/route` answered."),
) -> CascadeStepResponse:
    state = request.app.state
    store, cache = state.store, state.cache
    pid = decision_id.split(".", 1)[0]
    got = await load(store, pid, decision_id)
    if got is None:
        raise NotFound(f"unknown or expired decision {decision_id!r}")
    raw, rec, cstate = got
    if rec is None:
        raise Conflict(f"decision {decision_id!r} was made by a single-call policy: it has no next stage")
    if cstate != "calling":
        raise Conflict(
            f"the cascade of decision {decision_id!r} already stopped ({cstate}): post feedback on it, or route anew"
        )
    if body.kind and rec.kind and body.kind != rec.kind:
        raise Invalid(f"kind {body.kind!r} contradicts the decision's {rec.kind!r} (fixed by its first answers)")
    rt = await cache.get(pid)
    made = raw.get("gen", b"").decode()
    if made != rt.gen:
        raise Conflict(
            f"decision {decision_id!r} was made by generation {made} of policy {pid!r}, since replaced (now {rt.gen})"
        )
    x = decode_x(raw["x"])
    n_before = len(rec.steps)
    costs = _costs(rt.policy, x, rec, body)
    reader = reader_for(state, pid, rec.kind or body.kind or "")
    try:
        step = advance(rt.policy, x, rec, body.answers, costs, reader, rt.featurizer)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    written = await write_step(store, pid, decision_id, n_before, _fields(rec))
    if written == -1:
        raise NotFound(f"decision {decision_id!r} expired while its answers were read")
    if written == 0:
        raise Conflict(f"the answers of this stage of decision {decision_id!r} were already posted")
    return CascadeStepResponse(
        decision_id=decision_id,
        policy=pid,
        step=stage_of(decision_id, step),
        propensity=step.propensity,
        pmf=step.pmf,
        answers=rec.answers,
        cost_usd=rec.total_cost,
    )


def _costs(policy: Any, x: Any, rec: CascadeRecord, body: CascadeAnswers) -> dict[str, float]:
    """The stage's costs: posted, else the policy's estimate of the call."""
    given = dict(body.costs or {})
    bad = sorted(m for m, c in given.items() if not 0 <= float(c) <= 1e6)
    if bad:
        raise Invalid(f"costs must be in [0, 1e6] USD; wrong for {bad}")
    est = policy.estimates(x[None])[1][0]
    out = {m: float(given[m]) if m in given else max(float(est[policy.index_of(m)]), 0.0) for m in rec.last.models}
    out.update({m: float(c) for m, c in given.items() if m not in out})  # advance() names costs of unasked models
    return out


def _fields(rec: CascadeRecord) -> dict[str, str]:
    fields = rec.fields()
    if rec.state == "done":
        # what the feedback script charges the decision when feedback names no cost: every call's
        fields["gw_cost_usd"] = repr(rec.total_cost)
        fields["gw_model"] = rec.last.answer_model or ""
    return fields


__all__ = ["answers_url", "first_stage", "reader_for", "router", "stage_of"]
