"""The service's one gateway to Redis: :class:`Store`, assembled from one module per concern.

- :mod:`service.keys`: every key and Lua script (and the exactly-once protocol, in its docstring);
- :mod:`service.store_policies`: policy meta, state, featurizer, counters;
- :mod:`service.store_feedback`: decisions, feedback, the learner's drain;
- :mod:`service.store_experiments`: experiments and their per-arm statistics.
"""

from __future__ import annotations

import numpy as np

from banditroute.service.codec import decode_array, encode_array
from banditroute.service.keys import k_decision
from banditroute.service.store_experiments import ExperimentStore
from banditroute.service.store_feedback import FeedbackStore
from banditroute.service.store_policies import StoredPolicy


class Store(FeedbackStore, ExperimentStore):
    """Policies, decisions, feedback and experiments in one Redis (asyncio client, ``decode_responses=False``)."""

    # ---- raw helpers used by operations endpoints ---------------------------------------------------------
    async def get_baseline(self) -> bytes | None:
        """One GET of a small key: the load benchmark's baseline endpoint."""
        value: bytes | None = await self.r.get("br:baseline")
        return value


def encode_x(x: np.ndarray) -> bytes:
    return np.asarray(x, dtype="<f8").tobytes()


def decode_x(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f8")


__all__ = ["Store", "StoredPolicy", "decode_array", "decode_x", "encode_array", "encode_x", "k_decision"]
