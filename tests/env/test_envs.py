from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import banditroute.env as env
from banditroute.env import BUDGETED_ENV_ID, ROUTING_ENV_ID, BudgetedRoutingEnv, RoutingEnv


@pytest.fixture
def tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n, k, d = 60, 4, 6
    quality = (rng.random((n, k)) < 0.6).astype(float)
    cost = rng.uniform(1e-5, 1e-3, (n, k)) * np.array([1, 3, 10, 30])
    x = np.clip(rng.normal(size=(n, d)) / 2, -1, 1)
    x[:, -1] = 1.0
    return quality, cost, x


@pytest.mark.parametrize("env_id", [ROUTING_ENV_ID, BUDGETED_ENV_ID])
def test_both_env_checkers_pass_with_warnings_as_errors(tables, env_id: str) -> None:
    q, c, x = tables
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e = gym.make(env_id, quality=q, cost=c, features=x)
        gym_check_env(e.unwrapped)
        sb3_check_env(e.unwrapped, warn=True)


def rollout(e: gym.Env, seed: int, steps: int = 50) -> list[tuple]:
    out = []
    obs, _ = e.reset(seed=seed)
    e.action_space.seed(seed)
    for _ in range(steps):
        a = e.action_space.sample()
        obs, r, term, trunc, info = e.step(a)
        out.append((obs.tobytes(), r, term, trunc, info["query_index"]))
        if term or trunc:
            obs, _ = e.reset()
    return out


@pytest.mark.parametrize("env_id", [ROUTING_ENV_ID, BUDGETED_ENV_ID])
def test_same_seed_same_rollout(tables, env_id: str) -> None:
    q, c, x = tables
    a = rollout(gym.make(env_id, quality=q, cost=c, features=x), seed=3)
    b = rollout(gym.make(env_id, quality=q, cost=c, features=x), seed=3)
    other = rollout(gym.make(env_id, quality=q, cost=c, features=x), seed=4)
    assert a == b
    assert a != other


@pytest.mark.parametrize("env_id", [ROUTING_ENV_ID, BUDGETED_ENV_ID])
def test_vectorised(tables, env_id: str) -> None:
    q, c, x = tables
    venv = gym.vector.SyncVectorEnv([lambda: gym.make(env_id, quality=q, cost=c, features=x) for _ in range(3)])
    obs, _ = venv.reset(seed=0)
    assert obs.shape[0] == 3
    for _ in range(10):
        obs, r, term, trunc, _ = venv.step(venv.action_space.sample())
        assert r.shape == (3,)
    venv.close()


def test_routing_reward_and_info(tables) -> None:
    q, c, x = tables
    e = RoutingEnv(q, c, x, lam=2.0, cost_scale=1e-3)
    obs, info = e.reset(seed=0)
    i = info["query_index"]
    np.testing.assert_array_equal(obs, x[i].astype(np.float32))
    _, r, term, trunc, info = e.step(2)
    assert r == pytest.approx(q[i, 2] - 2.0 * c[i, 2] / 1e-3)
    assert term and not trunc
    assert info["quality"] == q[i, 2] and info["cost"] == c[i, 2]
    assert info["oracle_action"] == int(np.argmax(q[i] - 2.0 * c[i] / 1e-3))


def test_budget_fallback_and_exhaustion(tables) -> None:
    q, c, x = tables
    e = BudgetedRoutingEnv(q, c, x, episode_length=1000, budget_per_query=float(c[:, 0].mean()))
    obs, _ = e.reset(seed=1)
    assert obs[-3] == 1.0 and obs[-2] == 1.0 and obs[-1] == 0.5  # full budget, all steps left, dual 0
    fallbacks, steps, done, info = 0, 0, False, {}
    while not done:
        obs, _, term, trunc, info = e.step(3)  # always the most expensive model
        fallbacks += info["fallback"]
        steps += 1
        assert info["remaining_budget"] >= 0
        done = term or trunc
    assert fallbacks > 0
    assert term and info["budget_exhausted"] and steps < 1000
    assert e._spent <= e.budget + 1e-12


def test_budget_dual_ascent_prices_spending(tables) -> None:
    """Overspending an episode's budget raises the dual price of a dollar; underspending lowers it (below 0: it
    pays to spend); the reward carries it and dual_lr = 0 freezes it."""
    q, c, x = tables
    e = BudgetedRoutingEnv(q, c, x, episode_length=10, budget_per_query=float(c.mean()), dual_lr=0.5)

    def episode(action: int) -> list[float]:
        e.reset(seed=0)
        rewards, done = [], False
        while not done:
            _, r, term, trunc, info = e.step(action)
            rewards.append(r - info["quality"])
            done = term or trunc
        return rewards

    episode(int(np.argmax(c.mean(axis=0))))  # the dearest model: over budget
    assert e.dual > 0
    high = e.dual
    for _ in range(5):
        episode(int(np.argmin(c.mean(axis=0))))  # the cheapest: under budget
    assert e.dual < high
    penalties = episode(0)
    assert all(p <= 0 for p in penalties) or e.dual < 0
    frozen = BudgetedRoutingEnv(q, c, x, episode_length=10, dual_lr=0.0, initial_dual=2.0)
    frozen.reset(seed=0)
    for _ in range(10):
        frozen.step(0)
    assert frozen.dual == 2.0
    with pytest.raises(ValueError, match="dual_lr"):
        BudgetedRoutingEnv(q, c, x, dual_lr=-1.0)


def test_budget_truncates_after_episode_length(tables) -> None:
    q, c, x = tables
    e = BudgetedRoutingEnv(q, c, x, episode_length=5, budget_per_query=1.0)
    e.reset(seed=0)
    flags = [e.step(0)[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lam": -1.0}, "lam must be"),
        ({"cost_scale": 0.0}, "cost_scale must be"),
        ({"models": ["a"]}, "models has 1 names"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_invalid_arguments(tables, kwargs: dict, match: str) -> None:
    q, c, x = tables
    with pytest.raises(ValueError, match=match):
        RoutingEnv(q, c, x, **kwargs)


def test_invalid_tables(tables) -> None:
    q, c, x = tables
    with pytest.raises(ValueError, match="two models"):
        RoutingEnv(q[:, :1], c[:, :1], x)
    with pytest.raises(ValueError, match=r"quality .* and cost .* must both be \(n, k\)"):
        RoutingEnv(q, c[:, :2], x)
    with pytest.raises(ValueError, match="features"):
        RoutingEnv(q, c, x[:5])
    bad = q.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RoutingEnv(bad, c, x)
    with pytest.raises(ValueError, match="episode_length"):
        BudgetedRoutingEnv(q, c, x, episode_length=0)
    e = RoutingEnv(q, c, x)
    e.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        e.step(9)


def test_public_api() -> None:
    assert set(env.__all__) == {
        "BUDGETED_ENV_ID",
        "CASCADE_ENV_ID",
        "ROUTING_ENV_ID",
        "BudgetedRoutingEnv",
        "CascadeRoutingEnv",
        "Featurizer",
        "FeaturizerError",
        "FeaturizerSpec",
        "PriceTable",
        "PriceTableError",
        "RecordSet",
        "RecordsError",
        "RoutingEnv",
        "load_records",
    }
