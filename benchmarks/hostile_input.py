"""The long schemathesis run: cases generated from the service's OpenAPI schema, sent over HTTP (127.0.0.1 only) to
a service with an embedded Redis, with an admin key. Prints cases, failures and 5xx per operation.

Run:  .venv/bin/python benchmarks/hostile_input.py [--per-operation 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as oc

from banditroute.bandit import LinUCB, to_bytes
from banditroute.env.features import Featurizer
from banditroute.service.app import create_app
from banditroute.service.config import Settings
from banditroute.testing import ServerThread

KEY = "bench-admin-key"
CHECKS = [
    not_a_server_error,
    oc.status_code_conformance,
    oc.content_type_conformance,
    oc.response_schema_conformance,
    oc.response_headers_conformance,
    oc.negative_data_rejection,
]


def _run(op: Any, name: str, n: int, total: Counter[str], failed: Counter[str], statuses: Counter[int]) -> None:
    @given(case=op.as_strategy())
    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case) -> None:  # type: ignore[no-untyped-def]
        total[name] += 1
        try:
            r = case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS, timeout=30)
            statuses[r.status_code] += 1
        except Exception:
            failed[name] += 1
            raise

    check()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-operation", type=int, default=100)
    args = ap.parse_args()
    prompts = [f"topic {i % 7} question {i} about algebra law code" for i in range(60)]
    fz = Featurizer(dim=8, max_features=200).fit(prompts)
    policy = LinUCB(["a", "b", "c"], 8)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Settings(
            redis_url=None,
            embedded_dir=str(Path(tmp) / "r"),
            log_level="WARNING",
            api_keys={KEY: ["admin", "route", "feedback"]},
        )
        with ServerThread(create_app(cfg)) as srv:
            httpx.post(
                f"{srv.url}/v1/policies/import",
                params={"id": "main"},
                content=to_bytes(policy, fz),
                headers={"Authorization": f"Bearer {KEY}"},
            ).raise_for_status()
            schema = schemathesis.openapi.from_url(f"{srv.url}/openapi.json")
            ops = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
            ops = [op for op in ops if not op.path.startswith("/v1/policies/import")]  # raw zip bodies
            total: Counter[str] = Counter()
            failed: Counter[str] = Counter()
            statuses: Counter[int] = Counter()
            errors: list[str] = []
            for op in ops:
                name = f"{op.method.upper()} {op.path}"
                try:
                    _run(op, name, args.per_operation, total, failed, statuses)
                except Exception as exc:  # noqa: BLE001 - report every operation, then fail at the end
                    errors.append(name)
                    print(f"FAIL {name}: {str(exc)[:600]}")
    print("| operation | cases | failures |\n|---|---|---|")
    for name in total:
        print(f"| {name} | {total[name]} | {failed[name]} |")
    print(
        f"total cases {sum(total.values())}, failures {sum(failed.values())}, "
        f"5xx {sum(v for k, v in statuses.items() if k >= 500)}, statuses {dict(sorted(statuses.items()))}"
    )
    sys.exit(1 if errors or sum(failed.values()) else 0)


if __name__ == "__main__":
    main()
