"""Experiments in Redis: definitions, status and per-arm statistics."""

from __future__ import annotations

import json
import time
from typing import Any

from banditroute.service.keys import EXPERIMENTS, k_experiment, k_expstats
from banditroute.service.store_policies import PolicyStore


class ExperimentStore(PolicyStore):
    """A/B experiments: their definitions and the statistics ``FEEDBACK_SCRIPT`` keeps per arm."""

    # ---- experiments ---------------------------------------------------------------------------------------
    async def create_experiment(self, eid: str, definition: dict[str, Any]) -> bool:
        ok = await self.r.hsetnx(k_experiment(eid), "definition", json.dumps(definition))
        if ok:
            await self.r.hset(k_experiment(eid), mapping={"status": "running", "created_at": str(time.time())})
            await self.r.sadd(EXPERIMENTS, eid)
        return bool(ok)

    async def experiment(self, eid: str) -> dict[str, Any] | None:
        raw = await self.r.hgetall(k_experiment(eid))
        if not raw or b"definition" not in raw:
            return None
        return {
            "definition": json.loads(raw[b"definition"]),
            "status": raw.get(b"status", b"running").decode(),
            "created_at": float(raw.get(b"created_at", b"0")),
            "stopped_at": float(raw.get(b"stopped_at", b"0")),
        }

    async def experiment_ids(self) -> list[str]:
        return sorted(m.decode() for m in await self.r.smembers(EXPERIMENTS))

    async def stop_experiment(self, eid: str) -> None:
        await self.r.hset(k_experiment(eid), mapping={"status": "stopped", "stopped_at": str(time.time())})

    async def delete_experiment(self, eid: str) -> bool:
        """Delete the definition and every arm's statistics (in each arm's policy slot)."""
        exp = await self.experiment(eid)
        if exp is None:
            return False
        for arm in exp["definition"]["arms"]:
            prefix = f"{eid}|{arm['name']}|"
            names = ["decisions", "fb_n", "fb_sum", "fb_sumsq", "cost_sum", "cost_sumsq"]
            await self.r.hdel(k_expstats(arm["policy"]), *[prefix + n for n in names])
        await self.r.delete(k_experiment(eid))
        await self.r.srem(EXPERIMENTS, eid)
        return True

    async def arm_stats(self, pid: str, eid: str, arm: str) -> dict[str, float]:
        prefix = f"{eid}|{arm}|"
        names = ["decisions", "fb_n", "fb_sum", "fb_sumsq", "cost_sum", "cost_sumsq"]
        vals = await self.r.hmget(k_expstats(pid), [prefix + n for n in names])
        return {n: float(v) if v is not None else 0.0 for n, v in zip(names, vals, strict=True)}
