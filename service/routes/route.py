"""POST /v1/route: choose a model for a query, log the decision."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter
from redis.exceptions import RedisError

from banditroute.service import metrics
from banditroute.service.deps import CacheDep, SettingsDep, StoreDep, require
from banditroute.service.errors import Conflict, Invalid, NotFound, ServiceError, TooLarge, Unavailable, responses
from banditroute.service.experiments import assign
from banditroute.service.runtime import Runtime
from banditroute.service.schemas import RouteRequest, RouteResponse
from banditroute.service.store import encode_x

router = APIRouter(tags=["routing"])
log = logging.getLogger("banditroute.route")
_rng = np.random.default_rng()


def context(req: RouteRequest, rt: Runtime) -> np.ndarray:
    """The request's feature vector for this policy: given, or made by the policy's featurizer."""
    dim = rt.policy.dim
    if req.features is not None:
        if len(req.features) != dim:
            raise Invalid(f"features has length {len(req.features)}; policy {rt.pid!r} takes dim={dim}")
        return np.asarray(req.features, dtype=np.float64)
    if rt.featurizer is None:
        raise Invalid(f"policy {rt.pid!r} has no featurizer: send `features` (dim={dim}) instead of `query`")
    x: np.ndarray = rt.featurizer.transform([req.query or ""])[0]
    return x


async def decide(
    store: Any,
    settings: Any,
    rt: Runtime,
    req: RouteRequest,
    experiment: str | None,
    arm: str | None,
    shadow: bool = False,
) -> tuple[str, Any, float]:
    """Decide with ``rt`` and log the decision; returns (decision id, Decision, lambda)."""
    policy = rt.policy
    x = context(req, rt)
    lam = req.lam if req.lam is not None else rt.lam()
    candidates = req.candidates
    if req.max_cost_usd is not None:
        candidates = policy.within_cost(x, req.max_cost_usd, candidates)
    q_est, c_est = policy.estimates(x[None])
    did = f"{rt.pid}.{uuid.uuid4().hex}"
    # each decision draws from its own generator, seeded by its id: reproducible, and no shared state to write
    policy.rng = np.random.default_rng(int(did[-32:-16], 16))
    d = policy.select(x, candidates=candidates, lam=lam)
    fields = {
        "did": did,
        "x": encode_x(x),
        "model": d.model,
        "propensity": repr(d.propensity),
        "pmf": json.dumps(d.pmf_dict(), separators=(",", ":")),
        # "" = every model of the policy (most requests): 32 model names less per logged decision
        "candidates": json.dumps(candidates, separators=(",", ":")) if candidates else "",
        "lam": repr(float(lam)),
        "version": rt.version,
        "gen": rt.gen,
        "time": repr(time.time()),
        "cost_estimate": repr(float(c_est[0, d.index])),
        "quality_estimate": repr(float(q_est[0, d.index])),
        "experiment": experiment or "",
        "arm": arm or "",
        "unit": req.unit_id or "",
        "shadow": "1" if shadow else "0",
    }
    await store.log_decision(rt.pid, did, fields, settings.decision_ttl_seconds, experiment, arm)
    metrics.DECISIONS.labels(policy=rt.pid, model=d.model).inc()
    return did, d, float(lam)


@router.post(
    "/v1/route",
    response_model=RouteResponse,
    dependencies=[require("route")],
    responses=responses(401, 403, 404, 409, 413, 422, 503),
    summary="Choose a model for a query",
)
async def route(req: RouteRequest, store: StoreDep, cache: CacheDep, settings: SettingsDep) -> RouteResponse:
    if req.query is not None and len(req.query) > settings.max_query_chars:
        raise TooLarge(f"query has {len(req.query)} characters; the limit is {settings.max_query_chars}")
    try:
        return await _route(req, store, cache, settings)
    except (RedisError, OSError, TimeoutError) as exc:
        if settings.fallback_model:
            metrics.FALLBACKS.inc()
            log.warning("redis unavailable: answering the fallback model", extra={"error": str(exc)})
            return RouteResponse(
                decision_id="",
                model=settings.fallback_model,
                propensity=1.0,
                pmf={settings.fallback_model: 1.0},
                policy="",
                policy_version=0,
                lam=0.0,
                fallback=True,
            )
        raise Unavailable(f"Redis unavailable: {type(exc).__name__}: {exc}") from exc


async def _route(req: RouteRequest, store: Any, cache: Any, settings: Any) -> RouteResponse:
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
    did, d, lam = await decide(store, settings, rt, req, experiment, arm)
    shadow_ids = []
    for s_arm, s_pid in shadows:
        # a shadow arm never fails the served request: its decision is logged whole or not at all (one script),
        # so a failure leaves nothing behind; it is logged and counted
        try:
            s_rt = await cache.get(s_pid)
            s_did, _, _ = await decide(store, settings, s_rt, req, experiment, s_arm, shadow=True)
            shadow_ids.append(s_did)
        except Exception as exc:  # noqa: BLE001 - isolation is the point; the error is logged and counted
            metrics.SHADOW_FAILURES.labels(experiment=experiment or "", arm=s_arm).inc()
            message = exc.message if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
            log.warning("shadow arm failed", extra={"experiment": experiment, "arm": s_arm, "error": message})
    return RouteResponse(
        decision_id=did,
        model=d.model,
        propensity=d.propensity,
        pmf=d.pmf_dict(),
        policy=rt.pid,
        policy_version=rt.version,
        lam=lam,
        experiment=experiment,
        arm=arm,
        shadow_decisions=shadow_ids,
    )
