"""An episode of N queries under a spend budget."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from banditroute.env.records import RecordSet
from banditroute.env.routing_env import validated_tables


class BudgetedRoutingEnv(gym.Env[np.ndarray, np.int64]):
    """
    ## Description
    A budgeted routing episode: ``episode_length`` queries drawn (with replacement, by the env's seeded
    generator) from the given split, and ``budget`` USD to answer them. Cheap models save budget for later
    queries that need an expensive one.

    ## Action Space
    ``Discrete(k)``: the index of the model that answers the current query.

    ## Observation Space
    ``Box(-1, 1, (d + 2,), float32)``: the query's ``d`` features, then the remaining budget as a share of
    ``budget`` and the remaining steps as a share of ``episode_length`` (both in [0, 1]).

    ## Rewards
    ``quality - lam * cost / cost_scale`` of the model that answered (``lam`` defaults to 0: the budget is the
    constraint). A chosen model the remaining budget cannot pay for is not called: the cheapest model the
    budget can pay for answers instead and ``info["fallback"]`` is True.

    ## Episode End
    Truncated after ``episode_length`` steps; terminated when the remaining budget cannot pay for any model
    on the next query (``info["budget_exhausted"]``).

    ## Arguments
    - ``quality``, ``cost``: ``(n, k)``; ``features``: ``(n, d)`` in [-1, 1].
    - ``episode_length``: queries per episode (default 64).
    - ``budget_per_query``: USD per query; the episode's budget is ``episode_length *`` this. Default: the
      median of the per-model mean costs.
    - ``lam``, ``cost_scale``: as in ``RoutingEnv``.
    - ``models``: names of the ``k`` models.

    ## Version History
    - v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        quality: np.ndarray,
        cost: np.ndarray,
        features: np.ndarray,
        episode_length: int = 64,
        budget_per_query: float | None = None,
        lam: float = 0.0,
        cost_scale: float | None = None,
        models: list[str] | tuple[str, ...] | None = None,
        render_mode: str | None = None,
    ) -> None:
        t = validated_tables(quality, cost, features, lam, cost_scale, models, render_mode)
        if int(episode_length) < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        per_query = float(np.median(t.cost.mean(axis=0))) if budget_per_query is None else float(budget_per_query)
        if not np.isfinite(per_query) or per_query <= 0:
            raise ValueError(f"budget_per_query must be a finite number > 0, got {budget_per_query}")
        self.quality, self.cost, self.features = t.quality, t.cost, t.features
        self.lam, self.cost_scale, self.models = t.lam, t.cost_scale, t.models
        self.episode_length = int(episode_length)
        self.budget = per_query * self.episode_length
        k = self.quality.shape[1]
        self.action_space = spaces.Discrete(k)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(self.features.shape[1] + 2,), dtype=np.float32)
        self._i = 0
        self._spent = 0.0
        self._t = 0

    @classmethod
    def from_records(cls, records: RecordSet, features: np.ndarray, **kwargs: Any) -> BudgetedRoutingEnv:
        kwargs.setdefault("models", records.models)
        return cls(records.quality, records.cost, features, **kwargs)

    @property
    def remaining(self) -> float:
        return max(self.budget - self._spent, 0.0)

    def _obs(self) -> np.ndarray:
        extra = np.array(
            [self.remaining / self.budget, (self.episode_length - self._t) / self.episode_length],
            dtype=np.float32,
        )
        return np.concatenate([self.features[self._i], np.clip(extra, 0.0, 1.0)])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._spent, self._t = 0.0, 0
        self._i = int(self.np_random.integers(self.quality.shape[0]))
        return self._obs(), {"query_index": self._i, "remaining_budget": self.remaining}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not self.action_space.contains(a):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        i, costs = self._i, self.cost[self._i]
        fallback = bool(costs[a] > self.remaining)
        if fallback:
            affordable = np.flatnonzero(costs <= self.remaining)
            # reset/step guarantee the current query is affordable by some model (else we terminated).
            a = int(affordable[np.argmin(costs[affordable])])
        q, c = float(self.quality[i, a]), float(costs[a])
        self._spent += c
        self._t += 1
        reward = q - self.lam * c / self.cost_scale
        truncated = self._t >= self.episode_length
        info: dict[str, Any] = {
            "query_index": i,
            "action_taken": a,
            "quality": q,
            "cost": c,
            "fallback": fallback,
            "remaining_budget": self.remaining,
            "oracle_action": int(np.argmax(self.quality[i] - self.lam * costs / self.cost_scale)),
            "budget_exhausted": False,
        }
        terminated = False
        if not truncated:
            self._i = int(self.np_random.integers(self.quality.shape[0]))
            if self.cost[self._i].min() > self.remaining:
                terminated = True
                info["budget_exhausted"] = True
        return self._obs(), reward, terminated, truncated, info
