"""The upstreams file's ``[routers."<policy-id>"]`` tables: how a cascade router reads its models' answers.

```toml
[routers."casc"]                   # optional, one table per cascade policy; defaults shown
answers = "choice"                 # or "text": compare the response texts by similarity
choice_pattern = 'answer is \\(?([A-J])\\)?'   # optional: one capture group; the last match is the answer
agreement_threshold = 0.8          # text answers: cosine similarity at which two answers agree
```
(see :mod:`service.cascade_answers` for the default choice extractor).
"""

from __future__ import annotations

from typing import Any

from banditroute.service.cascade_answers import KINDS, AnswerReader, compile_pattern

ROUTER_FIELDS = {"answers", "choice_pattern", "agreement_threshold"}


def parse_routers(raw: Any, error: type[ValueError]) -> dict[str, AnswerReader]:
    """``{policy id: AnswerReader}`` from the ``routers`` table; ``error`` is raised naming the table and field."""
    if not isinstance(raw, dict):
        raise error('[routers]: must be a table of [routers."<policy-id>"] tables')
    out: dict[str, AnswerReader] = {}
    for pid, spec in raw.items():
        table = f'routers."{pid}"'
        if not isinstance(spec, dict):
            raise error(f"[{table}]: must be a table")
        extra = sorted(set(spec) - ROUTER_FIELDS)
        if extra:
            raise error(f"[{table}] {extra[0]}: unknown field; allowed {sorted(ROUTER_FIELDS)}")
        kind = spec.get("answers", "choice")
        if kind not in KINDS:
            raise error(f"[{table}] answers: must be one of {list(KINDS)}, got {kind!r}")
        pattern = None
        if "choice_pattern" in spec:
            if not isinstance(spec["choice_pattern"], str):
                raise error(f"[{table}] choice_pattern: must be a string (a regular expression)")
            try:
                pattern = compile_pattern(spec["choice_pattern"])
            except ValueError as exc:
                raise error(f"[{table}] choice_pattern: {exc}") from None
        threshold = spec.get("agreement_threshold", 0.8)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            raise error(f"[{table}] agreement_threshold: must be a number in (0, 1], got {threshold!r}")
        out[str(pid)] = AnswerReader(kind, pattern, float(threshold))
    return out


__all__ = ["ROUTER_FIELDS", "parse_routers"]
