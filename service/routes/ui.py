"""The dashboard: ``GET /ui`` (a static page, assets from the installed package) and its JSON under ``/ui/api``.

The page holds no figures of its own: every number it shows is a field of one of these JSON answers, which call
the functions the other endpoints call (``GET /v1/policies/{id}``, ``GET /v1/experiments/{id}``,
``GET /v1/decisions/{id}``, the ``/metrics`` policy gauges) or :mod:`service.dashboard` for what no endpoint had.
The JSON needs a key with the ``read`` (or ``admin``) scope; the page asks for it and keeps it in the browser's
sessionStorage. Stopping an experiment goes through ``POST /v1/experiments/{id}/stop`` (admin).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from banditroute.service import dashboard
from banditroute.service.deps import CacheDep, SettingsDep, StoreDep, key_scopes
from banditroute.service.errors import Forbidden, NotFound, responses
from banditroute.service.keys import k_decision_log
from banditroute.service.routes.decisions import get_decision
from banditroute.service.routes.experiments import report
from banditroute.service.routes.ops import policy_row
from banditroute.service.routes.policies import get_policy
from banditroute.service.schemas import DECISION_PATTERN, DecisionInfo

READ_SCOPES = ("read", "admin")
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


async def read_access(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> list[str]:
    """Admit keys with the ``read`` or ``admin`` scope (same headers as :func:`service.deps.require`); answers
    the key's scopes (every scope with auth off)."""
    scopes = key_scopes(settings, authorization, x_api_key)
    if scopes is None:
        return ["read", "admin"]
    if not set(READ_SCOPES) & set(scopes):
        raise Forbidden("this API key lacks the 'read' scope")
    return list(scopes)


Reader = Annotated[list[str], Depends(read_access)]
pages = APIRouter(tags=["dashboard"], include_in_schema=False)
api = APIRouter(prefix="/ui/api", tags=["dashboard"])


@pages.get("/ui")
async def index() -> Response:
    return RedirectResponse("/ui/")


@pages.get("/ui/{name}")
async def asset(name: str) -> Response:
    """The page and its assets (no figures: those come from /ui/api with the key)."""
    name = name or "index.html"
    if name not in ASSETS:
        raise NotFound(f"no dashboard asset {name!r}")
    path = files("banditroute.service").joinpath("ui", name)
    return FileResponse(
        str(path),
        media_type=ASSETS[name],
        headers={
            "Cache-Control": "no-cache",
            # the page loads nothing from anywhere but this service
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'",
        },
    )


@pages.get("/ui/")
async def home() -> Response:
    return await asset("index.html")


@api.get("/whoami", responses=responses(401, 403))
async def whoami(scopes: Reader, settings: SettingsDep) -> dict[str, Any]:
    """The key's scopes, whether auth is on, and whether the gateway is configured."""
    return {"auth": bool(settings.api_keys), "scopes": scopes, "gateway": bool(settings.upstreams)}


@api.get("/overview", responses=responses(401, 403, 503))
async def overview(_: Reader, store: StoreDep, cache: CacheDep) -> dict[str, Any]:
    """Every policy (version, learner lag, dead letters, snapshot age, requests and feedback per second, mean
    reward and cost over the last hour) and every experiment (status, arms)."""
    now, since = dashboard.since_window()
    policies: list[dict[str, Any]] = []
    for pid in await store.policy_ids():
        try:
            info = await get_policy(pid, store, cache)
        except NotFound:
            continue
        rows = await dashboard.recent(store, pid, since)
        policies.append(
            {
                "id": pid,
                "policy": info.policy,
                "models": len(info.models),
                "version": info.version,
                "generation": info.generation,
                "ops": await policy_row(store, pid),
                **await dashboard.rates(store, pid, now),
                "last_hour": dashboard.outcome(rows),
            }
        )
    experiments = []
    for eid in await store.experiment_ids():
        exp = await store.experiment(eid)
        if exp is not None:
            d = exp["definition"]
            experiments.append(
                {
                    "id": eid,
                    "status": exp["status"],
                    "control": d["control"],
                    "arms": [a["name"] for a in d["arms"]],
                    "created_at": exp["created_at"],
                }
            )
    totals = {
        "requests_per_s": sum(p["requests_per_s"] for p in policies),
        "feedback_per_s": sum(p["feedback_per_s"] for p in policies),
        "dead_letters": sum(int(p["ops"]["dead"]) for p in policies),
    }
    return {
        "time": now,
        "window_s": dashboard.WINDOW_S,
        "totals": totals,
        "policies": policies,
        "experiments": experiments,
    }


