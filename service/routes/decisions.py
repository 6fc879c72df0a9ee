"""GET /v1/decisions/{id}: one logged decision, with the feedback it received."""

from __future__ import annotations

import hashlib
import json

from fastapi import APIRouter, Path

from banditroute.service.deps import StoreDep, require
from banditroute.service.errors import NotFound, responses
from banditroute.service.schemas import DECISION_PATTERN, DecisionInfo

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])


def _float(raw: bytes | None) -> float | None:
    return float(raw) if raw not in (None, b"") else None


@router.get(
    "/{decision_id}",
    response_model=DecisionInfo,
    dependencies=[require("admin")],
    responses=responses(401, 403, 404, 422, 503),
    summary="Look a decision up (within its retention)",
)
async def get_decision(decision_id: str = Path(pattern=DECISION_PATTERN), *, store: StoreDep) -> DecisionInfo:
    """The context digest, pmf, propensity, chosen model, lambda, the feedback received (by source), the
    observed cost and latency of a decision still within its retention."""
    pid = decision_id.split(".", 1)[0]
    d = await store.decision(pid, decision_id)
    if d is None:
        raise NotFound(f"unknown or expired decision {decision_id!r}")
    feedback = {k.split(":", 1)[1]: float(v) for k, v in d.items() if k.startswith("score:")}
    return DecisionInfo(
        decision_id=decision_id,
        policy=pid,
        generation=int(d.get("gen", b"0") or 0),
        policy_version=int(d.get("version", b"0") or 0),
        model=d["model"].decode(),
        propensity=float(d["propensity"]),
        pmf=json.loads(d["pmf"]),
        candidates=json.loads(d["candidates"]) if d.get("candidates") else None,
        lam=float(d["lam"]),
        context_digest=hashlib.sha256(d["x"]).hexdigest(),
        time=float(d["time"]),
        experiment=d.get("experiment", b"").decode() or None,
        arm=d.get("arm", b"").decode() or None,
        shadow=d.get("shadow", b"0") == b"1",
        cost_estimate_usd=float(d["cost_estimate"]),
        cost_observed_usd=_float(d.get("cost_observed")),
        latency_ms=_float(d.get("latency_ms")),
        feedback=feedback,
    )
