"""One query per step: choose the model that answers it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from banditroute.env.records import RecordSet


@dataclass(frozen=True)
class Tables:
    """The validated arrays and prices both routing environments are built on."""

    quality: np.ndarray  # (n, k) float64
    cost: np.ndarray  # (n, k) float64, USD
    features: np.ndarray  # (n, d) float32 in [-1, 1]
    lam: float
    cost_scale: float
    models: tuple[str, ...]


def validated_tables(
    quality: Any,
    cost: Any,
    features: Any,
    lam: float,
    cost_scale: float | None,
    models: Sequence[str] | None,
    render_mode: str | None,
) -> Tables:
    """Check the environments' shared arguments; ``ValueError`` names the one that is wrong."""
    quality, cost = np.asarray(quality, dtype=np.float64), np.asarray(cost, dtype=np.float64)
    features = np.asarray(features, dtype=np.float32)
    if quality.ndim != 2 or quality.shape != cost.shape:
        raise ValueError(f"quality {quality.shape} and cost {cost.shape} must both be (n, k)")
    if features.ndim != 2 or features.shape[0] != quality.shape[0]:
        raise ValueError(f"features {features.shape} must be (n, d) with n = {quality.shape[0]}")
    if quality.shape[0] == 0 or quality.shape[1] < 2:
        raise ValueError(f"need at least one query and two models, got {quality.shape}")
    for name, a in (("quality", quality), ("cost", cost), ("features", features)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} has NaN or infinite entries")
    if render_mode is not None:
        raise ValueError(f"render_mode {render_mode!r} is not supported")
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be a finite number >= 0, got {lam}")
    if cost_scale is None:
        dearest = float(cost.mean(axis=0).max())
        scale = dearest if dearest > 0 else 1.0  # all-free records: any positive scale prices nothing
    else:
        scale = float(cost_scale)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"cost_scale must be a finite number > 0, got {cost_scale}")
    k = quality.shape[1]
    names = tuple(models) if models is not None else tuple(f"model{j}" for j in range(k))
    if len(names) != k:
        raise ValueError(f"models has {len(names)} names for {k} columns")
    return Tables(quality, cost, np.clip(features, -1.0, 1.0), float(lam), scale, names)


class RoutingEnv(gym.Env[np.ndarray, np.int64]):
    """
    ## Description
    A contextual bandit over real performance records. Each step shows the features of one query drawn
    (with replacement, by the env's seeded generator) from the given split; the agent picks one of ``k``
    models and is paid that model's recorded quality on the query, less the price of its cost.

    ## Action Space
    ``Discrete(k)``: the index of the model in ``models``.

    ## Observation Space
    ``Box(-1, 1, (d,), float32)``: the query's features (as made by :class:`env.features.Featurizer`).

    ## Rewards
    ``quality - lam * cost / cost_scale``: ``quality`` in [0, 1] is the chosen model's recorded score, ``cost``
    its USD cost, ``cost_scale`` defaults to the most expensive model's mean cost per query.

    ## Episode End
    Every episode is one query: ``terminated`` is True after each step (a bandit, so returns do not mix
    unrelated queries). ``info`` carries ``quality``, ``cost``, ``oracle_action`` (best reward on this query),
    ``query_index`` and ``reward_all`` (the reward of every model, for full-information evaluation).

    ## Arguments
    - ``quality``: ``(n, k)`` scores; ``cost``: ``(n, k)`` USD; ``features``: ``(n, d)`` in [-1, 1].
    - ``lam``: price of ``cost_scale`` dollars in quality units (>= 0), default 0.
    - ``cost_scale``: USD; default the largest per-model mean cost.
    - ``models``: names of the ``k`` models (for ``info``), default ``model0..``.

    ## Version History
    - v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        quality: np.ndarray,
        cost: np.ndarray,
        features: np.ndarray,
        lam: float = 0.0,
        cost_scale: float | None = None,
        models: list[str] | tuple[str, ...] | None = None,
        render_mode: str | None = None,
    ) -> None:
        t = validated_tables(quality, cost, features, lam, cost_scale, models, render_mode)
        self.quality, self.cost, self.features = t.quality, t.cost, t.features
        self.lam, self.cost_scale, self.models = t.lam, t.cost_scale, t.models
        k = self.quality.shape[1]
        self.rewards = self.quality - self.lam * self.cost / self.cost_scale  # (n, k)
        self.action_space = spaces.Discrete(k)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(self.features.shape[1],), dtype=np.float32)
        self._i = 0

    @classmethod
    def from_records(cls, records: RecordSet, features: np.ndarray, **kwargs: Any) -> RoutingEnv:
        kwargs.setdefault("models", records.models)
        return cls(records.quality, records.cost, features, **kwargs)

    def _draw(self) -> None:
        self._i = int(self.np_random.integers(self.quality.shape[0]))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._draw()
        return self.features[self._i].copy(), {"query_index": self._i}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not self.action_space.contains(a):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        i = self._i
        info = {
            "query_index": i,
            "quality": float(self.quality[i, a]),
            "cost": float(self.cost[i, a]),
            "oracle_action": int(np.argmax(self.rewards[i])),
            "reward_all": self.rewards[i].copy(),
        }
        reward = float(self.rewards[i, a])
        # The episode is over; the observation returned is that of the same query (ignored by learners).
        return self.features[i].copy(), reward, True, False, info
