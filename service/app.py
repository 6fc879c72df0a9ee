"""The FastAPI application: ``create_app(settings)``. No side effects at import; Redis (embedded or configured)
and the learner are opened in the lifespan and closed with it.

Run with several workers: ``banditroute serve --workers N`` (or ``uvicorn --factory service.app:create_app``
with ``BANDITROUTE_REDIS_URL`` pointing at a shared Redis).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from banditroute.service import errors
from banditroute.service.config import Settings, get_settings
from banditroute.service.embedded import EmbeddedRedis
from banditroute.service.learner import Learner
from banditroute.service.logs import configure
from banditroute.service.middleware import ServiceMiddleware
from banditroute.service.route_fast import RouteFastPath
from banditroute.service.routes import (
    cascade,
    chat,
    decisions,
    docs,
    experiments,
    feedback,
    models,
    ops,
    policies,
    route,
)
from banditroute.service.routes import ui as ui_routes
from banditroute.service.runtime import PolicyCache
from banditroute.service.store import Store

#: FastAPI's native OpenTelemetry switched off (``BANDITROUTE_OTEL=false``, the default): even with no provider
#: configured it looks the providers up and wraps each request, 10% of /v1/route's throughput (benchmarks/throughput.py)
TELEMETRY_OFF: Any = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def make_client(url: str, settings: Settings) -> aioredis.Redis:
    """An asyncio Redis client whose every call fails within the configured deadline (no silent retry loops)."""
    common: dict[str, Any] = {
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 10,
    }
    if settings.redis_cluster:
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(
            url, socket_timeout=settings.redis_timeout_seconds, socket_connect_timeout=settings.redis_timeout_seconds
        )  # type: ignore[return-value]
    return aioredis.Redis.from_url(url, **common)


async def open_gateway(settings: Settings, store: Store) -> Any:
    if not settings.upstreams:
        return None
    from banditroute.service.gateway.config import load_config
    from banditroute.service.gateway.runtime import Gateway

    return await Gateway.open(load_config(settings.upstreams), store, settings)


def preload() -> None:
    """Import what a worker's first featurized request would otherwise import: scikit-learn's text module (the
    hashed TF-IDF featurizers'), one to several seconds on a busy machine, during which the worker answers
    nothing. Done before the worker accepts connections."""
    import sklearn.feature_extraction.text  # noqa: F401


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        preload()
        embedded = None
        url = settings.redis_url
        if not url:
            embedded = EmbeddedRedis(settings.embedded_dir).start()
            url = embedded.url
        client = make_client(url, settings)
        store = Store(client)
        app.state.store = store
        app.state.cache = PolicyCache(store, settings.state_staleness_ms)
        app.state.redis_url = url
        learner = (
            Learner(
                store,
                settings.learner_batch,
                snapshot_events=settings.snapshot_every_events,
                snapshot_seconds=settings.snapshot_every_seconds,
            )
            if settings.learner
            else None
        )
        app.state.learner = learner
        if learner:
            learner.start()
        app.state.gateway = await open_gateway(settings, store)
        # everything made so far (modules, the app, clients) lives as long as the worker: out of the collector's
        # reach, a full collection no longer walks it (before: a pause of tens of ms, the route's p99 doubled)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            if app.state.gateway is not None:
                await app.state.gateway.close()
            if learner:
                await learner.stop()
            await client.aclose()
            if embedded is not None:
                embedded.stop()

    try:
        app_version = version("banditroute")
    except PackageNotFoundError:  # pragma: no cover
        app_version = "0"
    app = FastAPI(
        title="banditroute",
        version=app_version,
        summary="An LLM router that learns: contextual-bandit routing with feedback, state in Redis.",
        lifespan=lifespan,
        # served from the package by routes/docs.py, not from a CDN
        docs_url=None,
        redoc_url=None,
        telemetry=None if settings.otel else TELEMETRY_OFF,  # None: FastAPI's defaults (on)
    )
    app.state.settings = settings
    errors.install(app)
    for r in (
        route.router,
        cascade.router,
        feedback.router,
        policies.router,
        experiments.router,
        ops.router,
        chat.router,
        models.router,
        decisions.router,
        *ui_routes.routers,
    ):
        app.include_router(r)
    docs.install(app)
    app.add_middleware(RouteFastPath)  # added first: inside ServiceMiddleware (body limits, metrics, access log)
    app.add_middleware(ServiceMiddleware, settings=settings)
    return app
