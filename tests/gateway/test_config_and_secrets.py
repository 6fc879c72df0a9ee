"""The upstreams file: every error names its table and field (also through ``banditroute serve``); and no upstream
key in any response, log line, metric or export."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from banditroute.service.gateway.config import UpstreamConfigError, load_config, parse_config
from tests.gateway.conftest import ADMIN, UPSTREAM_KEY, Captured, Gw, ask

GOOD = {"base_url": "http://127.0.0.1:9/v1", "input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0}


def doc(model: dict[str, Any] | None = None, **tables: Any) -> dict[str, Any]:
    return {"models": {"a": {**GOOD, **(model or {})}}, **tables}


@pytest.mark.parametrize(
    ("document", "match"),
    [
        ({}, r"\[models\]: at least one"),
        ({"models": {"a": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1}}}, r'\[models\."a"\] base_url: required'),
        (doc({"base_url": "ftp://x"}), r'\[models\."a"\] base_url: must be an http'),
        (doc({"input_usd_per_mtok": "cheap"}), r'\[models\."a"\] input_usd_per_mtok: must be a number'),
        (doc({"output_usd_per_mtok": -1}), r'\[models\."a"\] output_usd_per_mtok: must be in'),
        (doc({"timeout_s": 0}), r'\[models\."a"\] timeout_s: must be in'),
        (doc({"api_key_env": "BR_NOT_SET_ANYWHERE"}), r'\[models\."a"\] api_key_env: the variable BR_NOT_SET'),
        (doc({"prices": 1}), r'\[models\."a"\] prices: unknown field'),
        (doc(gateway={"max_attempts": 0}), r"\[gateway\] max_attempts: must be in"),
        (doc(gateway={"featurize": "all"}), r"\[gateway\] featurize: must be"),
        (doc(gateway={"failure_reward": 2}), r"\[gateway\] failure_reward: must be in \[0"),
        (doc(evaluator={"judge": "b"}), r"\[evaluator\] judge: 'b' is not a configured model"),
        (doc(evaluator={"judge": "a", "sample_rate": 1.5}), r"\[evaluator\] sample_rate: must be in"),
        (doc(upstream={}), r"\[root\] upstream: unknown field"),
    ],
)
def test_config_errors_name_table_and_field(document: dict[str, Any], match: str) -> None:
    with pytest.raises(UpstreamConfigError, match=match):
        parse_config(document, environ={})


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UpstreamConfigError, match="cannot be read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.a\n")
    with pytest.raises(UpstreamConfigError, match="not valid TOML"):
        load_config(bad)
    ok = tmp_path / "ok.toml"
    ok.write_text('[models."m"]\nbase_url = "http://127.0.0.1:1/v1"\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 2\n')
    cfg = load_config(ok)
    assert cfg.models["m"].model == "m" and cfg.max_attempts == 3 and cfg.evaluator is None


def test_serve_refuses_a_bad_upstreams_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "up.toml"
    bad.write_text('[models."m"]\nbase_url = "http://127.0.0.1:1/v1"\ninput_usd_per_mtok = 1\n')
    proc = subprocess.run(
        [sys.executable, "-m", "banditroute", "serve", "--upstreams", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and '[models."m"] output_usd_per_mtok: required' in lines[0]


def test_upstream_keys_never_leave(gateway: Gw, service_logs: Captured) -> None:
    seen: list[str] = []
    client = gateway.client()
    raw = client.chat.completions.with_raw_response.create(model="router/main", messages=ask(0))
    seen += [raw.text, str(raw.headers)]
    stream = client.chat.completions.with_raw_response.create(model="router/main", messages=ask(1), stream=True)
    seen += ["".join(str(c) for c in stream.parse()), str(stream.headers)]
    gateway.ups.apps["small"].mode = "echo-key"  # a careless upstream quoting the key in its 401
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="small", messages=ask(1))
    seen += [str(info.value), info.value.response.text]
    assert "Incorrect API key provided: Bearer ***" in info.value.response.text

    async def streamed_error() -> None:
        async with gateway.async_client() as ac:
            with pytest.raises(openai.AuthenticationError) as e:
                await ac.chat.completions.create(model="small", messages=ask(1), stream=True)
            seen.append(e.value.response.text)

    asyncio.run(streamed_error())
    gateway.ups.apps["small"].mode = "ok"
    with gateway.admin() as admin:
        seen.append(admin.get("/v1/policies/main/export").content.decode("latin-1"))
        seen.append(admin.get("/v1/policies/main").text)
    seen.append(httpx.get(gateway.url + "/metrics").text)
    seen.append(client.models.with_raw_response.list().text)
    seen += service_logs.lines
    assert service_logs.lines  # the logs were captured at DEBUG
    for text in seen:
        assert UPSTREAM_KEY not in text
    # the key did reach the upstream, where it belongs
    assert ADMIN not in str(gateway.app.state.gateway.config)
    assert UPSTREAM_KEY not in repr(gateway.app.state.gateway.config)
