"""Every scenario runs on a small slice (quick sizes); results.json holds what report.md shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from banditroute.cli import app
from banditroute.simulations.simulate import SCENARIOS, load_config, parse_overrides, simulate


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_runs_quick_and_reports_its_results(scenario: str, mmlu_slice: Path, tmp_path: Path) -> None:
    res = simulate(scenario, mmlu_slice, tmp_path, seed=1, quick=True, overrides={"dim": 16}, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["scenario"] == scenario and saved["seed"] == 1 and saved["config"]["dim"] == 16
    assert (tmp_path / "config.toml").read_text().startswith("records = ")
    report = (tmp_path / "report.md").read_text()
    for table, rows in saved["tables"].items():
        if rows:
            assert f"## {table}" in report
            first = next(iter(rows[0].values()))
            assert str(first)[:4] in report  # the table's figures are the report's
    for plot in saved["plots"]:
        assert (tmp_path / plot["file"]).stat().st_size > 5000
    for check, ok in saved.get("checks", {}).items():
        assert ok, check
    assert res["dataset"]["n_test"] == 120


def test_online_learners_beat_random_and_peers_are_reported(mmlu_slice: Path, tmp_path: Path) -> None:
    res = simulate("online", mmlu_slice, tmp_path, quick=True, overrides={"dim": 16, "steps": 600}, progress=False)
    rows = {r["learner"]: r for r in res["tables"]["summary"]}
    assert rows["linucb"]["quality"] > rows["random"]["quality"]
    assert rows["linucb"]["final_regret"] < rows["random"]["final_regret"]
    names = set(rows) | {r["peer"] for r in res["tables"]["skipped peers"]}
    assert {"vw-squarecb", "vw-epsilon", "mabwiser-linucb"} <= names  # run, or skipped with the reason


def test_budget_pacer_tracks_its_target(mmlu_slice: Path, tmp_path: Path) -> None:
    res = simulate("budget", mmlu_slice, tmp_path, quick=True, overrides={"dim": 16, "steps": 1500}, progress=False)
    pacer = next(r for r in res["tables"]["summary"] if r["method"] == "budget pacer")
    free = next(r for r in res["tables"]["summary"] if r["method"].startswith("unconstrained"))
    assert abs(pacer["deviation_from_target"]) < 0.10
    assert free["mean_cost_usd"] > pacer["mean_cost_usd"]


def test_config_overrides_and_errors() -> None:
    assert parse_overrides(["steps=10", "lam=0.5", "policies=['linucb']", "name=abc"]) == {
        "steps": 10,
        "lam": 0.5,
        "policies": ["linucb"],
        "name": "abc",
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["steps"])
    with pytest.raises(ValueError, match="unknown scenario"):
        load_config("nope")
    assert load_config("online", quick=True)["steps"] == 300


def test_cli_simulate_and_demo(mmlu_slice: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        [
            "simulate",
            "scaling",
            "--records",
            str(mmlu_slice),
            "--out",
            str(tmp_path / "s"),
            "--quick",
            "--set",
            "dim=16",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "pool_size=2" in r.output
    r = CliRunner().invoke(
        app, ["demo", "--records", str(mmlu_slice), "--out", str(tmp_path / "d"), "--steps", "60", "--rl-steps", "0"]
    )
    assert r.exit_code == 0, r.output
    assert "arm linucb" in r.output and "oracle on the same queries" in r.output
    assert "check service_equals_client_tally: True" in r.output
    r = CliRunner().invoke(app, ["simulate", "warp", "--out", str(tmp_path / "w")])
    assert r.exit_code == 2 and "unknown scenario" in r.output