@api.get("/policies/{pid}", responses=responses(401, 403, 404, 503))
async def policy_page(pid: str, _: Reader, store: StoreDep, cache: CacheDep) -> dict[str, Any]:
    """``GET /v1/policies/{id}``'s answer, the /metrics gauges of the policy, and its last hour per model."""
    info = await get_policy(pid, store, cache)
    now, since = dashboard.since_window()
    rows = await dashboard.recent(store, pid, since)
    target = (info.budget or {}).get("target_cost_usd")
    return {
        "info": info.model_dump(),
        "ops": await policy_row(store, pid),
        "lam": {"paced": info.budget is not None, "value": info.pacer_lam, "target_cost_usd": target},
        "window": dashboard.policy_window(rows, info.models, now),
    }


@api.get("/experiments/{eid}", responses=responses(401, 403, 404, 503))
async def experiment_page(eid: str, _: Reader, store: StoreDep) -> dict[str, Any]:
    """``GET /v1/experiments/{id}``'s report, and per arm the same over time (cumulative)."""
    rep = await report(eid, store)
    now, since = dashboard.since_window()
    arms: dict[str, list[dashboard.Row]] = {}
    for a in rep.arms:
        rows = await dashboard.recent(store, a.policy, since)
        arms[a.name] = [r for r in rows if r.experiment == eid and r.arm == a.name]
    return {"report": rep.model_dump(), "series": dashboard.experiment_series(arms, rep.control, now)}


@api.get("/decisions", responses=responses(401, 403, 404, 503))
async def recent_decisions(
    _: Reader,
    store: StoreDep,
    policy: Annotated[str | None, Query(description="Only this policy (default: every policy).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DecisionInfo]:
    """The newest decisions (of one policy or all), each as ``GET /v1/decisions/{id}`` answers it."""
    pids = [policy] if policy else await store.policy_ids()
    if policy and not await store.exists(policy):
        raise NotFound(f"unknown policy {policy!r}")
    found: list[tuple[bytes, str]] = []
    for pid in pids:
        for eid, f in await store.r.xrevrange(k_decision_log(pid), count=limit):
            found.append((eid, f[b"did"].decode()))
    found.sort(key=lambda t: tuple(int(p) for p in t[0].decode().split("-")), reverse=True)
    out = []
    for _eid, did in found[:limit]:
        try:
            out.append(await get_decision(did, store=store))
        except NotFound:  # expired meanwhile
            continue
    return out


@api.get("/decisions/{decision_id}", response_model=DecisionInfo, responses=responses(401, 403, 404, 422, 503))
async def one_decision(
    _: Reader, store: StoreDep, decision_id: Annotated[str, Path(pattern=DECISION_PATTERN)]
) -> DecisionInfo:
    return await get_decision(decision_id, store=store)


@api.get("/gateway", responses=responses(401, 403, 503))
async def gateway(_: Reader, request: Request, store: StoreDep) -> dict[str, Any]:
    """Each configured upstream's calls, errors, circuit state and latency percentiles over the last hour."""
    gw = getattr(request.app.state, "gateway", None)
    if gw is None:
        return {"configured": False, "upstreams": []}
    _now, since = dashboard.since_window()
    rows = [r for pid in await store.policy_ids() for r in await dashboard.recent(store, pid, since)]
    breakers = {m: b.state for m, b in gw.breakers.items()}
    return {
        "configured": True,
        "window_s": dashboard.WINDOW_S,
        "upstreams": dashboard.upstream_stats(rows, list(gw.config.models), breakers),
    }


routers = (api, pages)
