"""``banditroute policy export|import``: move a policy's versioned artifact between a running service (``--url``),
its Redis (``--redis-url``) and a file. Imports only the core: no torch, SB3 or onnx."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from banditroute.cli.common import KeyOpt, RedisOpt, UrlOpt, check_response, http_client, redis_store
from banditroute.cli.errors import UserError, redact

policy_app = typer.Typer(no_args_is_help=True, help="Export and import policies of a running service or a Redis.")
ARTIFACT_FILES = ("manifest.json", "arrays.npz", "SHA256SUMS")
ONNX_FILES = ("policy.onnx", "featurizer.json", "featurizer.npz", "metrics.json")


@policy_app.command("export")
def export(
    policy_id: Annotated[str, typer.Argument(help="Policy id.")],
    out: Annotated[Path, typer.Option("--out", help="Artifact to write (.zip, or a directory).")],
    url: UrlOpt = None,
    redis_url: RedisOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Write a policy's versioned artifact (featurizer included)."""
    if url:
        with http_client(url, api_key) as c:
            r = c.get(f"/v1/policies/{policy_id}/export")
            check_response(r)
            data = r.content
    elif redis_url:
        data = _read_from_redis(redis_url, policy_id)
    else:
        raise _no_target()
    if out.suffix == ".zip":
        out.write_bytes(data)
    else:
        import io
        import zipfile

        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in ARTIFACT_FILES:
                (out / name).write_bytes(z.read(name))
    typer.echo(f"wrote {out} ({len(data)} bytes)")


def _no_target() -> UserError:
    return UserError("no service or Redis given", "pass --url (a running service) or --redis-url")


def _read_from_redis(redis_url: str, policy_id: str) -> bytes:
    import asyncio

    from banditroute.bandit import to_bytes
    from banditroute.service.runtime import build_policy

    async def read() -> bytes:
        with redis_store(redis_url) as store:
            try:
                stored = await store.load_policy(policy_id)
                if stored is None:
                    raise UserError(
                        f"unknown policy {policy_id!r} in the Redis at {redact(redis_url)}",
                        "check the id, or --redis-url",
                    )
                return to_bytes(build_policy(stored), await store.load_featurizer(policy_id))
            finally:
                await store.r.aclose()

    return asyncio.run(read())


@policy_app.command("import")
def import_(
    artifact: Annotated[Path, typer.Argument(help="Artifact (.zip or directory) from export.")],
    policy_id: Annotated[str, typer.Option("--id", help="Id of the policy to create.")],
    url: UrlOpt = None,
    redis_url: RedisOpt = None,
    api_key: KeyOpt = None,
    replace: Annotated[bool, typer.Option(help="Overwrite an existing policy of that id.")] = False,
    onnx: Annotated[
        bool, typer.Option(help="ARTIFACT is a train-rl output directory: import it as a static ONNX policy.")
    ] = False,
) -> None:
    """Import an artifact (verified first) or a train-rl ONNX agent into a running service or a Redis."""
    if onnx:
        _import_onnx(artifact, policy_id, url, api_key)
        return
    from banditroute.bandit import import_artifact, to_bytes

    art = import_artifact(artifact)  # verify locally before sending anything
    if url:
        with http_client(url, api_key) as c:
            r = c.post(
                "/v1/policies/import",
                params={"id": policy_id, "replace": replace},
                content=to_bytes(art.policy, art.featurizer_state),
                headers={"Content-Type": "application/zip"},
            )
            check_response(r)
    elif redis_url:
        import asyncio

        from banditroute.service.runtime import policy_meta

        async def write() -> bool:
            with redis_store(redis_url) as store:
                try:
                    meta = policy_meta(art.policy, art.featurizer_state)
                    return await store.create_policy(
                        policy_id, meta, art.policy.state_dict(), art.featurizer_state, replace=replace
                    )
                finally:
                    await store.r.aclose()

        if not asyncio.run(write()):
            raise UserError(f"policy {policy_id!r} exists", "use --replace to overwrite it, or another --id")
    else:
        raise _no_target()
    typer.echo(f"imported {artifact} as policy {policy_id!r}")


def _import_onnx(directory: Path, policy_id: str, url: str | None, api_key: str | None) -> None:
    """Send a train-rl output directory to the service, which runs the agent with onnxruntime (its [onnx] extra)."""
    import io
    import zipfile

    if not url:
        raise UserError("--onnx imports through a running service", "give --url")
    missing = [name for name in ONNX_FILES if not (directory / name).is_file()]
    if missing:
        raise UserError(
            f"{directory} is not a train-rl output directory (missing {', '.join(missing)})",
            "pass the --out directory of banditroute train-rl",
        )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in ONNX_FILES:
            z.write(directory / name, name)
    with http_client(url, api_key) as c:
        r = c.post(
            "/v1/policies/import-onnx",
            params={"id": policy_id},
            content=buf.getvalue(),
            headers={"Content-Type": "application/zip"},
        )
        check_response(r)
    typer.echo(f"imported ONNX agent as static policy {policy_id!r}")
