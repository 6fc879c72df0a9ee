"""Decisions made together (service.decider) and logged together (service.decision_writes): each is the decision
``Policy.select`` would make, and each is logged whole before its id is answered."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from banditroute.bandit import LinUCB
from banditroute.env.features import Featurizer
from banditroute.service.decider import Ask, decide_all, draw, new_decision_id, uniform_of
from tests.service.conftest import ADMIN, MODELS, PROMPTS, LiveServer


def test_draw_is_generator_choice_at_the_same_uniform() -> None:
    rng = np.random.default_rng(0)
    for seed in range(200):
        p = rng.dirichlet(np.ones(4)) * rng.uniform(0.5, 2.0)  # unnormalised, as select hands it over
        choice = np.random.default_rng(seed).choice(4, p=p / p.sum())
        assert draw(p, np.random.default_rng(seed).random()) == choice


def test_decision_ids_carry_a_uniform_and_match_the_pattern() -> None:
    us = [uniform_of(new_decision_id("main")) for _ in range(2000)]
    assert all(0.0 <= u < 1.0 for u in us)
    assert 0.45 < float(np.mean(us)) < 0.55  # uniform, not a constant
    assert len(new_decision_id("main").split(".")[1]) == 32


class _Rt:
    """What decide_all reads of a runtime.Runtime."""

    def __init__(self, policy: Any, featurizer: Featurizer) -> None:
        self.policy, self.featurizer, self.version, self.gen, self.pid = policy, featurizer, 3, "1", "main"


def test_a_batch_decides_each_request_as_select_would(featurizer: Featurizer) -> None:
    policy = LinUCB(MODELS, 8, alpha=0.3, seed=0)
    X = featurizer.transform(PROMPTS)
    rng = np.random.default_rng(1)
    policy.fit_full(X, rng.uniform(size=(len(PROMPTS), 3)), np.tile([0.001, 0.004, 0.02], (len(PROMPTS), 1)))
    loop = asyncio.new_event_loop()
    asks = []
    for i, q in enumerate(PROMPTS[:12]):
        cands = ("small", "large") if i % 3 == 0 else None
        asks.append(Ask(new_decision_id("main"), q, None, cands, 0.5 * (i % 2), loop.create_future()))
    asks.append(Ask(new_decision_id("main"), None, X[5], None, 0.0, loop.create_future()))  # given features
    loop.close()
    choices = decide_all(_Rt(policy, featurizer), asks)
    for a, c in zip(asks, choices, strict=True):
        x = featurizer.transform([a.query])[0] if a.x is None else a.x
        np.testing.assert_allclose(c.x, x)
        p = policy.pmf_batch(x[None], a.lam, list(a.candidates) if a.candidates else None)[0]
        np.testing.assert_allclose(c.decision.pmf, p, rtol=1e-12, atol=1e-15)
        assert c.decision.index == draw(p, uniform_of(a.did))
        assert c.decision.propensity == pytest.approx(p[c.decision.index]) and c.decision.propensity > 0
        if a.candidates:
            assert c.decision.model in a.candidates
        q_est, c_est = policy.estimates(x[None])
        assert c.quality_estimate == pytest.approx(q_est[0, c.decision.index])
        assert c.cost_estimate == pytest.approx(c_est[0, c.decision.index])
        assert (c.version, c.gen) == (3, "1")


def test_concurrent_routes_are_each_logged_and_a_bad_one_fails_alone(
    service: LiveServer, policy: str, redis_url: str
) -> None:
    async def burst() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=30) as client:
            bodies: list[dict[str, Any]] = [{"policy": policy, "query": PROMPTS[i]} for i in range(40)]
            bodies[7] = {"policy": policy, "query": PROMPTS[7], "candidates": ["no-such-model"]}
            return await asyncio.gather(*(client.post("/v1/route", json=b) for b in bodies))

    responses = asyncio.run(burst())
    assert responses[7].status_code == 422 and "no-such-model" in responses[7].text
    ok = [r for i, r in enumerate(responses) if i != 7]
    assert all(r.status_code == 200 for r in ok), [r.text for r in ok if r.status_code != 200]
    assert len({r.json()["decision_id"] for r in ok}) == 39
    rd = redis.Redis.from_url(redis_url)
    for r in ok:
        d = r.json()
        logged = rd.hgetall(f"br:{{{policy}}}:dec:{d['decision_id']}")
        assert logged[b"model"].decode() == d["model"]
        assert float(logged[b"propensity"]) == pytest.approx(d["pmf"][d["model"]])
        assert json.loads(logged[b"pmf"]) == pytest.approx(d["pmf"])
    assert rd.xlen(f"br:{{{policy}}}:decisions") == 39
