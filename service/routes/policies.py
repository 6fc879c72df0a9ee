"""Policies: list, create (optionally warm-started), inspect, export, import (artifacts and ONNX agents), and
add or remove models of a live policy."""

from __future__ import annotations

import base64
import binascii
import io
import json
import zipfile
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from banditroute.bandit import Policy, import_artifact, make_policy, policy_from_state, to_bytes
from banditroute.bandit.onnx_static import NAME as ONNX_STATIC
from banditroute.env.features import Featurizer, FeaturizerError
from banditroute.service.deps import CacheDep, SettingsDep, StoreDep, require
from banditroute.service.errors import Conflict, Invalid, NotFound, TooLarge, responses
from banditroute.service.runtime import PolicyCache, policy_meta
from banditroute.service.schemas import ID_PATTERN, DeadLetter, FeedbackCounts, ModelAdd, PolicyCreate, PolicyInfo
from banditroute.service.store import Store

router = APIRouter(prefix="/v1/policies", tags=["policies"])
Admin = [require("admin")]
IdQuery = Annotated[str, Query(pattern=ID_PATTERN, description="Id of the policy to create.")]


async def _save(
    store: Store,
    pid: str,
    policy: Policy,
    fz: tuple[dict[str, Any], dict[str, Any]] | None,
    budget: dict[str, Any] | None = None,
    replace: bool = False,
) -> None:
    meta = policy_meta(policy, fz, budget)
    if not await store.create_policy(pid, meta, policy.state_dict(), fz, replace=replace):
        raise Conflict(f"policy {pid!r} exists (import with replace=true to overwrite)")


async def _info(store: Store, cache: PolicyCache, pid: str) -> PolicyInfo:
    rt = await cache.get(pid, fresh=True, keep=False)  # NotFound -> 404
    c = await store.counters(pid)
    accepted, applied, skipped, dead = c["accepted"], c["applied"], c["skipped"], c["dead"]
    meta = rt.meta
    return PolicyInfo(
        id=pid,
        policy=meta["name"],
        models=list(rt.policy.models),
        dim=int(meta["dim"]),
        version=rt.version,
        generation=int(rt.gen or 0),
        n_updates=rt.policy.n_updates,
        hyperparameters=json.loads(meta.get("hyperparameters", "{}")),
        has_featurizer=bool(meta.get("featurizer_sha")),
        budget=json.loads(meta["budget"]) if meta.get("budget") else None,
        pacer_lam=rt.pacer_lam,
        feedback=FeedbackCounts(
            accepted=accepted, applied=applied, skipped=skipped, pending=accepted - applied - skipped - dead
        ),
        dead_letters=dead,
    )


async def _body(request: Request, limit: int) -> bytes:
    body = await request.body()
    if len(body) > limit:
        raise TooLarge(f"body has {len(body)} bytes; the limit is {limit}")
    if not body:
        raise Invalid("empty body: send the artifact as the request body (application/zip)")
    return body


@router.get("", response_model=list[PolicyInfo], dependencies=Admin, responses=responses(401, 403, 503))
async def list_policies(store: StoreDep, cache: CacheDep) -> list[PolicyInfo]:
    """Every policy with its version, update count and feedback counts."""
    out = []
    for pid in await store.policy_ids():
        try:
            out.append(await _info(store, cache, pid))
        except NotFound:
            continue
    return out


