"""A small share of the schemathesis run: cases generated from the service's own OpenAPI schema (fetched over
HTTP), sent over HTTP with an admin key: no 5xx, and no response that breaks the schema. The pytest plugin's
fixture loader does not work with pytest 9, so the operations' Hypothesis strategies are driven directly."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
# Loaded here, at collection, not lazily while the service thread runs: CPython 3.11.7's compiler can raise
# "SystemError: AST constructor recursion depth mismatch" when two threads compile source at once (gh-106905),
# and schemathesis parses these modules on first use.
import importlib  # noqa: E402

for _module in ("schemathesis.checks", "schemathesis.specs.openapi.checks", "schemathesis.specs.openapi.schemas"):
    importlib.import_module(_module)
from hypothesis import HealthCheck, given, settings  # noqa: E402

from banditroute.service.app import create_app  # noqa: E402
from banditroute.service.embedded import EmbeddedRedis  # noqa: E402
from banditroute.testing import ServerThread  # noqa: E402
from tests.service.conftest import ADMIN, settings_for  # noqa: E402

EXAMPLES_PER_OPERATION = 12


def checks() -> list:
    """Every response conformance check, no 5xx, and schema-invalid requests refused. Not included: "schema-valid
    requests are accepted", because some 422s depend on state a static schema cannot say (a feature vector's
    length is the policy's dimension; a candidate must be one of the policy's models)."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks as oc

    return [
        not_a_server_error,
        oc.status_code_conformance,
        oc.content_type_conformance,
        oc.response_schema_conformance,
        oc.response_headers_conformance,
        oc.negative_data_rejection,
    ]


@pytest.fixture(scope="module")
def live(redis_server: EmbeddedRedis, artifact: bytes) -> Iterator[ServerThread]:
    srv = ServerThread(create_app(settings_for(redis_server.url))).start()
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        c.post("/v1/policies/import", params={"id": "main", "replace": True}, content=artifact)
    yield srv
    srv.stop()


def test_generated_requests_never_get_a_5xx_or_break_the_schema(live: ServerThread) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    # the two import endpoints take raw zip bodies, which schemathesis cannot generate; their hostile input
    # (tampered, truncated, empty, pickle bytes) is covered in test_policies.py
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if not op.path.startswith("/v1/policies/import")]
    assert len(operations) >= 13
    calls = 0
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            # the same examples every run: a failure is ours to reproduce, and CPython 3.11's ast.parse (which
            # hypothesis calls to describe lambdas) can raise a SystemError deep in a randomly nested draw
            derandomize=True,
        )
        def check(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN}"}, checks=checks(), timeout=30)

        check()
    assert calls >= 100
