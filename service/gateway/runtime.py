"""The ``Gateway`` the app opens in its lifespan: the validated config, one pooled ``aiohttp.ClientSession`` for every
upstream, a circuit breaker per upstream, the judge queue, and the background tasks that settle each call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import aiohttp

from banditroute.service.gateway.breaker import Breaker
from banditroute.service.gateway.config import GatewayConfig

log = logging.getLogger("banditroute.gateway")


class Gateway:
    """Per-worker gateway state (the breakers too: each worker learns an upstream is down from its own calls)."""

    def __init__(self, config: GatewayConfig, client: aiohttp.ClientSession) -> None:
        self.config = config
        self.client = client
        self.breakers = {name: Breaker(config.breaker_failures, config.breaker_reset_s) for name in config.models}
        self.judge: Any = None  # a judge.Judge when [evaluator] is configured (started by open())
        self._tasks: set[asyncio.Task[Any]] = set()
        self.settle_script: Any = None  # record.SETTLE_SCRIPT registered on the store's client

    @classmethod
    async def open(cls, config: GatewayConfig, store: Any, settings: Any) -> Gateway:
        # trust_env=False: no proxy or netrc from the environment; the upstreams are exactly the configured URLs
        connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=30)
        client = aiohttp.ClientSession(connector=connector, trust_env=False)
        gw = cls(config, client)
        if config.evaluator is not None:
            from banditroute.service.gateway.judge import Judge

            gw.judge = Judge(gw, config.evaluator, store, settings)
            gw.judge.start()
        return gw

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background (kept referenced until done; its failure is logged, never raised)."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.warning("gateway background task failed", extra={"error": f"{type(exc).__name__}: {exc}"})

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self.judge is not None:
            await self.judge.stop()
        await self.client.close()
