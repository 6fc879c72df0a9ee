"""POST /v1/route: choose a model for a query, log the decision.

The hot path of the service: the API key is checked by a dependency on the request alone (``require_fast``;
``require``'s header and settings sub-dependencies cost FastAPI more to resolve per request than the rest of the
request's own Python) and the answer is serialised once, by pydantic; the decision itself is made together with
the other requests of the same loop turn (:mod:`service.decider`)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from redis.exceptions import RedisError

from banditroute.service import metrics
from banditroute.service.cascade_record import is_cascade
from banditroute.service.decider import Choice, Decider, new_decision_id
from banditroute.service.decision_writes import writer_of
from banditroute.service.deps import SECURED, require_fast
from banditroute.service.errors import Conflict, Invalid, NotFound, ServiceError, TooLarge, Unavailable, responses
from banditroute.service.experiments import assign
from banditroute.service.routes.cascade import first_stage
from banditroute.service.runtime import Runtime
from banditroute.service.schemas import RouteRequest, RouteResponse
from banditroute.service.store import encode_x

router = APIRouter(tags=["routing"])
log = logging.getLogger("banditroute.route")
_rng = np.random.default_rng()


def given_context(req: RouteRequest, rt: Runtime) -> np.ndarray | None:
    """The request's own feature vector (checked against the policy's dim), or None when the featurizer makes it
    from ``query``."""
    dim = rt.policy.dim
    if req.features is not None:
        if len(req.features) != dim:
            raise Invalid(f"features has length {len(req.features)}; policy {rt.pid!r} takes dim={dim}")
        return np.asarray(req.features, dtype=np.float64)
    if rt.featurizer is None:
        raise Invalid(f"policy {rt.pid!r} has no featurizer: send `features` (dim={dim}) instead of `query`")
    return None


def context(req: RouteRequest, rt: Runtime) -> np.ndarray:
    """The request's feature vector for this policy: given, or made by the policy's featurizer."""
    x = given_context(req, rt)
    if x is None:
        x = rt.featurizer.transform([req.query or ""])[0]  # type: ignore[union-attr]
    return x


@dataclass
class Pending:
    """A decision made and not yet logged. Nobody learns its id before :meth:`write` returns (the route answers
    after it, the gateway sends its headers after it), so no feedback can name a decision that is not stored."""

    pid: str
    did: str
    model: str
    fields: dict[str, Any]
    experiment: str | None
    arm: str | None

    async def write(self, store: Any, ttl: int) -> None:
        await writer_of(store).write(self.pid, self.did, self.fields, ttl, self.experiment, self.arm)
        metrics.DECISIONS.labels(policy=self.pid, model=self.model).inc()


def decider_of(cache: Any) -> Decider:
    """The worker's :class:`Decider` (one per policy cache, so per app)."""
    decider: Decider | None = getattr(cache, "decider", None)
    if decider is None:
        decider = cache.decider = Decider()
    return decider


async def choose(
    cache: Any,
    rt: Runtime,
    req: RouteRequest,
    experiment: str | None,
    arm: str | None,
    shadow: bool = False,
) -> tuple[Pending, Choice, float]:
    """Decide with ``rt`` (not logged yet): the pending log write, the choice, and the lambda used."""
    policy = rt.policy
    x = given_context(req, rt)
    lam = req.lam if req.lam is not None else rt.lam()
    candidates = req.candidates
    if req.max_cost_usd is not None:
        x = context(req, rt) if x is None else x
        candidates = policy.within_cost(x, req.max_cost_usd, candidates)
    did = new_decision_id(rt.pid)
    c = await decider_of(cache).choose(rt, did, req.query, x, candidates, lam)
    d = c.decision
    fields = {
        "did": did,
        "x": encode_x(c.x),
        "model": d.model,
        "propensity": repr(d.propensity),
        "pmf": json.dumps(d.pmf_dict(), separators=(",", ":")),
        # "" = every model of the policy (most requests): 32 model names less per logged decision
        "candidates": json.dumps(candidates, separators=(",", ":")) if candidates else "",
        "lam": repr(float(lam)),
        "version": c.version,
        "gen": c.gen,
        "time": repr(time.time()),
        "cost_estimate": repr(c.cost_estimate),
        "quality_estimate": repr(c.quality_estimate),
        "experiment": experiment or "",
        "arm": arm or "",
        "unit": req.unit_id or "",
        "shadow": "1" if shadow else "0",
    }
    return Pending(rt.pid, did, d.model, fields, experiment, arm), c, float(lam)


