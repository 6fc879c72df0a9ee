"""A finished chat completion as the server-sent events of a streamed one.

A cascade cannot stream its answer as the upstream writes it: which answer is returned is known only once the
stop decision has read every answer of the last stage. So it runs its stages non-streamed and sends the chosen
completion as a stream: a first event with the whole message (role, content, tool calls), one with each
choice's ``finish_reason``, the ``usage`` block when ``stream_options.include_usage`` asked for it, then
``[DONE]``. The openai client reads it as any stream (see docs/design-notes.md on time to first token).
"""

from __future__ import annotations

import json
import time
from typing import Any


def _event(base: dict[str, Any], choices: list[Any], **extra: Any) -> bytes:
    body = {**base, "choices": choices, **extra}
    return b"data: " + json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def completion_events(data: dict[str, Any], include_usage: bool) -> list[bytes]:
    """The events of ``data`` (a ``chat.completion`` body, its ``model`` already set)."""
    base: dict[str, Any] = {
        "id": data.get("id", ""),
        "object": "chat.completion.chunk",
        "created": data.get("created", int(time.time())),
        "model": data.get("model", ""),
    }
    if data.get("system_fingerprint") is not None:
        base["system_fingerprint"] = data["system_fingerprint"]
    choices = [c for c in data.get("choices") or () if isinstance(c, dict)]
    out = []
    for c in choices:
        raw = c.get("message")
        msg: dict[str, Any] = raw if isinstance(raw, dict) else {}
        delta: dict[str, Any] = {"role": msg.get("role", "assistant"), "content": msg.get("content")}
        if isinstance(msg.get("tool_calls"), list):
            delta["tool_calls"] = [{**tc, "index": i} for i, tc in enumerate(msg["tool_calls"]) if isinstance(tc, dict)]
        if msg.get("refusal") is not None:
            delta["refusal"] = msg["refusal"]
        out.append(_event(base, [{"index": c.get("index", 0), "delta": delta, "finish_reason": None}]))
    for c in choices:
        out.append(_event(base, [{"index": c.get("index", 0), "delta": {}, "finish_reason": c.get("finish_reason")}]))
    if include_usage and isinstance(data.get("usage"), dict):
        out.append(_event(base, [], usage=data["usage"]))
    out.append(b"data: [DONE]\n\n")
    return out


__all__ = ["completion_events"]
