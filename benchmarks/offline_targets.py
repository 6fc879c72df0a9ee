"""Issue-3 targets: the offline evaluation on the real records, and the learner's decision speed.

Run:  .venv/bin/python benchmarks/offline_targets.py [--out runs/bench-offline] [--quick]

Prints one row per target with what was measured; writes each evaluation's report into --out. Needs
../shared/data/routerbench_subset.parquet (read in place, never copied into the project) for the RouterBench row.
Speed figures are printed, not asserted: compare them side by side within one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from banditroute.bandit import make_policy  # noqa: E402
from banditroute.env.records import load_records  # noqa: E402
from banditroute.simulations.evaluate import EvalConfig, evaluate  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DROP_29 = {"gemini-3.1-pro-preview", "DeepSeek-Coder-V2", "DeepSeek-V2-Chat"}
LEARNED_PREFIXES = ("linucb", "lints", "linear-eps-greedy", "supervised_ridge")


def best_learned(report: dict[str, Any], key: str, minimise: bool) -> tuple[str, float | None]:
    rows = [(n, m.get(key)) for n, m in report["methods"].items() if n.startswith(LEARNED_PREFIXES)]
    rows = [(n, v) for n, v in rows if v is not None]
    if not rows:
        return "-", None
    return (min if minimise else max)(rows, key=lambda r: r[1])


def run(name: str, out: Path, **kw: Any) -> dict[str, Any]:
    t = time.perf_counter()
    report: dict[str, Any] = evaluate(EvalConfig(out=str(out / name), progress=False, **kw))
    print(
        f"  [{name}] {report['dataset']['n_train']} train / {report['dataset']['n_test']} test, "
        f"{time.perf_counter() - t:.1f} s",
        flush=True,
    )
    return report


def decision_speed(k: int = 32, d: int = 64, n: int = 5000) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)) / np.sqrt(d)
    X[:, -1] = 1.0
    out: dict[str, dict[str, float]] = {}
    for name in ("linucb", "lints", "linear-eps-greedy"):
        p = make_policy(name, [f"m{j}" for j in range(k)], d, seed=0)
        p.fit_full(X[:500], rng.random((500, k)), rng.random((500, k)) / 1000)
        t = time.perf_counter()
        for x in X:
            p.select(x)
        sel = (time.perf_counter() - t) / n * 1e6
        t = time.perf_counter()
        for i, x in enumerate(X):
            p.update(x, p.models[i % k], 0.5, 0.001)
        upd = (time.perf_counter() - t) / n * 1e6
        t = time.perf_counter()
        p.pmf_batch(X, 0.0)
        batch = (time.perf_counter() - t) / n * 1e6
        out[name] = {"select_us": sel, "update_us": upd, "batch_pmf_us_per_row": batch}
    return out


def mmlu_targets(out: Path) -> list[tuple[str, str, str]]:
    """The bundled MMLU-Pro records: evaluate time, cheapest within 1 point, V_B, online vs full information."""
    rows: list[tuple[str, str, str]] = []
    mmlu = ROOT / "data" / "mmlu_pro.parquet"
    t = time.perf_counter()
    r32 = run("mmlu_pro_32", out, records=str(mmlu))
    secs = time.perf_counter() - t
    rows.append(("evaluate on all of mmlu_pro", "< 180 s", f"{secs:.0f} s"))
    n, v = best_learned(r32, "cheapest_within_1pt_cost_share", minimise=True)
    rows.append(
        (
            "mmlu_pro 32 models: cheapest within 1pt of gemini-3.1-pro",
            "<= 0.80",
            f"{v if v is None else round(v, 3)} ({n})",
        )
    )

    models29 = [m for m in load_records(mmlu).models if m not in DROP_29]
    r29 = run("mmlu_pro_29", out, records=str(mmlu), models=models29)
    n, v = best_learned(r29, "v_b", minimise=False)
    rows.append(("mmlu_pro 29 models: V_B at lambda 0", ">= 1.03", f"{v:.4f} ({n})"))
    full, online = r29["methods"]["linucb[full]"]["quality"], r29["methods"]["linucb[online]"]["quality"]
    rows.append(
        (
            "LinUCB online vs full information (mmlu_pro 29)",
            "gap <= 0.02",
            f"{full - online:+.4f} ({online:.4f} vs {full:.4f})",
        )
    )
    return rows


def external_targets(out: Path) -> list[tuple[str, str, str]]:
    """RouterBench (when ../shared/data has it) and RouteLLM per benchmark."""
    rows: list[tuple[str, str, str]] = []
    rl = ROOT / "data" / "routellm_gpt4_mixtral.parquet"
    rb = SHARED / "routerbench_subset.parquet"
    if rb.exists():
        rrb = run("routerbench", out, records=str(rb), nan_scores="missing")
        n, v = best_learned(rrb, "cheapest_within_1pt_cost_share", minimise=True)
        rows.append(
            ("routerbench: cheapest within 1pt of GPT-4", "<= 0.45", f"{v if v is None else round(v, 3)} ({n})")
        )
    else:
        rows.append(("routerbench: cheapest within 1pt of GPT-4", "<= 0.45", "skipped: ../shared/data absent"))
    for bench, target in (("mmlu", 0.60), ("gsm8k", 0.62)):
        rb_ = run(f"routellm_{bench}", out, records=str(rl), benchmark=bench)
        n, v = best_learned(rb_, "apgr", minimise=False)
        rows.append((f"routellm {bench}: APGR", f">= {target}", f"{v:.3f} ({n})"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-offline"))
    ap.add_argument("--quick", action="store_true", help="skip the RouterBench and per-benchmark RouteLLM runs")
    args = ap.parse_args()
    out = Path(args.out)
    rows = []

    print("speed (in-process, 32 models x 64 features):", flush=True)
    for name, s in decision_speed().items():
        print(
            f"  {name:18s} select {s['select_us']:7.1f} us   update {s['update_us']:7.1f} us   "
            f"batch pmf {s['batch_pmf_us_per_row']:6.2f} us/row",
            flush=True,
        )
    rows.append(
        ("decision latency, 32 models x 64 features", "< 100 us", f"{decision_speed()['linucb']['select_us']:.1f} us")
    )

    rows += mmlu_targets(out)
    if not args.quick:
        rows += external_targets(out)

    print("\n| target | goal | measured |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    (out / "summary.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
