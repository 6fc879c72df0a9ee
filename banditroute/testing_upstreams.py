"""Test support, not product code: OpenAI-compatible replay upstreams on loopback, for the gateway's tests,
benchmark and demo.

A :class:`ReplayUpstream` is an ASGI app answering ``POST /v1/chat/completions`` (non-streaming and SSE, with
``stream_options.include_usage``) and ``GET /v1/models`` for one or more models. Each model answers a prompt from
its table (the bundled records give each model's ``pred`` answer letter and its output length), with a ``usage``
block, after its own latency. Knobs for failures (``mode``) and counters of what happened (``stats``) let tests
kill, break and observe it. Run one in a thread with :class:`banditroute.testing.ServerThread`, or as a process:
``python -m banditroute.testing_upstreams --port P --records data/mmlu_pro.parquet --model NAME ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ReplayModel", "ReplayUpstream", "models_from_records", "usage_of"]


@dataclass
class ReplayModel:
    """One model: its answers by prompt (``text, completion tokens``), its latency, and a default answer."""

    name: str
    answers: dict[str, tuple[str, int]] = field(default_factory=dict)
    latency_s: float = 0.0
    chunk_delay_s: float = 0.0
    default: str = "The answer is (A)."

    def answer(self, prompt: str) -> tuple[str, int]:
        if prompt in self.answers:
            return self.answers[prompt]
        return self.default, max(1, len(self.default) // 4)


def usage_of(prompt_chars: int, completion_tokens: int) -> dict[str, int]:
    p = max(1, prompt_chars // 4)
    return {"prompt_tokens": p, "completion_tokens": completion_tokens, "total_tokens": p + completion_tokens}


def models_from_records(
    path: str | Path, models: list[str], latency_s: dict[str, float] | None = None, limit: int | None = None
) -> dict[str, ReplayModel]:
    """Replay models from a records file (any format of :mod:`env.record_files`: parquet, csv, jsonl): each
    answers a prompt with its recorded ``response`` text when the records have one, else "The answer is (X)."
    with its recorded ``pred`` letter, and reports as completion tokens its recorded ``output_chars`` / 4 (else
    the answer's length / 4). A model whose ``pred`` is empty answers with no letter at all ("I cannot tell.")."""
    import pandas as pd

    from banditroute.env.record_files import loader_for

    df = loader_for(Path(path))(Path(path))
    df = df[df["model"].isin(models)]
    if limit is not None:
        keep = df["prompt"].drop_duplicates().head(limit)
        df = df[df["prompt"].isin(keep)]
    out = {m: ReplayModel(m, latency_s=(latency_s or {}).get(m, 0.0)) for m in models}
    for row in df.to_dict("records"):
        pred, response, chars = row.get("pred"), row.get("response"), row.get("output_chars")
        if isinstance(response, str) and response:
            text = response
        elif isinstance(pred, str) and pred:
            text = f"The answer is ({pred})."
        else:
            text = "I cannot tell."
        n = int(chars) // 4 if chars is not None and not pd.isna(chars) else len(text) // 4
        out[row["model"]].answers[row["prompt"]] = (text, max(1, n))
    return out


class ReplayUpstream:
    """The ASGI app. ``mode``: ``ok``; ``500`` (every call answers 500); ``400`` (answers 400); ``echo-key``
    (answers 401 quoting the Authorization header it got, as careless upstreams do); ``hang`` (never answers);
    ``break`` (a stream drops its connection after ``break_after`` events, without ending the body: what a
    crashed or restarted upstream does mid-answer)."""

    def __init__(self, models: dict[str, ReplayModel]) -> None:
        self.models = models
        self.mode = "ok"
        self.break_after = 2
        self.stats = {"requests": 0, "streams": 0, "completed": 0, "cancelled": 0, "broken": 0}
        self.last_body: dict[str, Any] | None = None
        self.stream_finished_at: float | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = await read_body(receive)
        path = scope["path"]
        if scope["method"] == "GET" and path.endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "replay"} for m in self.models]
            await _json(send, 200, {"object": "list", "data": data})
        elif scope["method"] == "POST" and path.endswith("/chat/completions"):
            await self._chat(scope, json.loads(body or b"{}"), receive, send)
        else:
            await _json(send, 404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    async def _chat(self, scope: dict[str, Any], req: dict[str, Any], receive: Any, send: Any) -> None:
        self.stats["requests"] += 1
        self.last_body = req
        while self.mode == "hang":  # until the test changes the mode (or stops the server)
            await asyncio.sleep(0.02)
        if self.mode in ("500", "400"):
            code = int(self.mode)
            await _json(send, code, {"error": {"message": f"replay answers {code}", "type": "server_error"}})
            return
        if self.mode == "echo-key":
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            msg = f"Incorrect API key provided: {auth}"
            await _json(send, 401, {"error": {"message": msg, "type": "invalid_request_error"}})
            return
        model = self.models.get(req.get("model", ""))
        if model is None:
            await _json(send, 404, {"error": {"message": f"no model {req.get('model')!r}", "type": "not_found"}})
            return
        msgs = req.get("messages") or []
        users = [m for m in msgs if m.get("role") == "user"]
        prompt = str(users[-1].get("content", "")) if users else ""
        text, completion = model.answer(prompt)
        usage = usage_of(sum(len(str(m.get("content", ""))) for m in msgs), completion)
        if model.latency_s:
            await asyncio.sleep(model.latency_s)
        cid = f"chatcmpl-replay{self.stats['requests']}"
        if not req.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            await _json(
                send,
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model.name,
                    "choices": [choice],
                    "usage": usage,
                },
            )
            return
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        # uvicorn drops writes to a closed connection silently: watch for the disconnect, as a real server does
        streaming = asyncio.create_task(self._stream(send, cid, model, text, usage if include_usage else None))
        watcher = asyncio.create_task(_disconnected(receive))
        done, _ = await asyncio.wait({streaming, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if streaming not in done:
            streaming.cancel()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await streaming

    async def _stream(self, send: Any, cid: str, model: ReplayModel, text: str, usage: dict[str, int] | None) -> None:
        self.stats["streams"] += 1
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            async for i, event in _numbered(_events(cid, model, text, usage)):
                if self.mode == "break" and i >= self.break_after:
                    self.stats["broken"] += 1
                    raise Broken  # uvicorn closes the connection of an app that raises after the response started
                await send({"type": "http.response.body", "body": event, "more_body": True})
                if event.startswith(b"data: [DONE]"):
                    self.stream_finished_at = time.monotonic()  # the last event is out
                if model.chunk_delay_s:
                    await asyncio.sleep(model.chunk_delay_s)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self.stats["completed"] += 1
        except (asyncio.CancelledError, OSError):
            self.stats["cancelled"] += 1
            raise


class Broken(Exception):
    """Raised by a stream in ``break`` mode: the server drops the connection mid-body."""


async def _numbered(events: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    i = 0
    async for event in events:
        yield i, event
        i += 1


async def _events(cid: str, model: ReplayModel, text: str, usage: dict[str, int] | None) -> AsyncIterator[bytes]:
    base = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model.name}

    def ev(choices: list[Any], **extra: Any) -> bytes:
        return b"data: " + json.dumps({**base, "choices": choices, **extra}).encode() + b"\n\n"

    yield ev([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    for i, word in enumerate(text.split(" ")):
        piece = word if i == 0 else " " + word
        yield ev([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    yield ev([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if usage is not None:
        yield ev([], usage=usage)
    yield b"data: [DONE]\n\n"


async def read_body(receive: Any) -> bytes:
    """An ASGI request's whole body."""
    body: bytes = b""
    while True:
        msg = await receive()
        body += bytes(msg.get("body", b""))
        if not msg.get("more_body"):
            return body


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _json(send: Any, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def main() -> None:  # pragma: no cover - used by the benchmark and the demo as a child process
    import uvicorn

    ap = argparse.ArgumentParser(description="an OpenAI-compatible replay upstream on 127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--records", default=None)
    ap.add_argument("--model", action="append", required=True, help="model name[:latency_ms]")
    ap.add_argument("--chunk-delay-ms", type=float, default=0.0)
    args = ap.parse_args()
    lat = {m.split(":")[0]: float(m.split(":")[1]) / 1000 if ":" in m else 0.0 for m in args.model}
    names = list(lat)
    models = (
        models_from_records(args.records, names, lat)
        if args.records
        else {m: ReplayModel(m, {}, lat[m]) for m in names}
    )
    for m in models.values():
        m.chunk_delay_s = args.chunk_delay_ms / 1000
    uvicorn.run(ReplayUpstream(models), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":  # pragma: no cover
    main()
