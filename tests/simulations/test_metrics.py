from __future__ import annotations

import numpy as np
import pytest

from banditroute.simulations.metrics import (
    STRONG_SHARES,
    aiq,
    apgr,
    cheapest_within,
    cpt,
    entropy_bits,
    strong_share_curve,
    upper_hull,
)


def test_upper_hull_is_non_decreasing_and_concave() -> None:
    c = np.array([1.0, 2.0, 3.0, 4.0, 2.5])
    q = np.array([0.5, 0.55, 0.9, 0.85, 0.6])
    hc, hq = upper_hull(c, q)
    assert list(hc) == [1.0, 3.0] and list(hq) == [0.5, 0.9]  # 2.0 and 2.5 lie under the chord, 4.0 is dominated


def test_aiq_of_a_flat_router_and_of_a_lone_expensive_model() -> None:
    assert aiq(np.array([1.0, 5.0]), np.array([0.7, 0.7]), 1.0, 5.0) == pytest.approx(0.7)
    assert aiq(np.array([5.0]), np.array([0.9]), 1.0, 5.0) == pytest.approx(0.0, abs=1e-3)
    # linear from (1, 0.5) to (5, 0.9): mean 0.7
    assert aiq(np.array([1.0, 5.0]), np.array([0.5, 0.9]), 1.0, 5.0) == pytest.approx(0.7, abs=1e-6)


def test_apgr_and_cpt_follow_routellm() -> None:
    weak, strong = 0.6, 0.8
    linear = weak + (strong - weak) * STRONG_SHARES  # a random router
    assert apgr(linear, weak, strong) == pytest.approx(0.5)
    assert cpt(linear, weak, strong, 0.5) == pytest.approx(0.5)
    assert cpt(linear, weak, strong, 0.8) == pytest.approx(0.8)
    perfect = np.full(11, strong)
    assert apgr(perfect, weak, strong) == pytest.approx(1.0)
    assert cpt(perfect, weak, strong, 0.8) == 0.0
    assert cpt(np.full(11, weak), weak, strong, 0.5) == 1.0


def test_strong_share_curve_routes_the_largest_margins_first() -> None:
    q_strong = np.array([1.0, 1.0, 0.0, 0.0])
    q_weak = np.array([0.0, 0.0, 0.0, 1.0])
    margin = np.array([1.0, 0.9, 0.0, -1.0])  # perfect ranking
    curve = strong_share_curve(margin, q_strong, q_weak, np.random.default_rng(0))
    assert curve[0] == pytest.approx(0.25) and curve[5] == pytest.approx(0.75) and curve[-1] == pytest.approx(0.5)


def test_cheapest_within_and_entropy() -> None:
    assert cheapest_within(np.array([3.0, 1.0, 2.0]), np.array([0.9, 0.7, 0.895]), 0.9) == 2
    assert cheapest_within(np.array([1.0]), np.array([0.5]), 0.9) is None
    assert entropy_bits(np.array([0.5, 0.5])) == pytest.approx(1.0)
    assert entropy_bits(np.array([1.0, 0.0])) == 0.0
