"""What a call cost: the upstream's ``usage`` x the configured prices, or a local count when usage is absent."""

from __future__ import annotations

from typing import Any

from banditroute.service.gateway.config import Upstream

CHARS_PER_TOKEN = 4.0


def count_tokens(text: str) -> int:
    """A local estimate (about four characters per token for English text), at least 1 for non-empty text."""
    return max(1, round(len(text) / CHARS_PER_TOKEN)) if text else 0


def message_text(content: Any) -> str:
    """The text of a message's ``content`` (a string, or a list of parts whose text parts are joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def prompt_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    return "\n".join(message_text(m.get("content")) for m in messages if isinstance(m, dict))


def usage_tokens(usage: Any, messages: Any, answer: str) -> tuple[int, int, bool]:
    """``(prompt tokens, completion tokens, counted locally?)`` from a ``usage`` block when it has them."""
    if isinstance(usage, dict):
        p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(p, int) and isinstance(c, int) and p >= 0 and c >= 0:
            return p, c, False
    return count_tokens(prompt_text(messages)), count_tokens(answer), True


def cost_usd(upstream: Upstream, prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * upstream.input_usd_per_mtok + completion_tokens * upstream.output_usd_per_mtok) / 1e6
