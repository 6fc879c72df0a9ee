"""The command's shape: every group is listed, help is fast to reach, and serving needs no [rl] extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli.conftest import run

GROUPS = ("serve", "policy", "evaluate", "fit", "train-rl", "simulate", "ope", "demo")


def test_help_lists_every_command_group() -> None:
    r = run("--help")
    assert r.exit_code == 0, r.output
    for name in GROUPS:
        assert name in r.output


@pytest.mark.parametrize("args", [("serve", "--help"), ("policy", "--help"), ("policy", "export", "--help")])
def test_serve_and_policy_help(args: tuple[str, ...]) -> None:
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "Usage" in r.output


def test_serve_and_policy_import_without_the_rl_and_onnx_extras() -> None:
    """With torch, SB3, onnx and onnxruntime unimportable, the CLI, the service app and the policy commands load
    (a fresh interpreter, so no earlier test has imported them already)."""
    code = """
import sys
for m in ("torch", "stable_baselines3", "onnx", "onnxscript", "onnxruntime"):
    sys.modules[m] = None
import banditroute.cli.policy, banditroute.cli.serve, banditroute.service.app, banditroute.service.runtime
from banditroute.cli import app
from banditroute.service.app import create_app
from banditroute.service.config import Settings
create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
try:
    app(["policy", "--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "export" in r.stdout and "import" in r.stdout


def test_help_loads_no_heavy_machinery() -> None:
    heavy = "('torch', 'numpy', 'httpx', 'uvicorn')"
    code = f"import sys, banditroute.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
