"""`banditroute evaluate` end to end on a small slice of the bundled data."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from banditroute.bandit import LinUCB, registry
from banditroute.cli import app
from banditroute.simulations.evaluate import EvalConfig, evaluate
from banditroute.simulations.methods import learning_policies

REQUIRED = {"quality", "cost_usd", "v_b", "regret", "aiq", "cheapest_within_1pt_cost_share", "call_share"}


@pytest.fixture(scope="module")
def report(mmlu_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("eval")
    rep = evaluate(EvalConfig(records=str(mmlu_slice), out=str(out), dim=16, progress=False))
    return rep, out


def test_report_has_every_method_and_metric(report) -> None:
    rep, out = report
    assert set(rep) >= {"dataset", "methods", "curves"}
    assert set(rep["dataset"]) >= {"path", "models", "n_train", "n_test"}
    assert rep["dataset"]["n_train"] == 280 and rep["dataset"]["n_test"] == 120
    names = set(rep["methods"])
    assert {"oracle", "random", "best_single", "supervised_ridge"} <= names
    assert {f"single:{m}" for m in rep["dataset"]["models"]} <= names
    assert rep["config"]["policies"] == learning_policies()  # no --policies: every registered learner
    for p in learning_policies():
        assert {f"{p}[full]", f"{p}[online]"} <= names
    for name, m in rep["methods"].items():
        assert set(m) >= REQUIRED, name
        assert sum(m["call_share"].values()) == pytest.approx(1.0)
        assert 0 <= m["quality"] <= 1
    assert json.loads((out / "report.json").read_text())["methods"].keys() == rep["methods"].keys()
    assert (out / "report.md").read_text().startswith("# Offline evaluation")
    for png in ("cost_quality.png", "call_shares.png"):
        assert (out / png).stat().st_size > 10_000


def test_reference_figures_are_consistent(report) -> None:
    rep, _ = report
    m = rep["methods"]
    ref = rep["reference"]
    best = ref["best_single_model"]
    assert m["best_single"]["quality"] == pytest.approx(m[f"single:{best}"]["quality"])
    assert m["best_single"]["v_b"] == pytest.approx(1.0)
    assert m["oracle"]["regret"] == pytest.approx(0.0)
    assert m["oracle"]["quality"] >= max(v["quality"] for v in m.values()) - 1e-12
    assert m["random"]["call_share_entropy_bits"] == pytest.approx(math.log2(6))
    lam = rep["curves"]["lambdas"]
    oc = rep["curves"]["cost_quality"]["oracle"]
    assert len(oc["cost_usd"]) == len(lam) and oc["cost_usd"][-1] < oc["cost_usd"][0]  # lambda buys cheapness


def test_learned_routers_beat_random(report) -> None:
    rep, _ = report
    m = rep["methods"]
    assert m["linucb[full]"]["quality"] > m["random"]["quality"] + 0.1
    assert m["supervised_ridge"]["quality"] > m["random"]["quality"] + 0.1


class Throwaway(LinUCB):
    """A policy registered by the test only: LinUCB under another name."""

    name = "throwaway"


def test_a_registered_policy_is_evaluated_with_no_edit_to_simulations(
    mmlu_slice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry.POLICIES, Throwaway.name, Throwaway)
    for name in learning_policies():  # keep the run short: linucb and the newcomer are the only learners
        if name not in ("linucb", Throwaway.name):
            monkeypatch.delitem(registry.POLICIES, name)
    assert {"random", "best-single", "oracle"} <= set(registry.POLICIES)  # baselines are not fitted as learners
    rep = evaluate(EvalConfig(records=str(mmlu_slice), out=str(tmp_path), dim=16, progress=False))
    fitted = {n for n in rep["methods"] if n.endswith(("[full]", "[online]")) and not n.startswith("cascade")}
    assert fitted == {"linucb[full]", "linucb[online]", "throwaway[full]", "throwaway[online]"}  # (+ cascades)
    assert rep["config"]["policies"] == ["linucb", "throwaway"]
    # the registry's class was fitted (the same algorithm and seed as linucb), and the report shows it
    for how in ("full", "online"):
        assert rep["methods"][f"throwaway[{how}]"]["quality"] == rep["methods"][f"linucb[{how}]"]["quality"]
    assert "| throwaway[online] |" in (tmp_path / "report.md").read_text()


def test_the_report_writer_reads_the_report_dict_only(report) -> None:
    rep, out = report
    code = (
        "import sys; import banditroute.simulations.report as r; "
        "assert 'banditroute.simulations.evaluate' not in sys.modules, 'report imports evaluate'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    from banditroute.simulations.report import write_evaluation_report

    again = out / "again"
    again.mkdir()
    write_evaluation_report(json.loads((out / "report.json").read_text()), again)  # from the JSON, nothing else
    assert (again / "report.md").read_text() == (out / "report.md").read_text()


def test_two_model_pools_get_routellm_metrics(tmp_path: Path, mmlu_slice: Path) -> None:
    df = pd.read_parquet(mmlu_slice)
    df = df[df.model.isin(["gpt-4o-2024-05-13", "Meta-Llama-3_1-8B-Instruct"])]
    path = tmp_path / "two.parquet"
    df.to_parquet(path)
    (tmp_path / "prices.csv").write_bytes((mmlu_slice.parent / "prices.csv").read_bytes())
    rep = evaluate(EvalConfig(records=str(path), out=str(tmp_path / "o"), dim=16, policies=["linucb"], progress=False))
    assert rep["reference"]["strong_model"] == "gpt-4o-2024-05-13"
    for name in ("random", "oracle", "supervised_ridge", "linucb[full]"):
        m = rep["methods"][name]
        assert {"apgr", "cpt50", "cpt80"} <= set(m)
        assert 0.0 <= m["cpt50"] <= m["cpt80"] <= 1.0
    assert rep["methods"]["oracle"]["apgr"] > rep["methods"]["random"]["apgr"]


def test_cli(mmlu_slice: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--records",
            str(mmlu_slice),
            "--out",
            str(tmp_path),
            "--dim",
            "16",
            "--policies",
            "linucb,ucb1",
            "--hyper",
            '{"linucb": {"alpha": 0.2}}',
        ],
    )
    assert result.exit_code == 0, result.output
    assert "linucb[online]" in result.output and "wrote" in result.output
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["methods"]["linucb[full]"]["hyperparameters"]["alpha"] == 0.2
    assert "lints[full]" not in rep["methods"]


def test_cli_refuses_a_bad_records_file(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("query_id,model\nq,m\n")
    result = CliRunner().invoke(app, ["evaluate", "--records", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "error:" in result.output and "missing column" in result.output and "bad.csv" in result.output
