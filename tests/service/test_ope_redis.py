"""OPE reads the service's own decision log from Redis."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from banditroute.cli import app
from tests.service.conftest import route, wait_applied


def test_ope_from_the_service_decision_log(admin: httpx.Client, policy: str, redis_url: str, tmp_path: Path) -> None:
    for i in range(60):
        d = route(admin, query=f"algebra proof question {i}" if i % 2 else f"court statute {i}", policy=policy).json()
        admin.post(
            "/v1/feedback",
            json={
                "decision_id": d["decision_id"],
                "source": "evaluator",
                "score": 1.0 if d["model"] != "medium" else 0.0,
            },
        )
    wait_applied(admin, policy)
    (tmp_path / "cand.zip").write_bytes(admin.get(f"/v1/policies/{policy}/export").content)
    r = CliRunner().invoke(
        app,
        [
            "ope",
            "--decisions",
            redis_url,
            "--policy-id",
            policy,
            "--policy",
            str(tmp_path / "cand.zip"),
            "--bootstrap",
            "100",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "60 logged decisions" in r.output and "snips" in r.output
