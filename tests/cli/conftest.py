"""Helpers of the CLI tests: the live Redis and service fixtures are the service tests' own (a real Redis and
uvicorn in a thread, nothing mocked), and one assertion for the shape of a user-mistake message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from banditroute.bandit import LinUCB, export
from banditroute.cli import app
from tests.service.conftest import admin, artifact, featurizer, policy, redis_server, redis_url, service

__all__ = ["admin", "artifact", "featurizer", "policy", "redis_server", "redis_url", "service"]


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """``banditroute ARGS`` in this process."""
    return CliRunner().invoke(app, list(args), env=env)


def assert_user_error(result: Result, *needles: str) -> str:
    """The result is one ``error: <problem>; <fix>`` line on stderr, exit code 2, no traceback; it names every
    needle. Returns the line."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ") and "; " in line, line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


@pytest.fixture
def candidate(tmp_path: Path) -> Path:
    """A small exported LinUCB over models a, b, c with 2-dim contexts."""
    p = LinUCB(["a", "b", "c"], 2, alpha=0.1, seed=0)
    p.fit_full(np.array([[1.0, 1.0], [-1.0, 1.0]]), np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.zeros((2, 3)))
    path = tmp_path / "cand.zip"
    export(p, path)
    return path
