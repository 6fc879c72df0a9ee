"""Rewriting a chat-completions event stream as it passes: each ``data:`` JSON event gets ``model`` set to the
model actually used; the answer text and a ``usage`` block (``stream_options.include_usage``) are collected on the
way. Events are passed on as soon as they are complete; nothing else is changed or buffered."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamState:
    model: str
    parts: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    pending: bytes = b""

    @property
    def answer(self) -> str:
        return "".join(self.parts)


def rewrite_json(data: dict[str, Any], state: StreamState) -> None:
    if "model" in data:
        data["model"] = state.model
    usage = data.get("usage")
    if isinstance(usage, dict):
        state.usage = usage
    for choice in data.get("choices") or ():
        if isinstance(choice, dict):
            delta = choice.get("delta") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str):
                state.parts.append(text)


def _event(raw: bytes, state: StreamState) -> bytes:
    lines = raw.split(b"\n")
    for i, line in enumerate(lines):
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if not payload.startswith(b"{"):
            continue  # [DONE] and anything that is not JSON pass as they are
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if isinstance(data, dict):
            rewrite_json(data, state)
            lines[i] = b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return b"\n".join(lines)


def feed(chunk: bytes, state: StreamState) -> bytes:
    """The complete events in ``state.pending + chunk``, rewritten; an incomplete tail waits for the next chunk."""
    buf = state.pending + chunk
    buf = buf.replace(b"\r\n", b"\n")
    end = buf.rfind(b"\n\n")
    if end < 0:
        state.pending = buf
        return b""
    state.pending = buf[end + 2 :]
    events = buf[:end].split(b"\n\n")
    return b"".join(_event(e, state) + b"\n\n" for e in events)


def flush(state: StreamState) -> bytes:
    rest, state.pending = state.pending, b""
    return _event(rest, state) if rest.strip() else rest
