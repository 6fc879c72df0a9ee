"""`evaluate` reports cascade rows on records with answers, and none on records without."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from banditroute.bandit.cascade import Cascade
from banditroute.simulations.cascade import best_pair, cascade_data, frontier, online_pass
from banditroute.simulations.evaluate import EvalConfig, evaluate
from tests.conftest import synthetic_long

MODELS = ("small", "medium", "large", "huge")
CASCADES = {"cascade-agreement[pair]", "cascade[full]", "cascade[online]"}


def with_pred(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A ``pred`` letter per row: "A" (the gold) where the score is 1, another letter (or none) where it is 0."""
    rng = np.random.default_rng(seed)
    wrong = rng.choice(["B", "C", "D", None], size=len(df), p=[0.3, 0.3, 0.3, 0.1])
    return df.assign(pred=np.where(df.score > 0.5, "A", wrong))


def write(tmp_path: Path, answers: bool) -> Path:
    df = synthetic_long(150, models=MODELS)
    path = tmp_path / "recs.parquet"
    (with_pred(df) if answers else df).to_parquet(path)
    return path


def run(tmp_path: Path, answers: bool) -> dict:
    path = write(tmp_path, answers)
    cfg = EvalConfig(records=str(path), out=str(tmp_path / "out"), policies=["linucb"], dim=8, progress=False)
    return evaluate(cfg)


def test_records_with_answers_get_cascade_rows_and_curves(tmp_path: Path) -> None:
    rep = run(tmp_path, answers=True)
    assert set(rep["methods"]) >= CASCADES
    ref = rep["reference"]
    for name in CASCADES:
        m = rep["methods"][name]
        assert 0 <= m["quality"] <= 1 and m["cost_usd"] > 0
        assert m["v_b"] == pytest.approx(m["quality"] / ref["best_single_quality"])
        assert 1 <= m["stages_per_query"] <= 2 and m["stages_per_query"] <= m["calls_per_query"]
        assert m["stages"][-1] == [ref["best_single_model"]]  # escalation goes to the best single model
        assert sum(m["call_share"].values()) == pytest.approx(1.0)
        assert len(rep["curves"]["cost_quality"][name]["quality"]) == len(rep["curves"]["lambdas"])
    assert rep["methods"]["cascade[online]"]["steps"] == rep["dataset"]["n_train"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "cascade[full]" in md and "stages/query" in md


def test_records_without_answers_get_no_cascade_rows(tmp_path: Path) -> None:
    rep = run(tmp_path, answers=False)
    assert not any("cascade" in n for n in rep["methods"])
    assert "linucb[full]" in rep["methods"]


def test_pair_search_frontier_and_online_pass_on_the_train_split(tmp_path: Path) -> None:
    from banditroute.env.records import load_records

    rs = load_records(write(tmp_path, answers=True))
    X = np.column_stack([np.ones((len(rs), 2)) * 0.5, np.ones(len(rs))])
    d = cascade_data(rs, X, None)
    assert d is not None
    final = int(np.argmax(d.Q.mean(axis=0)))
    i, j = best_pair(d, final, cap=10.0)
    assert final not in (i, j) and i != j
    front = frontier(d, final)
    assert front and final not in front
    p = Cascade(rs.models, 3, stages=[[rs.models[i], rs.models[j]], [rs.models[final]]], cost_scale=0.01)
    info = online_pass(p, d, lam=0.1, seed=0)
    assert info["steps"] == len(rs) and 0 <= info["online_mean_quality"] <= 1
    assert p.stop_n.sum() > 0  # it learned its stop decision from feedback alone


@pytest.mark.parametrize("answers", [True, False])
def test_simulate_online_runs_a_cascade_from_feedback_only(tmp_path: Path, answers: bool) -> None:
    from banditroute.simulations.simulate import simulate

    path = write(tmp_path, answers)
    overrides = {
        "dim": 8,
        "steps": 200,
        "policies": ["cascade", "linucb"],
        "peers": [],
        "hyperparameters": {"cascade": {"stages": [["small", "medium"], ["large"]]}},
    }
    res = simulate("online", path, tmp_path / "sim", quick=True, overrides=overrides, progress=False)
    rows = {r["learner"]: r for r in res["tables"]["summary"]}
    assert "linucb" in rows
    if not answers:
        assert "cascade" not in rows
        assert any(r["peer"] == "cascade" for r in res["tables"]["skipped peers"])
        return
    row = rows["cascade"]
    assert row["steps"] == 200 and 2 <= row["calls_per_query"] <= 3 and 1 <= row["stages_per_query"] <= 2
    assert 0 <= row["quality"] <= 1 and row["cost_usd"] > 0
    assert "cascade" in res["plots"][0]["series"]


def test_the_two_stage_sweep_equals_a_replay_per_lambda(tmp_path: Path) -> None:
    from banditroute.bandit.cascade import replay
    from banditroute.env.records import load_records
    from banditroute.simulations.cascade import sweep

    rs = load_records(write(tmp_path, answers=True))
    X = np.column_stack([np.random.default_rng(0).random((len(rs), 2)), np.ones(len(rs))])
    d = cascade_data(rs, X, None)
    assert d is not None
    for how in ("vote", "last"):
        p = Cascade(rs.models, 3, stages=[["small", "medium"], ["huge"]], cost_scale=1e-3, final_answer=how)
        p.fit_full(d.X, d.Q, d.C, np.where(d.codes < 0, "", d.codes.astype(str)), d.lengths)
        lams = np.array([0.0, 0.01, 0.1, 1.0, 10.0])
        q, c = sweep(p, d, lams)
        for lam, qq, cc in zip(lams, q, c, strict=True):
            r = replay(p, d.X, d.codes, d.Q, d.C, d.lengths, float(lam))
            assert qq == pytest.approx(r.quality.mean()) and cc == pytest.approx(r.cost.mean())
