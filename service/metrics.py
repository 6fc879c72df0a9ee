"""Prometheus metrics. With several workers set PROMETHEUS_MULTIPROC_DIR (``banditroute serve`` does) so that
/metrics aggregates every worker's counters."""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

REQUESTS = Counter("banditroute_requests_total", "HTTP requests", ["method", "path", "status"])
LATENCY = Histogram(
    "banditroute_request_seconds",
    "HTTP request latency",
    ["method", "path"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DECISIONS = Counter("banditroute_decisions_total", "Routing decisions", ["policy", "model"])
FEEDBACK = Counter("banditroute_feedback_total", "Feedback events", ["source", "outcome"])
POLICY_FEEDBACK = Counter(
    "banditroute_policy_feedback_total", "Feedback events per policy and model", ["policy", "model", "outcome"]
)
REWARD_SUM = Counter("banditroute_reward_sum_total", "Sum of accepted feedback scores", ["policy", "model"])
COST_SUM = Counter("banditroute_cost_usd_sum_total", "Sum of observed costs sent with feedback", ["policy", "model"])
SHADOW_FAILURES = Counter(
    "banditroute_shadow_failures_total", "Shadow arms that failed to decide", ["experiment", "arm"]
)
ERRORS = Counter("banditroute_errors_total", "Responses with status >= 500", ["path"])
FALLBACKS = Counter("banditroute_fallback_total", "Routes answered with the fallback model (Redis away)")
# the gateway (service/gateway/)
GATEWAY_ATTEMPTS = Counter(
    "banditroute_gateway_attempts_total",
    "Upstream attempts by outcome (ok, client_error, connect, timeout, status, breaker, broken mid-stream)",
    ["model", "outcome"],
)
GATEWAY_BREAKER_OPENED = Counter("banditroute_gateway_breaker_opened_total", "Circuit breaker openings", ["model"])
GATEWAY_COST = Counter(
    "banditroute_gateway_cost_usd_total", "USD spent through the gateway (usage x prices)", ["model"]
)
JUDGE = Counter(
    "banditroute_judge_total", "Evaluator jobs by outcome (queued, dropped, posted, failed, refused)", ["outcome"]
)


class _Snapshot:
    """A collector of gauges computed from Redis at scrape time (the same for every worker)."""

    def __init__(self, rows: list[dict[str, float | str]]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        specs = [
            ("lag_events", "banditroute_learner_lag_events", "Accepted feedback the learner has not applied yet"),
            (
                "lag_seconds",
                "banditroute_learner_lag_seconds",
                "Age of the oldest unapplied feedback",
            ),
            ("dead", "banditroute_dead_letters", "Feedback events whose update raised (dead-letter stream)"),
            ("snapshot_age", "banditroute_snapshot_age_seconds", "Age of the policy's last snapshot"),
            ("accepted", "banditroute_feedback_accepted", "Feedback accepted into the policy's log (all workers)"),
            ("applied", "banditroute_feedback_applied", "Feedback applied by the learner (all workers)"),
        ]
        for key, name, doc in specs:
            g = GaugeMetricFamily(name, doc, labels=["policy"])
            for row in self.rows:
                g.add_metric([str(row["policy"])], float(row[key]))
            yield g


def render_policies(rows: list[dict[str, float | str]]) -> bytes:
    """Per-policy gauges read from Redis (learner lag, dead letters, snapshot age, counts)."""
    registry = CollectorRegistry()
    registry.register(_Snapshot(rows))
    return generate_latest(registry)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
