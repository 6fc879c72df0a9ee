"""Snapshots keep sufficient statistics only: derived inverses are left out and recomputed on load."""

from __future__ import annotations

import numpy as np
import pytest

from banditroute.bandit import make_policy
from banditroute.bandit.errors import StateError
from banditroute.bandit.registry import policy_class


@pytest.mark.parametrize("name", ["linucb", "lints", "shared-linucb", "shared-lints", "linear-eps-greedy"])
def test_sufficient_state_round_trip_matches_the_live_policy(name: str) -> None:
    p = make_policy(name, ["a", "b", "c"], 5)
    rng = np.random.default_rng(0)
    for i in range(60):
        x = rng.random(5)
        x[-1] = 1.0
        p.update(x, "abc"[i % 3], float(rng.random()), 0.01)
    s = p.sufficient_state()
    assert not {"A_inv", "A0_inv"} & set(s["arrays"])
    q = policy_class(name).from_sufficient_state(p.models, 5, p.hyperparameters(), s)
    full_p, full_q = p.state_dict()["arrays"], q.state_dict()["arrays"]
    assert set(full_p) == set(full_q)
    for k, v in full_p.items():
        np.testing.assert_allclose(full_q[k], v, rtol=1e-9, atol=1e-12, err_msg=k)
    X = rng.random((4, 5))
    np.testing.assert_allclose(q.estimates(X)[0], p.estimates(X)[0], rtol=1e-9)


def test_a_missing_source_array_is_a_state_error() -> None:
    p = make_policy("linucb", ["a", "b"], 3)
    s = p.sufficient_state()
    del s["arrays"]["A"]
    with pytest.raises(StateError, match="'A' is missing"):
        policy_class("linucb").from_sufficient_state(p.models, 3, p.hyperparameters(), s)


def test_a_full_state_loads_as_it_is() -> None:
    p = make_policy("linucb", ["a", "b"], 3)
    p.update(np.array([0.3, 0.2, 1.0]), "a", 0.9, 0.01)
    full = p.state_dict()
    q = policy_class("linucb").from_sufficient_state(p.models, 3, p.hyperparameters(), full)
    np.testing.assert_array_equal(q.state_dict()["arrays"]["A_inv"], full["arrays"]["A_inv"])
