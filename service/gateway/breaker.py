"""A per-upstream circuit breaker, held by each worker process (no shared state: a worker learns a model is down
from its own failures, within ``failures`` calls).

closed --(``failures`` consecutive failures)--> open --(``reset_s`` later: one probe)--> half-open
half-open --(probe succeeds)--> closed;  half-open --(probe fails)--> open again
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Breaker:
    failures: int = 5
    reset_s: float = 30.0
    consecutive: int = 0
    opened_at: float | None = None
    probing: bool = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.probing else "open"

    def ready(self, now: float | None = None) -> bool:
        """Whether a call may go to this upstream without taking the probe (closed, or open long enough)."""
        if self.opened_at is None:
            return True
        now = time.monotonic() if now is None else now
        return not self.probing and now - self.opened_at >= self.reset_s

    def allow(self, now: float | None = None) -> bool:
        """Take a call: True when closed; when open for ``reset_s``, lets exactly one probe through."""
        if self.opened_at is None:
            return True
        if self.ready(now):
            self.probing = True
            return True
        return False

    def success(self) -> None:
        self.consecutive = 0
        self.opened_at = None
        self.probing = False

    def failure(self, now: float | None = None) -> bool:
        """Count a failure; True when this failure opened (or re-opened) the breaker."""
        self.consecutive += 1
        if self.probing or (self.opened_at is None and self.consecutive >= self.failures):
            self.opened_at = time.monotonic() if now is None else now
            self.probing = False
            return True
        return False
