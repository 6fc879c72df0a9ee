"""The upstreams file (TOML), validated at start; every error names its table and field.

```toml
[gateway]                          # optional, defaults shown
max_attempts = 3                   # first choice + fallbacks
failure_reward = 0.0               # score fed back (source "gateway") when the first choice fails
breaker_failures = 5               # consecutive failures that open an upstream's breaker
breaker_reset_s = 30.0             # seconds before an open breaker lets one probe through
featurize = "last_user"            # or "conversation": the text the router featurizes

[models."gpt-4o-mini"]             # the name the policies use for this arm
base_url = "http://127.0.0.1:9001/v1"
model = "gpt-4o-mini"              # optional: the upstream's own name (default: the table name)
api_key_env = "OPENAI_API_KEY"     # optional: the key is read from this variable, never written anywhere
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60
timeout_s = 60                     # optional

[routers."casc"]                   # optional: how a cascade router reads answers (service.gateway.cascade_config)
answers = "choice"                 # or "text"

[evaluator]                        # optional
judge = "gpt-4o-mini"              # a configured model
rubric = "Rate the answer from 0 to 10. Reply with the number only."
sample_rate = 0.1
queue_size = 256
```
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from banditroute.service.gateway.cascade_config import parse_routers

DEFAULT_RUBRIC = (
    "You grade answers. Rate how well the answer responds to the question, from 0 (useless or wrong) to 10 "
    "(fully correct and helpful). Reply with the number only."
)


class UpstreamConfigError(ValueError):
    """The upstreams file is missing, unparsable, or a table or field is wrong (the message names which)."""


@dataclass(frozen=True)
class Upstream:
    """One configured model. ``api_key`` is read from ``api_key_env`` and never shown (``repr=False``)."""

    name: str
    base_url: str
    model: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    timeout_s: float = 60.0
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class Evaluator:
    judge: str
    rubric: str = DEFAULT_RUBRIC
    sample_rate: float = 1.0
    queue_size: int = 256
    timeout_s: float = 30.0


@dataclass(frozen=True)
class GatewayConfig:
    models: dict[str, Upstream]
    max_attempts: int = 3
    failure_reward: float = 0.0
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0
    featurize: str = "last_user"
    evaluator: Evaluator | None = None
    routers: dict[str, Any] = field(default_factory=dict)  # policy id -> cascade_answers.AnswerReader

    def secrets(self) -> list[str]:
        """The upstream keys in use (to scrub them from anything passed back)."""
        return [u.api_key for u in self.models.values() if u.api_key]


def _number(table: str, key: str, raw: dict[str, Any], default: float | None, low: float, high: float) -> float:
    v = raw.get(key, default)
    if v is None:
        raise UpstreamConfigError(f"[{table}] {key}: required (a number)")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise UpstreamConfigError(f"[{table}] {key}: must be a number, got {type(v).__name__}")
    if not low <= float(v) <= high:
        raise UpstreamConfigError(f"[{table}] {key}: must be in [{low}, {high}], got {v}")
    return float(v)


def _string(table: str, key: str, raw: dict[str, Any], default: str | None = None) -> str:
    v = raw.get(key, default)
    if v is None:
        raise UpstreamConfigError(f"[{table}] {key}: required (a string)")
    if not isinstance(v, str) or not v.strip():
        raise UpstreamConfigError(f"[{table}] {key}: must be a non-empty string")
    return v


def _unknown(table: str, raw: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise UpstreamConfigError(f"[{table}] {extra[0]}: unknown field; allowed {sorted(allowed)}")


MODEL_FIELDS = {"base_url", "model", "api_key_env", "input_usd_per_mtok", "output_usd_per_mtok", "timeout_s"}


def _upstream(name: str, raw: Any, environ: dict[str, str]) -> Upstream:
    table = f'models."{name}"'
    if not isinstance(raw, dict):
        raise UpstreamConfigError(f"[{table}]: must be a table")
    _unknown(table, raw, MODEL_FIELDS)
    base_url = _string(table, "base_url", raw)
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamConfigError(f"[{table}] base_url: must be an http(s) URL, got {base_url!r}")
    key_env = raw.get("api_key_env")
    key = None
    if key_env is not None:
        key_env = _string(table, "api_key_env", raw)
        key = environ.get(key_env)
        if not key:
            raise UpstreamConfigError(f"[{table}] api_key_env: the variable {key_env} is not set")
    return Upstream(
        name=name,
        base_url=base_url,
        model=_string(table, "model", raw, name),
        input_usd_per_mtok=_number(table, "input_usd_per_mtok", raw, None, 0, 1e6),
        output_usd_per_mtok=_number(table, "output_usd_per_mtok", raw, None, 0, 1e6),
        timeout_s=_number(table, "timeout_s", raw, 60.0, 0.001, 3600),
        api_key_env=key_env,
        api_key=key,
    )


def _evaluator(raw: Any, models: dict[str, Upstream]) -> Evaluator:
    if not isinstance(raw, dict):
        raise UpstreamConfigError("[evaluator]: must be a table")
    _unknown("evaluator", raw, {"judge", "rubric", "sample_rate", "queue_size", "timeout_s"})
    judge = _string("evaluator", "judge", raw)
    if judge not in models:
        raise UpstreamConfigError(f"[evaluator] judge: {judge!r} is not a configured model; have {sorted(models)}")
    return Evaluator(
        judge=judge,
        rubric=_string("evaluator", "rubric", raw, DEFAULT_RUBRIC),
        sample_rate=_number("evaluator", "sample_rate", raw, 1.0, 0, 1),
        queue_size=int(_number("evaluator", "queue_size", raw, 256, 1, 1_000_000)),
        timeout_s=_number("evaluator", "timeout_s", raw, 30.0, 0.001, 3600),
    )


def parse_config(doc: dict[str, Any], environ: dict[str, str] | None = None) -> GatewayConfig:
    """A validated :class:`GatewayConfig` from the parsed TOML document."""
    env = dict(os.environ) if environ is None else environ
    _unknown("root", doc, {"models", "gateway", "evaluator", "routers"})
    raw_models = doc.get("models")
    if not isinstance(raw_models, dict) or not raw_models:
        raise UpstreamConfigError('[models]: at least one [models."<name>"] table is required')
    models = {name: _upstream(name, raw, env) for name, raw in raw_models.items()}
    gw = doc.get("gateway", {})
    if not isinstance(gw, dict):
        raise UpstreamConfigError("[gateway]: must be a table")
    _unknown("gateway", gw, {"max_attempts", "failure_reward", "breaker_failures", "breaker_reset_s", "featurize"})
    featurize = _string("gateway", "featurize", gw, "last_user")
    if featurize not in ("last_user", "conversation"):
        raise UpstreamConfigError(f"[gateway] featurize: must be 'last_user' or 'conversation', got {featurize!r}")
    return GatewayConfig(
        models=models,
        max_attempts=int(_number("gateway", "max_attempts", gw, 3, 1, 100)),
        failure_reward=_number("gateway", "failure_reward", gw, 0.0, 0, 1),
        breaker_failures=int(_number("gateway", "breaker_failures", gw, 5, 1, 1_000_000)),
        breaker_reset_s=_number("gateway", "breaker_reset_s", gw, 30.0, 0, 86_400),
        featurize=featurize,
        evaluator=_evaluator(doc["evaluator"], models) if "evaluator" in doc else None,
        routers=parse_routers(doc.get("routers", {}), UpstreamConfigError),
    )


def load_config(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> GatewayConfig:
    """Read and validate the upstreams file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UpstreamConfigError(f"upstreams file {p}: cannot be read ({exc.strerror or exc})") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UpstreamConfigError(f"upstreams file {p}: not valid TOML ({exc})") from exc
    try:
        return parse_config(doc, environ)
    except UpstreamConfigError as exc:
        raise UpstreamConfigError(f"upstreams file {p}: {exc}") from None
