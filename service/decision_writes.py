"""Decision log writes of one turn of the event loop in one round trip.

Under load a worker logs many decisions at once (:mod:`service.decider` makes them together); written one by
one, each takes a pooled connection, a send and a receive of its own, and Redis wakes once per write.
:class:`DecisionWriter` queues the writes requested in one turn of the loop and sends them at the next as one
pipeline (:meth:`Store.log_decisions`: each decision still one atomic script). At low load a batch is one write
and nothing waits (``call_soon``, no timer). Each caller awaits its own decision's outcome: written, or the
error of its script or of the connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

Write = tuple[str, str, dict[str, Any], int, str | None, str | None]


class DecisionWriter:
    """Per-worker write combiner for :meth:`Store.log_decisions`."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._queue: list[tuple[Write, asyncio.Future[None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def write(
        self, pid: str, did: str, fields: dict[str, Any], ttl: int, experiment: str | None, arm: str | None
    ) -> None:
        """Log one decision; returns once it is written (raises what writing it raised)."""
        loop = asyncio.get_running_loop()
        if not self._queue:
            loop.call_soon(self._flush)
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append(((pid, did, fields, ttl, experiment, arm), future))
        await future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        # a task of its own: a caller that goes away (client disconnect) does not cancel the others' write
        task = asyncio.ensure_future(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[Write, asyncio.Future[None]]]) -> None:
        try:
            results = await self.store.log_decisions([w for w, _ in batch])
        except BaseException as exc:  # the connection failed: every decision of the batch fails with it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), error in zip(batch, results, strict=True):
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


def writer_of(store: Any) -> DecisionWriter:
    """The worker's :class:`DecisionWriter` for ``store`` (made on first use)."""
    writer: DecisionWriter | None = getattr(store, "decision_writer", None)
    if writer is None:
        writer = store.decision_writer = DecisionWriter(store)
    return writer


__all__ = ["DecisionWriter", "writer_of"]
