"""GET /v1/models: what an OpenAI client may name as ``model``: the configured upstream models (pass-through),
``router/<policy-id>`` for every policy whose models are all configured, and ``experiment/<id>`` for every
running experiment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from banditroute.service.errors import NotFound, ServiceError, responses
from banditroute.service.routes.chat import RouteScope, gateway_of

router = APIRouter(tags=["gateway"])


def _entry(mid: str, owner: str) -> dict[str, Any]:
    return {"id": mid, "object": "model", "created": 0, "owned_by": owner}


@router.get(
    "/v1/models",
    dependencies=[RouteScope],
    responses=responses(401, 403, 404, 503),
    summary="Models, routers and experiments an OpenAI client can name",
)
async def list_models(request: Request) -> dict[str, Any]:
    store, cache = request.app.state.store, request.app.state.cache
    gw = gateway_of(request)
    data = [_entry(name, "upstream") for name in gw.config.models]
    for pid in sorted(await store.policy_ids()):
        try:
            rt = await cache.get(pid)
        except (NotFound, ServiceError):
            continue  # removed meanwhile
        if all(m in gw.config.models for m in rt.policy.models):
            data.append(_entry(f"router/{pid}", "banditroute"))
    for eid in sorted(await store.experiment_ids()):
        exp = await store.experiment(eid)
        if exp is not None and exp.get("status") == "running":
            data.append(_entry(f"experiment/{eid}", "banditroute"))
    return {"object": "list", "data": data}
