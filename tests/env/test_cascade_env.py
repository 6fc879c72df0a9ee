"""The cascade environment: env checkers, costs over stages, masking, the answer's score, no-argument gym.make."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from banditroute.env import BUDGETED_ENV_ID, CASCADE_ENV_ID, ROUTING_ENV_ID, CascadeRoutingEnv
from banditroute.env.defaults import (
    BUNDLED_RECORDS,
    RECORDS_ENV_VAR,
    default_candidates,
    default_records,
    prepared_split,
)

MODELS = ["cheap", "mid", "good", "best"]


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 queries x 4 models with answer letters: the better the model, the likelier its letter is the gold."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        gold = "ABCD"[i % 4]
        for j, m in enumerate(MODELS):
            right = rng.random() < 0.4 + 0.15 * j
            pred = gold if right else ("" if rng.random() < 0.1 else rng.choice(list("ABCD")))
            rows.append(
                {
                    "query_id": f"q{i}",
                    "benchmark": "toy/" + ("math" if i % 2 else "law"),
                    "prompt": f"question {i} about {'numbers' if i % 2 else 'contracts'} " * (1 + i % 3),
                    "model": m,
                    "score": float(pred == gold),
                    "cost_usd": 1e-5 * 4**j * (1 + i % 3),
                    "pred": pred,
                    "output_chars": 50 + 40 * j + i,
                }
            )
    path = tmp_path_factory.mktemp("cascade") / "records.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def make(records: Path, **kwargs: object) -> CascadeRoutingEnv:
    e = gym.make(CASCADE_ENV_ID, records=str(records), features="lexical", **kwargs)
    return e.unwrapped  # type: ignore[return-value]


@pytest.mark.parametrize(
    "kwargs", [{}, {"groups": [["cheap", "mid", "good"], ["best"]], "returns": "compact"}, {"split": "test"}]
)
def test_both_env_checkers_pass_with_warnings_as_errors(records: Path, kwargs: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e = make(records, **kwargs)
        gym_check_env(e)
        sb3_check_env(e, warn=True)
    assert e.models == tuple(MODELS)  # the default candidates, cheapest first


def test_costs_add_up_over_stages_and_the_return_is_score_minus_priced_cost(records: Path) -> None:
    e = make(records, lam=0.5)
    _, info = e.reset(seed=3)
    i = info["query_index"]
    rewards = []
    for call, stage in ((0, 1), (2, 2), (3, 3)):
        _, r, term, _, info = e.step(call)
        rewards.append(r)
        assert not term and info["stages"] == stage
        assert r == pytest.approx(-0.5 * e.cost[i, call] / e.cost_scale)
    assert info["cost"] == pytest.approx(e.cost[i, [0, 2, 3]].sum())
    _, r, term, _, info = e.step(4 + 2)  # return model 2's answer
    assert term and info["returned_model"] == 2 and info["calls"] == 3 and info["stages"] == 3
    assert r == info["quality"] == e.quality[i, 2]
    assert sum(rewards) + r == pytest.approx(e.quality[i, 2] - 0.5 * e.cost[i, [0, 2, 3]].sum() / e.cost_scale)
    # a group called in one step: one stage, its members' costs together
    g = make(records, groups=[["cheap", "mid", "good"], ["best"]], returns="compact", lam=0.5)
    g.reset(seed=3)
    _, r, _, _, info = g.step(0)
    assert info["stages"] == 1 and g.called.tolist() == [True, True, True, False]
    assert info["cost"] == pytest.approx(g.cost[i, :3].sum()) and r == pytest.approx(-0.5 * info["cost"] / g.cost_scale)


def test_masks_and_invalid_actions_become_the_documented_default(records: Path) -> None:
    e = make(records)
    e.reset(seed=0)
    assert e.action_masks().tolist() == [True] * 4 + [False] * 5  # nothing to return before a call
    _, r, term, _, info = e.step(8)  # "return the plurality" before any call: the first group is called
    assert info["invalid_action"] and info["action_taken"] == 0 and not term
    assert r == pytest.approx(-e.lam * info["cost"] / e.cost_scale)
    assert e.action_masks().tolist() == [False, True, True, True, True, False, False, False, True]
    _, r, term, _, info = e.step(0)  # calling model 0 again: returns the plurality instead, unpenalised
    assert info["invalid_action"] and info["action_taken"] == 8 and term
    assert info["returned_model"] == 0 and r == e.quality[info["query_index"], 0]


def test_plurality_and_the_score_of_a_shared_answer() -> None:
    """The plurality's score is the record score of the dearest called model that gave it (a model's records
    may carry its own gold key); ties go to the dearest; a missing answer agrees with nothing."""
    answers = np.array([["A", "A", "B", ""], ["A", "B", "C", "D"], ["", "", "", ""]], dtype=object)
    quality = np.array([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    cost = np.tile([1.0, 2.0, 3.0, 4.0], (3, 1)) * 1e-4
    e = CascadeRoutingEnv(quality, cost, np.zeros((3, 2)), answers=answers, lam=0.0)
    ends = []
    for i in range(3):
        e.reset(seed=0, options={"query_index": i})
        for j in range(4):
            obs, *_ = e.step(j)
        _, r, _, _, info = e.step(8)
        ends.append((info["returned_model"], r))
        if i == 0:  # called 4 | plurality agreement 4 | missing 4 | lengths 4 | 6 pairs | top1 top2 distinct ...
            tail = obs[2:]
            assert tail[4:8].tolist() == [1, 1, 0, 0] and tail[8:12].tolist() == [0, 0, 0, 1]
            assert tail[16:22].tolist() == [1, 0, 0, 0, 0, 0]  # only the pair (0, 1) agrees
            assert tail[22:25] == pytest.approx([0.5, 0.25, 0.5])
    assert ends == [(1, 1.0), (3, 1.0), (3, 0.0)]


def test_same_seed_same_rollout_and_spawned_copies_are_independent(records: Path) -> None:
    def rollout(e: CascadeRoutingEnv, seed: int) -> list:
        out, rng = [], np.random.default_rng(seed)
        e.reset(seed=seed)
        for _ in range(40):
            a = int(rng.choice(np.flatnonzero(e.action_masks())))
            obs, r, term, _, info = e.step(a)
            out.append((obs.tobytes(), r, info["query_index"]))
            if term:
                e.reset()
        return out

    e = make(records)
    assert rollout(e, 1) == rollout(make(records), 1) != rollout(make(records), 2)
    twin = e.spawn()
    e.reset(seed=0)
    e.step(0)
    twin.reset(seed=5)
    assert twin.called.sum() == 0 and e.called.sum() == 1
    assert rollout(twin, 1) == rollout(make(records), 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"answers": None}, "exactly one of answers"),
        ({"groups": [[0, 1]]}, "cover every one"),
        ({"groups": [["nope"], [0, 1, 2]]}, "unknown model"),
        ({"returns": "some"}, "returns must be"),
        ({"lengths": -np.ones((5, 3))}, "lengths"),
    ],
)
def test_invalid_arguments(kwargs: dict, match: str) -> None:
    base = {"answers": np.full((5, 3), "A", dtype=object), "models": ["a", "b", "c"]}
    with pytest.raises(ValueError, match=match):
        CascadeRoutingEnv(np.ones((5, 3)), np.ones((5, 3)), np.zeros((5, 2)), **{**base, **kwargs})
    with pytest.raises(ValueError, match="at most 6"):
        CascadeRoutingEnv(np.ones((5, 7)), np.ones((5, 7)), np.zeros((5, 2)), answers=np.full((5, 7), "A"))


def test_records_without_answers_and_unknown_candidates_are_refused(records: Path, tmp_path: Path) -> None:
    df = pd.read_parquet(records).drop(columns=["pred"])
    df.to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(ValueError, match="carry no answers"):
        make(tmp_path / "plain.parquet")
    with pytest.raises(ValueError, match="not among the records' models"):
        make(records, candidates=["cheap", "gpt-9"])
    with pytest.raises(ValueError, match="split must be"):
        make(records, split="dev")


def test_default_candidates_are_the_best_model_and_the_three_best_cheaper(mmlu_slice: Path) -> None:
    e = make(mmlu_slice)
    assert set(e.models) == {
        "gemini-1.5-flash-002",
        "Meta-Llama-3_1-8B-Instruct",
        "Meta-Llama-3_1-70B-Instruct",
        "gpt-4o-2024-05-13",
    }  # on mmlu_pro-29: gemini-1.5-flash, Llama-3.1-70B-Instruct, gemini-1.5-pro, gpt-4o
    train = prepared_split(mmlu_slice, features="lexical")[1].select_models(list(e.models))
    assert np.all(np.diff(train.cost.mean(axis=0)) > 0)  # cheapest first
    assert default_candidates(train)[-1] == "gpt-4o-2024-05-13"


def test_no_argument_gym_make_for_all_three_ids(mmlu_slice: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No arguments: the default records (here a slice of the bundled ones, named by the documented variable, so
    the test stays fast), the default featurizer fitted on the train split once for the three envs."""
    assert default_records() == BUNDLED_RECORDS and BUNDLED_RECORDS.exists()
    monkeypatch.setenv(RECORDS_ENV_VAR, str(mmlu_slice))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        envs = {i: gym.make(i) for i in (ROUTING_ENV_ID, BUDGETED_ENV_ID, CASCADE_ENV_ID)}
    routing, budgeted, cascade = (envs[i].unwrapped for i in (ROUTING_ENV_ID, BUDGETED_ENV_ID, CASCADE_ENV_ID))
    assert routing.quality.shape == budgeted.quality.shape == (280, 6)
    assert np.array_equal(routing.features, budgeted.features) and np.array_equal(routing.features, cascade.features)
    assert len(cascade.models) == 4 and cascade.models[-1] == "gpt-4o-2024-05-13"
    for e in envs.values():
        obs, _ = e.reset(seed=0)
        assert e.observation_space.contains(obs)
        e.step(0)
    test = gym.make(ROUTING_ENV_ID, split="test").unwrapped
    assert len(test.quality) == 120 and test.cost_scale == routing.cost_scale  # the train split's, for both
