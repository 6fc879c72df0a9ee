"""The cascade targets (issue 13): measured with the project's own ``evaluate`` on the bundled MMLU-Pro records
(they carry every model's answer letter), means (and sd) over 70/30 splits with seeds 0-4, each printed with
PASS or MISS.

Run:  .venv/bin/python benchmarks/cascade_targets.py [--out runs/bench-cascade] [--seeds 0,1,2,3,4] [--resume]
      (--only: a comma-separated subset of mmlu29, mmlu32)

Everything is chosen on each train split (layout, lambda, the agreement pair; see simulations/cascade.py); the test
split is only reported. The evaluations are offline_targets.py's own (the cascade rows sit beside every single-call
learner in them): run from there, they are made once for both issues. mmlu_pro-29 = every model but
gemini-3.1-pro-preview, DeepSeek-V2-Chat and DeepSeek-Coder-V2. The SB3 agent on the cascade environment has its
own benchmark (benchmarks/cascade_rl.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import targets  # noqa: E402 - the same evaluations (and --resume) as the routing-quality targets
from targets import FEATURES, MMLU, Row, models_29, print_table, run_eval  # noqa: E402

#: the single-call learners the online cascade is measured against (offline_targets.py's contenders)
SINGLE_CALL = targets.POLICIES
#: single-call routers' cheapest within 1 point of gemini-3.1-pro-preview (README, routing-quality targets)
SINGLE_CALL_32 = 0.876


def stats(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def share(m: dict[str, Any], ref: dict[str, Any]) -> float:
    return float(m["cost_usd"]) / float(ref["best_single_cost_usd"])


def mmlu29(out: Path, seeds: Sequence[int]) -> list[Row]:
    models = models_29()
    full_vb, full_cs, on_vb, on_cs, pair_vb, pair_cs = [], [], [], [], [], []
    singles: dict[str, list[tuple[float, float]]] = {}
    for s in seeds:
        # offline_targets' mmlu_pro-29 evaluation itself: the cascade rows beside every single-call learner
        rep = run_eval(f"mmlu29_s{s}", out, records=str(MMLU), models=models, seed=s, features=FEATURES)
        m, ref = rep["methods"], rep["reference"]
        full_vb.append(m["cascade[full]"]["v_b"])
        full_cs.append(share(m["cascade[full]"], ref))
        on_vb.append(m["cascade[online]"]["v_b"])
        on_cs.append(share(m["cascade[online]"], ref))
        pair_vb.append(m["cascade-agreement[pair]"]["v_b"])
        pair_cs.append(share(m["cascade-agreement[pair]"], ref))
        for name in m:  # every single-call online learner, on every feature set ("linucb[online] @category")
            if "[online]" in name and not name.startswith("cascade"):
                singles.setdefault(name, []).append((m[name]["v_b"], share(m[name], ref)))
        print(f"    seed {s}: cascade[full] V_B {full_vb[-1]:.4f} at {full_cs[-1]:.3f}; online {on_vb[-1]:.4f} at "
              f"{on_cs[-1]:.3f}; layout {m['cascade[full]']['stages']}", flush=True)  # fmt: skip
    best = max(singles, key=lambda n: statistics.fmean(v for v, _ in singles[n]))
    s_vb, s_cs = stats([v for v, _ in singles[best]]), stats([c for _, c in singles[best]])
    (fv, fsd), (fc, fcsd) = stats(full_vb), stats(full_cs)
    (ov, osd), (oc, ocsd) = stats(on_vb), stats(on_cs)
    (pv, psd), (pc, pcsd) = stats(pair_vb), stats(pair_cs)
    return [
        ("mmlu_pro-29: fixed pair + escalate on disagreement (pair chosen on train): V_B, cost share", "(reference)",
         f"{pv:.4f} sd {psd:.4f}; {pc:.3f} sd {pcsd:.3f}", None),
        ("mmlu_pro-29: learned cascade V_B vs best single", ">= 1.04", f"{fv:.4f} sd {fsd:.4f}", fv >= 1.04),
        ("mmlu_pro-29: learned cascade cost share of best single", "<= 0.50", f"{fc:.4f} sd {fcsd:.4f}", fc <= 0.50),
        (f"mmlu_pro-29: online cascade V_B vs best single-call online learner ({best}: {s_vb[0]:.4f})",
         f"> {s_vb[0]:.4f}", f"{ov:.4f} sd {osd:.4f}", ov > s_vb[0]),
        (f"mmlu_pro-29: online cascade cost share vs the same learner's ({s_cs[0]:.4f})",
         f"< {s_cs[0]:.4f}", f"{oc:.4f} sd {ocsd:.4f}", oc < s_cs[0]),
    ]  # fmt: skip


def mmlu32(out: Path, seeds: Sequence[int]) -> list[Row]:
    shares, gaps, holds, layouts = [], [], [], []
    for s in seeds:
        rep = run_eval(f"mmlu32_s{s}", out, records=str(MMLU), seed=s)  # offline_targets' mmlu_pro-32 evaluation
        m, ref = rep["methods"]["cascade[full]"], rep["reference"]
        if m.get("cheapest_within_1pt_cost_share") is None:
            print(f"    seed {s}: no layout within 1 point on validation", flush=True)
            continue
        shares.append(m["cheapest_within_1pt_cost_share"])
        gaps.append(100 * (m["cheapest_within_1pt_quality"] - ref["best_single_quality"]))
        holds.append(bool(m["cheapest_within_1pt_holds_on_test"]))
        layouts.append(m["cheapest_within_1pt_stages"])
        print(f"    seed {s}: {ref['best_single_model']}; cost share {shares[-1]:.3f}, {gaps[-1]:+.2f} pt, "
              f"layout {layouts[-1]}", flush=True)  # fmt: skip
    if not shares:
        return [("mmlu_pro-32: cheapest cascade within 1pt of gemini-3.1", "report", "none found", False)]
    (c, csd), (g, gsd) = stats(shares), stats(gaps)
    ok = len(shares) == len(seeds) and g >= -1.0
    return [
        ("mmlu_pro-32: cheapest cascade within 1pt of gemini-3.1-pro-preview, cost share",
         f"report (single-call: {SINGLE_CALL_32})", f"{c:.4f} sd {csd:.4f}", ok and c < SINGLE_CALL_32),
        ("mmlu_pro-32: its test quality minus gemini-3.1's (points)", ">= -1.0",
         f"{g:+.2f} sd {gsd:.2f} ({sum(holds)}/{len(holds)} seeds within 1 pt)", ok),
    ]  # fmt: skip


TARGETS: dict[str, Callable[[Path, Sequence[int]], list[Row]]] = {"mmlu29": mmlu29, "mmlu32": mmlu32}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-cascade"))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--only", default=",".join(TARGETS), help=f"comma-separated subset of {list(TARGETS)}")
    ap.add_argument("--resume", action="store_true", help="reuse evaluations already in --out (same configuration)")
    args = ap.parse_args()
    targets.RESUME = args.resume
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: list[Row] = []
    for name in args.only.split(","):
        print(f"{name}:", flush=True)
        rows += TARGETS[name](out, seeds)
    print_table(rows)
    (out / "summary.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