@router.post(
    "",
    response_model=PolicyInfo,
    status_code=201,
    dependencies=Admin,
    responses=responses(401, 403, 404, 409, 413, 422, 503),
)
async def create_policy(body: PolicyCreate, store: StoreDep, cache: CacheDep) -> PolicyInfo:
    """Create a policy from a registry name, hyperparameters and models; optionally warm-started from an exported
    artifact (its learned arrays and featurizer; models it lacks start cold, models not asked for are dropped)."""
    fz = None
    warm: Policy | None = None
    if body.artifact_b64 is not None:
        try:
            raw = base64.b64decode(body.artifact_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Invalid(f"artifact_b64 is not base64: {exc}") from exc
        art = import_artifact(raw)  # ArtifactError -> 422
        if art.policy.name != body.policy:
            raise Invalid(f"artifact holds a {art.policy.name!r} policy, not {body.policy!r}")
        warm, fz = art.policy, art.featurizer_state
    if body.featurizer_from is not None:
        if fz is not None:
            raise Invalid("give artifact_b64 or featurizer_from, not both")
        fz = await store.load_featurizer(body.featurizer_from)
        if fz is None:
            raise Invalid(f"policy {body.featurizer_from!r} does not exist or has no featurizer")
    dim = body.dim or (featurizer_dim(fz) if fz else (warm.dim if warm else None))
    if dim is None:
        raise Invalid("give `dim`, a featurizer (featurizer_from) or an artifact")
    models = body.models or (list(warm.models) if warm else None)
    if not models:
        raise Invalid("give `models` (or an artifact that has them)")
    policy = make_policy(body.policy, models, dim, **body.hyperparameters)  # bad hyperparameters -> 422
    if warm is not None:
        if warm.dim != dim:
            raise Invalid(f"artifact dim {warm.dim} differs from dim {dim}")
        policy.warm_start(warm)  # models the artifact lacks start cold, models not asked for are dropped
    await _save(store, body.id, policy, fz, budget=body.budget.model_dump() if body.budget else None)
    return await _info(store, cache, body.id)


@router.get("/{pid}", response_model=PolicyInfo, dependencies=Admin, responses=responses(401, 403, 404, 503))
async def get_policy(pid: str, store: StoreDep, cache: CacheDep) -> PolicyInfo:
    return await _info(store, cache, pid)


@router.get(
    "/{pid}/export",
    dependencies=Admin,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The versioned artifact (zip)"},
        **responses(401, 403, 404, 422, 503),
    },
)
async def export_policy(pid: str, store: StoreDep, cache: CacheDep) -> Response:
    """The policy's versioned artifact (manifest.json + arrays.npz + SHA256SUMS, zipped), featurizer included:
    its state now (snapshot + every accepted event)."""
    rt = await cache.get(pid, fresh=True, keep=False)
    async with rt.lock:  # no log entry is applied while the arrays are copied
        fz = await store.load_featurizer(pid)
        data = to_bytes(rt.policy, fz)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{pid}-v{rt.version}.zip"'},
    )


