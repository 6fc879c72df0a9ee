"""A cascade's record in Redis: read it with its decision, write a step onto it (check-and-set on the step count).

Kept beside :mod:`service.keys` (which holds the service's other scripts) because only cascades use it: the
decision hash's keys are :func:`service.keys.k_decision`'s.
"""

from __future__ import annotations

from typing import Any

from banditroute.service.cascade_record import CascadeRecord
from banditroute.service.keys import k_decision

# KEYS[1] decision; ARGV[1] the step count the writer read ('' = any), ARGV[2..] field/value pairs.
# Returns -1 when the decision is gone (expired: a write would resurrect it without a TTL), 0 when another writer
# recorded a step meanwhile (two posts of one stage's answers), 1 written.
STEP_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'cascade_n') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""


def _script(store: Any) -> Any:
    script = getattr(store, "cascade_step_script", None)
    if script is None:  # registered once per store (so per worker)
        script = store.cascade_step_script = store.r.register_script(STEP_SCRIPT)
    return script


async def write_step(store: Any, pid: str, did: str, expected_n: int | None, fields: dict[str, Any]) -> int:
    """Write ``fields`` onto the decision if it still has ``expected_n`` steps (None: unconditionally, as the
    gateway does on a cascade only it runs). Returns 1 written, 0 moved on meanwhile, -1 gone."""
    flat: list[Any] = []
    for k, v in fields.items():
        flat += [k, v]
    n = "" if expected_n is None else str(expected_n)
    return int(await _script(store)(keys=[k_decision(pid, did)], args=[n, *flat]))


async def load(store: Any, pid: str, did: str) -> tuple[dict[str, bytes], CascadeRecord | None, str] | None:
    """The decision hash, its cascade record (None: a single-call decision) and the record's state; None when the
    decision is unknown or expired."""
    raw = await store.decision(pid, did)
    if raw is None:
        return None
    if "cascade" not in raw:
        return raw, None, ""
    return raw, CascadeRecord.from_json(raw["cascade"]), raw.get("cascade_state", b"").decode()


__all__ = ["STEP_SCRIPT", "load", "write_step"]
