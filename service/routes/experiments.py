"""A/B experiments: define arms over policies, report per arm, stop (the data stays)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from banditroute.service.deps import StoreDep, require
from banditroute.service.errors import Conflict, Invalid, NotFound, responses
from banditroute.service.experiments import arm_report, difference
from banditroute.service.schemas import ArmReport, Difference, ExperimentCreate, ExperimentReport

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])
Admin = [require("admin")]


def _diff(a: dict[str, Any], b: dict[str, Any]) -> Difference | None:
    d = difference(a, b)
    return Difference(**d) if d is not None else None


@router.post(
    "",
    response_model=ExperimentReport,
    status_code=201,
    dependencies=Admin,
    responses=responses(401, 403, 409, 422, 503),
)
async def create_experiment(body: ExperimentCreate, store: StoreDep) -> ExperimentReport:
    """Arms are policies with traffic weights; shadow arms decide and log on every request but never serve.
    Assignment is sticky per ``unit_id`` (a stable hash) and uniform per request without one."""
    for a in body.arms:
        if not await store.exists(a.policy):
            raise Invalid(f"arm {a.name!r}: unknown policy {a.policy!r}")
    definition = body.model_dump()
    definition["control"] = body.control or next(a.name for a in body.arms if not a.shadow)
    if not await store.create_experiment(body.id, definition):
        raise Conflict(f"experiment {body.id!r} exists")
    return await report(body.id, store)


@router.get("", dependencies=Admin, responses=responses(401, 403, 503))
async def list_experiments(store: StoreDep) -> list[dict[str, str]]:
    out = []
    for eid in await store.experiment_ids():
        exp = await store.experiment(eid)
        if exp is not None:
            out.append({"id": eid, "status": exp["status"]})
    return out


@router.get("/{eid}", response_model=ExperimentReport, dependencies=Admin, responses=responses(401, 403, 404, 503))
async def report(eid: str, store: StoreDep) -> ExperimentReport:
    """Per arm: decisions, feedback received, mean score and mean cost with 95% intervals, and the difference
    to the control arm with its (Welch) interval."""
    exp = await store.experiment(eid)
    if exp is None:
        raise NotFound(f"unknown experiment {eid!r}")
    d = exp["definition"]
    arms = []
    for a in d["arms"]:
        r = arm_report(await store.arm_stats(a["policy"], eid, a["name"]))
        arms.append({**a, **r})
    control = next(a for a in arms if a["name"] == d["control"])
    out = []
    for a in arms:
        row = ArmReport(
            n=a["decisions"],
            name=a["name"],
            policy=a["policy"],
            weight=a["weight"],
            shadow=a["shadow"],
            decisions=a["decisions"],
            feedback=a["feedback"],
            score=a["score"],
            cost_usd=a["cost_usd"],
            score_minus_control=_diff(a["score"], control["score"]) if a is not control else None,
            cost_minus_control=_diff(a["cost_usd"], control["cost_usd"]) if a is not control else None,
        )
        out.append(row)
    return ExperimentReport(id=eid, status=exp["status"], control=d["control"], arms=out)


@router.post(
    "/{eid}/stop", response_model=ExperimentReport, dependencies=Admin, responses=responses(401, 403, 404, 503)
)
async def stop(eid: str, store: StoreDep) -> ExperimentReport:
    """Stop routing through the experiment; its data and report stay."""
    if await store.experiment(eid) is None:
        raise NotFound(f"unknown experiment {eid!r}")
    await store.stop_experiment(eid)
    return await report(eid, store)


@router.delete(
    "/{eid}",
    response_model=ExperimentReport | None,
    dependencies=Admin,
    responses=responses(401, 403, 404, 503),
)
async def delete_experiment(eid: str, store: StoreDep, keep_results: bool = False) -> Response | ExperimentReport:
    """Stop the experiment and delete it with its statistics (204), or with ``keep_results=true`` only stop it
    and answer its final report (200); its policies stay either way."""
    if await store.experiment(eid) is None:
        raise NotFound(f"unknown experiment {eid!r}")
    if keep_results:
        await store.stop_experiment(eid)
        return await report(eid, store)
    await store.delete_experiment(eid)
    return Response(status_code=204)
