"""Every scenario runs on a small slice (quick sizes); results.json holds what report.md shows."""

from __future__ import annotations

import json
from itertools import takewhile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from banditroute.cli import app
from banditroute.simulations.report import fmt
from banditroute.simulations.simulate import SCENARIOS, load_config, parse_overrides, simulate


def _md_table(report: str, title: str) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the markdown table under ``## title``."""
    lines = report.split(f"## {title}\n\n", 1)[1].splitlines()
    table = takewhile(lambda line: line.startswith("|"), lines)
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in table]
    return cells[0], cells[2:]


def _plausible_online(res: dict) -> None:
    oracle = res["reference"]["oracle_quality"]
    for r in res["tables"]["summary"]:
        assert 0.0 <= r["quality"] <= oracle + 1e-12, r
        assert r["final_regret"] >= 0 and r["regret_per_step"] == pytest.approx(r["final_regret"] / r["steps"])


def _plausible_feedback_noise(res: dict) -> None:
    rows = {r["setting"]: r for r in res["tables"]["summary"]}
    # exact, immediate evaluator feedback: every step's score is applied but the last one's (the stream ends first)
    assert rows["clean"]["feedback_applied"] == rows["clean"]["feedback_sent"] - 1 == res["config"]["steps"] - 1
    assert rows["both-user-weighted-0.3"]["feedback_sent"] == 2 * res["config"]["steps"]
    assert rows["late-and-lost"]["feedback_applied"] < 0.8 * rows["late-and-lost"]["feedback_sent"]  # 30% lost


def _plausible_drift(res: dict) -> None:
    steps, window = res["config"]["steps"], res["config"]["window"]
    for r in res["tables"]["summary"]:
        assert 0.0 <= r["quality_before"] <= 1.0 and 0.0 <= r["quality_after"] <= 1.0
        assert r["steps_to_recover"] is None or window <= r["steps_to_recover"] <= steps // 2


def _plausible_budget(res: dict) -> None:
    rows = {r["method"]: r for r in res["tables"]["summary"]}
    free = next(r for name, r in rows.items() if name.startswith("unconstrained"))
    assert rows["budget pacer"]["mean_cost_usd"] < free["mean_cost_usd"]


def _plausible_scaling(res: dict) -> None:
    rows = res["tables"]["by pool size"]
    for r in rows:
        assert r["random"] <= r["r_o(0.25)"] <= r["r_o(0.5)"] <= r["r_o(0.75)"] <= r["oracle"]
        assert r["best_single"] <= r["oracle"] and r["learned_router"] <= r["oracle"]
    assert sum(r["learned_router"] for r in rows) > sum(r["random"] for r in rows)


def _plausible_ope(res: dict) -> None:
    seeds = res["tables"]["per seed"]
    for c in res["tables"]["coverage"]:
        assert c["coverage"] == sum(r[f"{c['estimator']}_covers"] for r in seeds) / len(seeds)


def _plausible_ab(res: dict) -> None:
    arms = res["tables"]["arms (from the service's experiment report)"]
    assert sum(a["decisions"] for a in arms) == min(res["config"]["steps"], res["dataset"]["n_test"])
    for a in arms:
        assert a["quality (service)"] == pytest.approx(a["quality (client tally)"], abs=1e-9)


PLAUSIBLE = {
    "online": _plausible_online,
    "feedback-noise": _plausible_feedback_noise,
    "drift": _plausible_drift,
    "budget": _plausible_budget,
    "scaling": _plausible_scaling,
    "ope": _plausible_ope,
    "ab": _plausible_ab,
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_runs_quick_and_reports_its_results(scenario: str, mmlu_slice: Path, tmp_path: Path) -> None:
    res = simulate(scenario, mmlu_slice, tmp_path, seed=1, quick=True, overrides={"dim": 16}, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == json.loads(json.dumps(res))
    assert saved["scenario"] == scenario and saved["seed"] == 1 and saved["config"]["dim"] == 16
    assert (tmp_path / "config.toml").read_text().startswith("records = ")
    report = (tmp_path / "report.md").read_text()
    for table, rows in saved["tables"].items():
        if rows:  # every cell of report.md's table is results.json's figure
            header, cells = _md_table(report, table)
            assert header == list(rows[0])
            assert cells == [[fmt(r.get(h)) for h in header] for r in rows]
    for check, ok in saved.get("checks", {}).items():
        assert ok, check
        assert f"- check `{check}`: True" in report
    for plot in saved["plots"]:
        assert f"![{plot['title']}]({plot['file']})" in report
        assert (tmp_path / plot["file"]).stat().st_size > 5000
    assert res["dataset"]["n_test"] == 120
    PLAUSIBLE[scenario](saved)


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
