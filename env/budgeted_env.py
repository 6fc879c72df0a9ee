"""An episode of N queries under a spend budget."""

from __future__ import annotations

from collections.abc import Callable
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
    ``Box(-1, 1, (d + 3,), float32)``: the query's ``d`` features, then the remaining budget as a share of
    ``budget``, the remaining steps as a share of ``episode_length`` and the current dual price
    ``0.5 + dual / (2 * dual_max)`` (all in [0, 1]).

    ## Rewards
    ``quality - (lam + dual) * cost / cost_scale`` of the model that answered. ``dual`` is a Lagrange multiplier
    of the budget constraint, adapted by dual ascent at the end of every episode on its spending pace:
    ``dual += dual_lr * (spent / budget * episode_length / steps - 1)``, kept in ``[-dual_max, dual_max]`` (an
    episode that ran out of budget early spent too fast): overspending raises the price
    of a dollar, underspending lowers it (below 0 it pays to spend), so an agent trained here learns to spend
    about its budget rather than far below it. ``dual_lr = 0`` freezes it (evaluation). A chosen model the
    remaining budget cannot pay for is not called: the cheapest model the budget can pay for answers instead
    and ``info["fallback"]`` is True.

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
    - ``dual_lr``: step of the dual ascent per episode (default 0.5; 0 freezes the dual).
    - ``initial_dual``, ``dual_max``: the dual's start (default 0) and bound (default 10).

    ## Version History
    - v0: initial version; the Lagrangian dual price joined the reward and the observation.

    ## Deployment
    A trained agent acts on a frozen dual (``dual_lr = 0``). :func:`calibrate_dual` picks that price on the
    training records for the agent as it will act (deterministic), because the price training ended at is the
    one its *sampled* actions paid: the argmax of the same policy spends differently.
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
        dual_lr: float = 0.5,
        initial_dual: float = 0.0,
        dual_max: float = 10.0,
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
        if not (np.isfinite(dual_lr) and dual_lr >= 0):
            raise ValueError(f"dual_lr must be a finite number >= 0, got {dual_lr}")
        if not (np.isfinite(dual_max) and dual_max > 0 and abs(initial_dual) <= dual_max):
            raise ValueError(f"dual_max must be > 0 and |initial_dual| <= dual_max, got {dual_max}, {initial_dual}")
        self.dual_lr, self.dual_max, self.dual = float(dual_lr), float(dual_max), float(initial_dual)
        k = self.quality.shape[1]
        self.action_space = spaces.Discrete(k)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(self.features.shape[1] + 3,), dtype=np.float32)
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
            [
                self.remaining / self.budget,
                (self.episode_length - self._t) / self.episode_length,
                0.5 + self.dual / (2.0 * self.dual_max),
            ],
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
        reward = q - (self.lam + self.dual) * c / self.cost_scale
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
            "dual": self.dual,
        }
        terminated = False
        if not truncated:
            self._i = int(self.np_random.integers(self.quality.shape[0]))
            if self.cost[self._i].min() > self.remaining:
                terminated = True
                info["budget_exhausted"] = True
        if terminated or truncated:  # dual ascent on the episode's spending pace against its budget's
            pace = (self._spent / self.budget) * (self.episode_length / self._t)
            step = self.dual_lr * (pace - 1.0)
            self.dual = float(np.clip(self.dual + step, -self.dual_max, self.dual_max))
        return self._obs(), reward, terminated, truncated, info


def spend_pace(act: Callable[[np.ndarray], int], env: BudgetedRoutingEnv, steps: int, seed: int = 0) -> float:
    """Mean cost per query of ``act`` (observation -> action) over ``steps`` queries of seeded episodes of ``env``
    (episode ``e`` reset with ``seed + e``), as a share of the budget per query."""
    spent, n, ep = 0.0, 0, 0
    while n < steps:
        obs, _ = env.reset(seed=seed + ep)
        ep += 1
        done = False
        while not done and n < steps:
            obs, _, terminated, truncated, info = env.step(act(obs))
            spent += float(info["cost"])
            n += 1
            done = terminated or truncated
    return spent / n / (env.budget / env.episode_length)


def calibrate_dual(
    act: Callable[[np.ndarray], int],
    quality: np.ndarray,
    cost: np.ndarray,
    features: np.ndarray,
    *,
    steps: int = 2000,
    iterations: int = 8,
    seed: int = 0,
    **env_kwargs: Any,
) -> tuple[float, float]:
    """The frozen dual price in ``[-dual_max, dual_max]`` at which ``act`` spends its budget on these (training)
    records, by bisection on the spending pace (which falls as the price rises); the bound itself when even it
    cannot bring the pace to 1. Returns ``(dual, pace at that dual)``.

    Args:
        act: the agent as it will be deployed, observation -> action (deterministic).
        quality, cost, features: the records to calibrate on (the training split, never the test split).
        steps: queries per evaluation of the pace; iterations: bisection steps.
        env_kwargs: :class:`BudgetedRoutingEnv`'s arguments (``dual_lr`` and ``initial_dual`` are set here).
    """
    if steps < 1 or iterations < 0:
        raise ValueError(f"steps must be >= 1 and iterations >= 0, got {steps}, {iterations}")
    dual_max = float(env_kwargs.pop("dual_max", 10.0))
    env_kwargs.pop("initial_dual", None)
    env_kwargs.pop("dual_lr", None)

    def pace(dual: float) -> float:
        env = BudgetedRoutingEnv(
            quality, cost, features, initial_dual=dual, dual_max=dual_max, dual_lr=0.0, **env_kwargs
        )
        return spend_pace(act, env, steps, seed)

    lo, hi = -dual_max, dual_max
    p_lo, p_hi = pace(lo), pace(hi)
    if p_lo <= 1.0:  # spends too little even at the lowest price: the lowest price is the closest
        return lo, p_lo
    if p_hi >= 1.0:
        return hi, p_hi
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        p_mid = pace(mid)
        if p_mid > 1.0:
            lo, p_lo = mid, p_mid
        else:
            hi, p_hi = mid, p_mid
    return (lo, p_lo) if abs(p_lo - 1.0) <= abs(p_hi - 1.0) else (hi, p_hi)
