"""Operations: liveness, readiness, Prometheus metrics, and the load benchmark's baseline endpoint."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from banditroute.service import metrics
from banditroute.service.deps import CacheDep, StoreDep, require
from banditroute.service.errors import ServiceError, error_body, responses
from banditroute.service.eventlog import id_key
from banditroute.service.keys import k_feedback
from banditroute.service.store import Store

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Redis is reachable and every policy loads", responses=responses(503))
async def readyz(store: StoreDep, cache: CacheDep) -> JSONResponse:
    try:
        await store.ping()
        pids = await store.policy_ids()
        for pid in pids:
            await cache.get(pid)
    except (RedisError, OSError, TimeoutError) as exc:
        return JSONResponse(error_body("unavailable", f"Redis unreachable: {exc}"), status_code=503)
    except ServiceError as exc:
        return JSONResponse(error_body("unavailable", f"a policy does not load: {exc.message}"), status_code=503)
    return JSONResponse({"status": "ready", "policies": len(pids)})


@router.get("/metrics", include_in_schema=False)
async def prometheus(store: StoreDep) -> Response:
    """This process's (or, with several workers, every worker's) counters, and per-policy gauges read from
    Redis: learner lag in events and seconds, dead letters, snapshot age."""
    data, content_type = metrics.render()
    try:
        rows = [await policy_row(store, pid) for pid in await store.policy_ids()]
        data += metrics.render_policies(rows)
    except (RedisError, OSError, TimeoutError):
        pass  # the process counters still answer; /readyz reports Redis
    return Response(data, media_type=content_type)


async def policy_row(store: Store, pid: str) -> dict[str, float | str]:
    now = time.time()
    c = await store.counters(pid)
    lag = c["accepted"] - c["applied"] - c["skipped"] - c["dead"]
    lag_seconds = 0.0
    if lag > 0:
        oldest = await store.r.xrange(k_feedback(pid), min="(" + await store.applied_id(pid), count=1)
        if oldest:
            lag_seconds = max(now - id_key(oldest[0][0].decode())[0] / 1000.0, 0.0)
    snap = await store.snapshot_info(pid)
    return {
        "policy": pid,
        "lag_events": lag,
        "lag_seconds": lag_seconds,
        "dead": c["dead"],
        "snapshot_age": max(now - float(snap.get("at", now)), 0.0),
        "accepted": c["accepted"],
        "applied": c["applied"],
    }


@router.get(
    "/v1/baseline",
    dependencies=[require("route")],
    responses=responses(401, 403, 503),
    summary="One Redis GET and nothing else (the load benchmark's yardstick)",
)
async def baseline(store: StoreDep) -> dict[str, bool]:
    await store.get_baseline()
    return {"ok": True}
