"""POST /v1/feedback: a user's or an evaluator's score of a decision's answer."""

from __future__ import annotations

from fastapi import APIRouter, Request

from banditroute.service import metrics
from banditroute.service.deps import SettingsDep, StoreDep, require
from banditroute.service.errors import Conflict, NotFound, responses
from banditroute.service.learner import wait_applied
from banditroute.service.schemas import FeedbackRequest, FeedbackResponse

router = APIRouter(tags=["feedback"])


@router.post(
    "/v1/feedback",
    response_model=FeedbackResponse,
    status_code=202,
    dependencies=[require("feedback")],
    responses=responses(401, 403, 404, 409, 413, 422, 503),
    summary="Score the answer of a decision (once per source)",
)
async def feedback(req: FeedbackRequest, request: Request, store: StoreDep, settings: SettingsDep) -> FeedbackResponse:
    pid = req.decision_id.split(".", 1)[0]
    weight = settings.source_weights.get(req.source, 1.0)
    code, detail = await store.submit_feedback(
        pid,
        req.decision_id,
        req.source,
        req.score,
        req.cost_usd,
        weight,
        settings.decision_ttl_seconds,
        req.latency_ms,
    )
    if code == -1:
        raise NotFound(f"unknown or expired decision {req.decision_id!r}")
    if code == -4:
        raise NotFound(f"decision {req.decision_id!r} belongs to policy {pid!r}, which was deleted")
    if code == -3:
        made, now = (detail or "/").split("/")
        metrics.FEEDBACK.labels(source=req.source, outcome="stale_generation").inc()
        metrics.POLICY_FEEDBACK.labels(policy=pid, model="", outcome="stale_generation").inc()
        raise Conflict(
            f"decision {req.decision_id!r} was made by generation {made} of policy {pid!r}, which has since been "
            f"replaced (now generation {now}); feedback on it is not applied to the new policy"
        )
    if code == -5:
        raise Conflict(
            f"the cascade of decision {req.decision_id!r} has not returned an answer: post its stages' answers to "
            f"/v1/route/{req.decision_id}/answers until it stops, then the feedback"
        )
    if code == -2:
        metrics.FEEDBACK.labels(source=req.source, outcome="duplicate").inc()
        metrics.POLICY_FEEDBACK.labels(policy=pid, model="", outcome="duplicate").inc()
        raise Conflict(f"feedback from {req.source!r} on decision {req.decision_id!r} was already accepted")
    if detail is None:
        raise RuntimeError(f"feedback script answered {code} without an id")
    fid, model = detail.split(" ", 1)
    learner = request.app.state.learner
    if learner is not None:
        learner.wake()
    metrics.FEEDBACK.labels(source=req.source, outcome="accepted").inc()
    metrics.POLICY_FEEDBACK.labels(policy=pid, model=model, outcome="accepted").inc()
    metrics.REWARD_SUM.labels(policy=pid, model=model).inc(req.score)
    if req.cost_usd is not None:
        metrics.COST_SUM.labels(policy=pid, model=model).inc(req.cost_usd)
    applied = await wait_applied(store, pid, fid, settings.redis_timeout_seconds) if req.wait else False
    return FeedbackResponse(decision_id=req.decision_id, source=req.source, feedback_id=fid, applied=applied)
