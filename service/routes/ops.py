"""Operations: liveness, readiness, Prometheus metrics, and the load benchmark's baseline endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from banditroute.service import metrics
from banditroute.service.deps import CacheDep, StoreDep, require
from banditroute.service.errors import ServiceError, error_body, responses

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
async def prometheus() -> Response:
    data, content_type = metrics.render()
    return Response(data, media_type=content_type)


@router.get(
    "/v1/baseline",
    dependencies=[require("route")],
    responses=responses(401, 403, 503),
    summary="One Redis GET and nothing else (the load benchmark's yardstick)",
)
async def baseline(store: StoreDep) -> dict[str, bool]:
    await store.get_baseline()
    return {"ok": True}
