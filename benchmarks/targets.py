"""What the target benchmarks share: the bundled records, the mmlu_pro-29 model set, the contenders, ``evaluate``
runs that ``--resume`` can reuse, and the PASS/MISS table (offline_targets.py, cascade_targets.py, cascade_rl.py)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from banditroute.env.records import load_records
from banditroute.simulations.evaluate import EvalConfig, evaluate

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MMLU = ROOT / "data" / "mmlu_pro.parquet"
DROP_29 = {"gemini-3.1-pro-preview", "DeepSeek-Coder-V2", "DeepSeek-V2-Chat"}
#: learners the seed loops fit (the registry's others are measured by `evaluate` itself; these are the contenders)
POLICIES = ["linucb", "shared-linucb", "shared-lints"]
FEATURES = ["category", "category+lexical"]

Row = tuple[str, str, str, bool | None]


def models_29() -> list[str]:
    return [m for m in load_records(MMLU).models if m not in DROP_29]


#: --resume: reuse an evaluation already in --out when it was run with the same configuration (set by each main)
RESUME = False


def reusable(path: Path, cfg: EvalConfig) -> dict[str, Any] | None:
    """The report at ``path`` if it exists and was made with ``cfg`` (every field but ``progress``; a field left
    to its default, None, matches the default the report resolved it to)."""
    if not (path / "report.json").is_file():
        return None
    report: dict[str, Any] = json.loads((path / "report.json").read_text())
    want = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    got = report.get("config", {})
    same = all(got.get(k) == v for k, v in want.items() if k != "progress" and v is not None)
    return report if same else None


def run_eval(name: str, out: Path, **kw: Any) -> dict[str, Any]:
    t = time.perf_counter()
    kw.setdefault("policies", POLICIES)
    cfg = EvalConfig(out=str(out / name), progress=False, **kw)
    if RESUME and (done := reusable(out / name, cfg)) is not None:
        print(f"  [{name}] reused {out / name}/report.json (same configuration)", flush=True)
        return done
    report: dict[str, Any] = evaluate(cfg)
    print(f"  [{name}] {report['dataset']['n_train']} train / {report['dataset']['n_test']} test, "
          f"{time.perf_counter() - t:.0f} s", flush=True)  # fmt: skip
    return report


def row(label: str, goal: str, value: float | None, ok: bool | None, detail: str = "") -> Row:
    shown = "-" if value is None else f"{value:.4f}"
    return (label, goal, f"{shown} {detail}".strip(), ok)


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "MISS")


def print_table(rows: Sequence[Row]) -> None:
    """The targets as the README's markdown table."""
    print("\n| target | goal | measured | |\n|---|---|---|---|")
    for label, goal, measured, ok in rows:
        print(f"| {label} | {goal} | {measured} | {verdict(ok)} |")