@router.post(
    "/import",
    response_model=PolicyInfo,
    status_code=201,
    dependencies=Admin,
    responses=responses(401, 403, 409, 413, 422, 503),
    openapi_extra={"requestBody": {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def import_policy(
    request: Request, id: IdQuery, store: StoreDep, cache: CacheDep, settings: SettingsDep, replace: bool = False
) -> PolicyInfo:
    """Import an exported artifact (the zip as the body). It is verified whole first: a tampered or incompatible
    artifact answers 422 and changes nothing."""
    raw = await _body(request, settings.max_artifact_bytes)
    art = import_artifact(raw)
    await _save(store, id, art.policy, art.featurizer_state, replace=replace)
    cache.forget(id)  # a replace starts a new generation
    return await _info(store, cache, id)


@router.post(
    "/import-onnx",
    response_model=PolicyInfo,
    status_code=201,
    dependencies=Admin,
    responses=responses(401, 403, 409, 413, 422, 503),
    openapi_extra={"requestBody": {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def import_onnx(
    request: Request,
    id: IdQuery,
    store: StoreDep,
    cache: CacheDep,
    settings: SettingsDep,
    explore_floor: Annotated[float, Query(ge=0, lt=1)] = 0.01,
) -> PolicyInfo:
    """Import an SB3 agent exported by ``banditroute train-rl`` as a static policy: a zip of its ``policy.onnx``,
    ``featurizer.json``, ``featurizer.npz`` and ``metrics.json``."""
    raw = await _body(request, settings.max_artifact_bytes)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            names = set(z.namelist())
            need = {"policy.onnx", "featurizer.json", "featurizer.npz", "metrics.json"}
            if not need <= names:
                raise Invalid(f"the zip must hold {sorted(need)}, it holds {sorted(names)}")
            if sum(i.file_size for i in z.infolist()) > settings.max_artifact_bytes:
                raise TooLarge("the zip unpacks to more than the artifact limit")
            onnx = z.read("policy.onnx")
            spec = json.loads(z.read("featurizer.json"))
            import numpy as np

            with np.load(io.BytesIO(z.read("featurizer.npz")), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(z.read("metrics.json"))
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, ValueError, OSError) as exc:
        if isinstance(exc, Invalid | TooLarge):
            raise
        raise Invalid(f"not a train-rl export: {exc}") from exc
    if meta.get("env") != "routing":
        raise Invalid("only agents of the routing env can route single queries")
    models = meta.get("models")
    if not isinstance(models, list) or len(models) < 2:
        raise Invalid("metrics.json lacks the agent's models")
    fz = (spec, arrays)
    policy = make_policy(ONNX_STATIC, models, featurizer_dim(fz), onnx_model=onnx, explore_floor=explore_floor)
    await _save(store, id, policy, fz)
    return await _info(store, cache, id)


async def _change(store: Store, cache: PolicyCache, pid: str, op: str, model: str) -> None:
    """Check an admin change against the policy now (422 if it cannot apply), then append it to the log: the
    learner and every worker apply it at the same place among the feedback events."""
    rt = await cache.get(pid, fresh=True, keep=False)
    async with rt.lock:  # a copy to try the change on: the live policy changes only through the log
        meta = rt.meta
        trial = policy_from_state(
            meta["name"], rt.policy.models, rt.policy.dim, json.loads(meta["hyperparameters"]), rt.policy.state_dict()
        )
    if op == "add_model":
        trial.add_model(model)  # BanditError -> 422
    else:
        trial.remove_model(model)
    if await store.append_op(pid, rt.gen, op, model) is None:
        raise Conflict(f"policy {pid!r} was replaced or deleted meanwhile; try again")


@router.post(
    "/{pid}/models", response_model=PolicyInfo, dependencies=Admin, responses=responses(401, 403, 404, 422, 503)
)
async def add_model(pid: str, body: ModelAdd, store: StoreDep, cache: CacheDep) -> PolicyInfo:
    """Add a model to a live policy; it starts from the policy's prior (cold start)."""
    await _change(store, cache, pid, "add_model", body.model)
    return await _info(store, cache, pid)


@router.delete(
    "/{pid}/models/{model:path}",
    response_model=PolicyInfo,
    dependencies=Admin,
    responses=responses(401, 403, 404, 422, 503),
)
async def remove_model(pid: str, model: str, store: StoreDep, cache: CacheDep) -> PolicyInfo:
    """Stop routing to a model (pending feedback on it is skipped and counted)."""
    await _change(store, cache, pid, "remove_model", model)
    return await _info(store, cache, pid)


@router.delete("/{pid}", status_code=204, dependencies=Admin, responses=responses(401, 403, 404, 409, 503))
async def delete_policy(pid: str, store: StoreDep, cache: CacheDep) -> Response:
    """Delete a policy with its state, log, decisions and idempotency marks. Refused (409) while a running
    experiment routes through it; feedback on its decisions then answers 404."""
    if not await store.exists(pid):
        raise NotFound(f"unknown policy {pid!r}")
    for eid in await store.experiment_ids():
        exp = await store.experiment(eid)
        if exp and exp["status"] == "running" and any(a["policy"] == pid for a in exp["definition"]["arms"]):
            raise Conflict(f"policy {pid!r} is an arm of running experiment {eid!r}: stop or delete it first")
    await store.delete_policy(pid)
    cache.forget(pid)
    return Response(status_code=204)


@router.get(
    "/{pid}/dead-letters",
    response_model=list[DeadLetter],
    dependencies=Admin,
    responses=responses(401, 403, 404, 503),
)
async def dead_letters(
    pid: str, store: StoreDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[DeadLetter]:
    """Log events whose update raised (newest first): kept out of the state, counted, never retried."""
    if not await store.exists(pid):
        raise NotFound(f"unknown policy {pid!r}")
    return [DeadLetter(**d) for d in await store.dead_letters(pid, limit)]


def featurizer_dim(featurizer: tuple[dict[str, Any], dict[str, Any]]) -> int:
    """The width of the vectors a stored featurizer computes (refused with a 422 when it is malformed)."""
    try:
        return Featurizer.from_state(*featurizer).dim
    except FeaturizerError as exc:
        raise Invalid(f"featurizer: {exc}") from exc
