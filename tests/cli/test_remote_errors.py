"""User mistakes against a live service and a live Redis (real processes from the service tests' fixtures): a
refused or missing API key, an unknown policy id, an existing policy, a Redis log with nothing to evaluate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import assert_user_error, run
from tests.service.conftest import ADMIN, ROUTER, LiveServer


@pytest.mark.parametrize(("key", "state"), [("wrong-key-0123456789", "was refused"), (ROUTER, "was refused")])
def test_api_key_refused(service: LiveServer, policy: str, key: str, state: str, tmp_path: Path) -> None:
    r = run("policy", "export", policy, "--url", service.url, "--api-key", key, "--out", str(tmp_path / "a.zip"))
    line = assert_user_error(r, f"the API key {state}", service.url, "--api-key", "BANDITROUTE_API_KEY", "'admin'")
    assert key not in line and key[:6] not in line


def test_api_key_missing(service: LiveServer, policy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BANDITROUTE_API_KEY", raising=False)
    r = run("policy", "import", str(tmp_path / "x"), "--id", "x", "--onnx", "--url", service.url)
    assert_user_error(r, "train-rl output directory")  # checked locally before anything is sent
    r = run("policy", "export", policy, "--url", service.url, "--out", str(tmp_path / "a.zip"))
    assert_user_error(r, "the API key is missing", "--api-key")


def test_api_key_from_the_environment(service: LiveServer, policy: str, tmp_path: Path) -> None:
    r = run("policy", "export", policy, "--url", service.url, "--out", str(tmp_path / "a.zip"), env={
        "BANDITROUTE_API_KEY": ADMIN,
    })  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a.zip").stat().st_size > 0


def test_unknown_policy_through_the_service(service: LiveServer, tmp_path: Path) -> None:
    r = run("policy", "export", "ghost", "--url", service.url, "--api-key", ADMIN, "--out", str(tmp_path / "a.zip"))
    assert_user_error(r, "unknown policy 'ghost'", service.url, "policy id")
    assert not (tmp_path / "a.zip").exists()


def test_unknown_policy_in_redis(redis_url: str, tmp_path: Path) -> None:
    r = run("policy", "export", "ghost", "--redis-url", redis_url, "--out", str(tmp_path / "a.zip"))
    assert_user_error(r, "unknown policy 'ghost'", "--redis-url")


def test_existing_policy_in_redis(redis_url: str, artifact: bytes, tmp_path: Path) -> None:
    (tmp_path / "a.zip").write_bytes(artifact)
    assert run("policy", "import", str(tmp_path / "a.zip"), "--id", "p", "--redis-url", redis_url).exit_code == 0
    r = run("policy", "import", str(tmp_path / "a.zip"), "--id", "p", "--redis-url", redis_url)
    assert_user_error(r, "policy 'p' exists", "--replace")
    r = run("policy", "import", str(tmp_path / "a.zip"), "--id", "p", "--redis-url", redis_url, "--replace")
    assert r.exit_code == 0, r.output


def test_ope_with_no_logged_decisions(redis_url: str, artifact: bytes, tmp_path: Path) -> None:
    (tmp_path / "a.zip").write_bytes(artifact)
    r = run("ope", "--decisions", redis_url, "--policy-id", "ghost", "--policy", str(tmp_path / "a.zip"))
    assert_user_error(r, "policy 'ghost'", "no logged decisions", "--policy-id")
    r = run("ope", "--decisions", redis_url, "--policy", str(tmp_path / "a.zip"))
    assert_user_error(r, "--policy-id")
