"""Every user mistake is one line on stderr (``error: <problem>; <fix>``), exit code 2, no traceback; a bug still
raises. The cases that need a live service or Redis are in test_remote_errors.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from banditroute.cli.errors import describe, redact
from banditroute.testing import free_port
from tests.cli.conftest import assert_user_error, run
from tests.service.conftest import tamper

RECORDS = str(Path(__file__).resolve().parents[2] / "data" / "mmlu_pro.parquet")


def test_missing_records_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.parquet"
    assert_user_error(run("evaluate", "--records", str(missing), "--out", str(tmp_path / "o")), str(missing))


def test_unreadable_records_file(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("query_id,model\nq,m\n")
    r = run("fit", "--records", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "a.zip"))
    assert_user_error(r, "bad.csv", "missing column", "--records")


def test_missing_artifact(tmp_path: Path) -> None:
    r = run("policy", "import", str(tmp_path / "nope.zip"), "--id", "x", "--redis-url", "redis://127.0.0.1:1/0")
    assert_user_error(r, "nope.zip")


def test_tampered_artifact(tmp_path: Path, candidate: Path) -> None:
    candidate.write_bytes(tamper(candidate.read_bytes()))
    r = run("ope", "--decisions", str(tmp_path / "log.jsonl"), "--policy", str(candidate))
    assert_user_error(r, "sha256", "export the artifact again")


def test_missing_decisions_file(tmp_path: Path, candidate: Path) -> None:
    r = run("ope", "--decisions", str(tmp_path / "log.jsonl"), "--policy", str(candidate))
    assert_user_error(r, "log.jsonl", "No such file")


def test_malformed_decisions_line(tmp_path: Path, candidate: Path) -> None:
    row = {"x": [1.0, 0.0], "model": "a", "propensity": 0.5, "reward": 1.0}
    (tmp_path / "log.jsonl").write_text(json.dumps(row) + "\n{not json\n")
    r = run("ope", "--decisions", str(tmp_path / "log.jsonl"), "--policy", str(candidate))
    assert_user_error(r, "log.jsonl", "line 2")
    (tmp_path / "log.jsonl").write_text("\n")
    r = run("ope", "--decisions", str(tmp_path / "log.jsonl"), "--policy", str(candidate))
    assert_user_error(r, "log.jsonl", "no logged decisions", "one JSON object per line")


BAD_FLAGS = [
    (("train-rl", "--records", RECORDS, "--out", "o", "--algo", "xyz"), ("--algo", "'xyz'", "ppo")),
    (("train-rl", "--records", RECORDS, "--out", "o", "--env", "xyz"), ("--env", "'xyz'", "budgeted")),
    (("evaluate", "--records", RECORDS, "--out", "o", "--nan-scores", "xyz"), ("--nan-scores", "missing")),
    (("evaluate", "--records", RECORDS, "--out", "o", "--hyper", "{bad"), ("--hyper", "not valid JSON")),
    (("evaluate", "--records", RECORDS, "--out", "o", "--hyper", "[1, 2]"), ("--hyper", "JSON object")),
    (("evaluate", "--records", RECORDS, "--out", "o", "--hyper", '{"linucb": 1}'), ("--hyper", "linucb")),
    (("fit", "--records", RECORDS, "--out", "o.zip", "--hyper", '"alpha"'), ("--hyper", "JSON object")),
    (("fit", "--records", RECORDS, "--out", "o.zip", "--features", "xyz"), ("--features", "tfidf-svd")),
    (("fit", "--records", RECORDS, "--out", "o.zip", "--test-frac", "1.5"), ("--test-frac", "(0, 1)")),
    (("simulate", "warp", "--out", "o"), ("unknown scenario", "'warp'", "online")),
    (("simulate", "online", "--out", "o", "--set", "steps"), ("--set", "key=value")),
    (("ope", "--decisions", "redis://127.0.0.1:1/0", "--policy", "p.zip", "--source", "xyz"), ("--source",)),
    (("evaluate", "--out", "o"), ("--records", "--help")),  # a missing option (typer's own usage error)
    (("policy", "export", "main", "--out", "o.zip"), ("--url", "--redis-url")),
]


@pytest.mark.parametrize(("args", "needles"), BAD_FLAGS, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD_FLAGS])
def test_bad_flag_value(
    args: tuple[str, ...], needles: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # relative --out paths land here (none should be written)
    assert_user_error(run(*args), *needles)
    assert not any(tmp_path.iterdir())


def test_rl_dir_without_an_agent(tmp_path: Path) -> None:
    r = run("evaluate", "--records", RECORDS, "--out", str(tmp_path / "o"), "--rl", str(tmp_path))
    assert_user_error(r, "--rl", "train-rl")


@pytest.mark.parametrize(
    ("value", "needle"), [("{bad", "not valid JSON"), ('["admin"]', "wrong shape"), ('{"k": "admin"}', "shape")]
)
def test_bad_json_in_an_environment_variable(value: str, needle: str) -> None:
    r = run("serve", env={"BANDITROUTE_API_KEYS": value, "BANDITROUTE_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert_user_error(r, "BANDITROUTE_API_KEYS", needle, '"route", "feedback", "admin"')


def test_an_api_key_in_a_bad_variable_is_never_printed() -> None:
    secret = "sekrit-0123456789"
    env = {"BANDITROUTE_API_KEYS": json.dumps({secret: ["root"]}), "BANDITROUTE_REDIS_URL": "redis://127.0.0.1:1/0"}
    line = assert_user_error(run("serve", env=env), "BANDITROUTE_API_KEYS")
    assert secret[:4] not in line


def test_bad_json_variable_reaches_every_command(tmp_path: Path) -> None:
    """Settings are read by the Redis-backed commands too, not only by serve."""
    r = run(
        "policy", "export", "main", "--out", str(tmp_path / "a.zip"), "--redis-url", "redis://127.0.0.1:1/0",
        env={"BANDITROUTE_SOURCE_WEIGHTS": "{bad"},
    )  # fmt: skip
    assert_user_error(r, "BANDITROUTE_SOURCE_WEIGHTS", '"evaluator"')


def test_unreachable_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    r = run("policy", "export", "main", "--out", str(tmp_path / "a.zip"), "--url", url, "--api-key", "k-123456789")
    line = assert_user_error(r, f"cannot reach {url}", "banditroute serve", "--url")
    assert "k-123456789" not in line


def test_unreachable_redis_masks_its_password(tmp_path: Path) -> None:
    url = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    r = run("policy", "export", "main", "--out", str(tmp_path / "a.zip"), "--redis-url", url)
    line = assert_user_error(r, "cannot reach Redis", "--redis-url", "***@127.0.0.1")
    assert "hunter2secret" not in line


def test_not_a_redis_url(tmp_path: Path) -> None:
    r = run("policy", "export", "main", "--out", str(tmp_path / "a.zip"), "--redis-url", "http://127.0.0.1:1")
    assert_user_error(r, "--redis-url", "redis://")


def test_a_bug_still_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import banditroute.simulations.simulate as sim

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(sim, "simulate", broken)
    r = run("simulate", "scaling", "--quick", "--out", str(tmp_path / "s"))
    assert r.exit_code == 1 and isinstance(r.exception, RuntimeError)
    assert describe(RuntimeError("a bug"), "simulate") is None
    assert describe(ValueError("numpy said so"), "simulate") is None  # a bare ValueError is not a user's mistake
    assert describe(ModuleNotFoundError("no numpy", name="numpy"), "simulate") is None


def test_redact() -> None:
    assert redact("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact("redis://user:pw@h/0") == "redis://user:***@h/0"
    assert redact("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
