"""calibrate_dual: the frozen dual price at which a deterministic agent spends its budget on training records."""

from __future__ import annotations

import numpy as np
import pytest

from banditroute.env.budgeted_env import BudgetedRoutingEnv, calibrate_dual, spend_pace

N, D = 200, 3
COST = np.tile([0.001, 0.003], (N, 1))  # cheap, dear
QUALITY = np.tile([0.4, 0.9], (N, 1))
FEATURES = np.random.default_rng(0).uniform(-1, 1, size=(N, D))


def price_sensitive(obs: np.ndarray) -> int:
    """Calls the dear model on the queries whose first feature exceeds the dual price (observation's last entry,
    0.5 + dual / (2 dual_max), rescaled to [-1, 1]): the higher the price, the fewer dear calls."""
    price = 4.0 * float(obs[-1]) - 2.0  # [-2, 2]
    return int(float(obs[0]) * 2.0 > price)


def test_the_calibrated_price_spends_the_budget() -> None:
    kw = {"episode_length": 16, "budget_per_query": 0.002, "dual_max": 10.0}
    dual, pace = calibrate_dual(price_sensitive, QUALITY, COST, FEATURES, steps=400, iterations=10, **kw)
    assert -10.0 < dual < 10.0 and pace == pytest.approx(1.0, abs=0.05)
    env = BudgetedRoutingEnv(QUALITY, COST, FEATURES, initial_dual=dual, dual_lr=0.0, **kw)
    assert spend_pace(price_sensitive, env, 400) == pytest.approx(pace)  # frozen: the same pace again


def test_a_budget_out_of_reach_gives_the_bound() -> None:
    def cheap(obs: np.ndarray) -> int:
        return 0

    dual, pace = calibrate_dual(cheap, QUALITY, COST, FEATURES, steps=50, budget_per_query=0.002, episode_length=8)
    assert dual == -10.0 and pace == pytest.approx(0.5)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="steps must be >= 1"):
        calibrate_dual(price_sensitive, QUALITY, COST, FEATURES, steps=0)
