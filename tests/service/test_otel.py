"""BANDITROUTE_OTEL: FastAPI's native OpenTelemetry per request, off by default (its checks cost throughput).

Each case runs in its own process: the OpenTelemetry tracer provider is process-global and set once. The provider
is a recording one written on the API alone (no SDK is installed): a tracer provider whose tracer (the API's
no-op one) notes the name of every span started.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys
import httpx
from opentelemetry import trace
from banditroute.service.app import create_app
from banditroute.service.config import Settings
from banditroute.testing import ServerThread

started = []

class Tracer(trace.NoOpTracer):
    def start_span(self, name, *args, **kwargs):
        started.append(name)
        return super().start_span(name, *args, **kwargs)

class Recording(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        return Tracer()

trace.set_tracer_provider(Recording())
redis_url, otel = sys.argv[1], sys.argv[2] == "on"
srv = ServerThread(create_app(Settings(redis_url=redis_url, otel=otel, log_level="WARNING"))).start()
try:
    for _ in range(3):
        assert httpx.get(srv.url + "/healthz").status_code == 200
finally:
    srv.stop()
print(json.dumps(started))
"""


@pytest.mark.parametrize("otel", ["on", "off"])
def test_otel_spans_only_when_switched_on(redis_url: str, otel: str) -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, redis_url, otel], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    spans = json.loads(proc.stdout.strip().splitlines()[-1])
    if otel == "on":
        assert spans.count("GET") == 3, spans  # one server span per request (named by its method)
    else:
        assert spans == []