async def decide(
    store: Any,
    settings: Any,
    cache: Any,
    rt: Runtime,
    req: RouteRequest,
    experiment: str | None,
    arm: str | None,
    shadow: bool = False,
) -> tuple[str, Any, float]:
    """Decide with ``rt`` and log the decision; returns (decision id, Decision, lambda)."""
    pending, c, lam = await choose(cache, rt, req, experiment, arm, shadow)
    await pending.write(store, settings.decision_ttl_seconds)
    return pending.did, c.decision, lam


@router.post(
    "/v1/route",
    response_model=RouteResponse,
    responses=responses(401, 403, 404, 409, 413, 422, 503),
    summary="Choose a model for a query",
    openapi_extra=SECURED,
    dependencies=[require_fast("route")],
)
async def route(req: RouteRequest, request: Request) -> Response:
    state = request.app.state
    settings = state.settings
    if req.query is not None and len(req.query) > settings.max_query_chars:
        raise TooLarge(f"query has {len(req.query)} characters; the limit is {settings.max_query_chars}")
    try:
        answer, pending = await _route(req, state.store, state.cache, settings)
        await pending.write(state.store, settings.decision_ttl_seconds)
    except (RedisError, OSError, TimeoutError) as exc:
        if settings.fallback_model:
            metrics.FALLBACKS.inc()
            log.warning("redis unavailable: answering the fallback model", extra={"error": str(exc)})
            answer = RouteResponse(
                decision_id="",
                model=settings.fallback_model,
                propensity=1.0,
                pmf={settings.fallback_model: 1.0},
                policy="",
                policy_version=0,
                lam=0.0,
                fallback=True,
            )
        else:
            raise Unavailable(f"Redis unavailable: {type(exc).__name__}: {exc}") from exc
    return Response(answer.model_dump_json(), media_type="application/json")


async def _route(req: RouteRequest, store: Any, cache: Any, settings: Any) -> tuple[RouteResponse, Pending]:
    """Decide (shadow arms' decisions logged here); the served decision's log write is left to the caller."""
    experiment = arm = None
    shadows: list[tuple[str, str]] = []
    if req.experiment:
        exp = await store.experiment(req.experiment)
        if exp is None:
            raise NotFound(f"unknown experiment {req.experiment!r}")
        if exp["status"] != "running":
            raise Conflict(f"experiment {req.experiment!r} is stopped")
        arms = exp["definition"]["arms"]
        serving = [(a["name"], a["weight"]) for a in arms if not a["shadow"] and a["weight"] > 0]
        experiment = req.experiment
        arm = assign(experiment, serving, req.unit_id, _rng)
        pid = next(a["policy"] for a in arms if a["name"] == arm)
        shadows = [(a["name"], a["policy"]) for a in arms if a["shadow"]]
    else:
        pid = req.policy or settings.default_policy
        if not pid:
            raise Invalid("name a `policy` or an `experiment` (no default policy is configured)")
    rt = await cache.get(pid)
    pending, c, lam = await choose(cache, rt, req, experiment, arm)
    stage = first_stage(rt.policy, pending, c) if is_cascade(rt.policy) else None
    d = c.decision
    shadow_ids = []
    for s_arm, s_pid in shadows:
        # a shadow arm never fails the served request: its decision is logged whole or not at all (one script),
        # so a failure leaves nothing behind; it is logged and counted
        try:
            s_rt = await cache.get(s_pid)
            s_did, _, _ = await decide(store, settings, cache, s_rt, req, experiment, s_arm, shadow=True)
            shadow_ids.append(s_did)
        except Exception as exc:  # noqa: BLE001 - isolation is the point; the error is logged and counted
            metrics.SHADOW_FAILURES.labels(experiment=experiment or "", arm=s_arm).inc()
            message = exc.message if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
            log.warning("shadow arm failed", extra={"experiment": experiment, "arm": s_arm, "error": message})
    answer = RouteResponse(
        decision_id=pending.did,
        model=d.model,
        propensity=d.propensity,
        pmf=d.pmf_dict(),
        policy=rt.pid,
        policy_version=c.version,
        lam=lam,
        experiment=experiment,
        arm=arm,
        shadow_decisions=shadow_ids,
        cascade=stage,
    )
    return answer, pending
