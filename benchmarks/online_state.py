"""What one cold online pass leaves behind, on mmlu_pro-29 with `category` features: the learner's test V_B
deciding with its own distribution (what `evaluate` reports as ``NAME[online]``) and deciding greedily on its
estimates (no confidence bonus, no exploration floor), for several ways of learning: the learner's own choices at
a few exploration widths, and uniformly random choices it only learns from. Evidence for issue 11's online
target (>= 1.02): how far the state an online pass learns is from it, whatever the test-time exploration.

Run:  .venv/bin/python benchmarks/online_state.py [--seeds 0,1,2,3,4]
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
from targets import MMLU, models_29

from banditroute.bandit import make_policy
from banditroute.bandit.pmf import greedy_pmf
from banditroute.simulations.evaluate import EvalConfig, Setup, _reference, _setup
from banditroute.simulations.methods import online_pass

#: (policy, hyperparameters, behaviour): "own" learns from its own choices (evaluate's online pass), "uniform"
#: from uniformly random choices (pure exploration)
CONFIGS: list[tuple[str, dict[str, float], str]] = [
    ("shared-linucb", {}, "own"),
    ("shared-linucb", {"alpha": 1.0}, "own"),
    ("shared-linucb", {"alpha": 2.0}, "own"),
    ("shared-linucb", {}, "uniform"),
    ("linucb", {}, "own"),
]


def learn(name: str, hyper: dict[str, float], behaviour: str, st: Setup, seed: int) -> tuple[float, float]:
    """Test V_B of the learned state by its own distribution and greedily."""
    p = make_policy(name, st.models, st.train.X.shape[1], seed=seed, **hyper)
    if behaviour == "own":
        online_pass(p, st.train.X, st.train.Q, st.train.C, seed=seed)
    else:
        rng = np.random.default_rng(seed)
        for i, j in zip(rng.permutation(len(st.train.X)), rng.integers(0, p.k, len(st.train.X)), strict=True):
            p.update(st.train.X[i], p.models[j], float(st.train.Q[i, j]), float(st.train.C[i, j]))
    best = _reference(st)["best_single_quality"]
    own = p.pmf_batch(st.test.X, 0.0)
    q, _ = p.estimates(st.test.X)
    greedy = greedy_pmf(q, np.ones_like(q, dtype=bool))
    return float((own * st.test.Q).sum(1).mean()) / best, float((greedy * st.test.Q).sum(1).mean()) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    args = ap.parse_args()
    results: dict[str, list[tuple[float, float]]] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        st = _setup(EvalConfig(records=str(MMLU), out="-", seed=seed, models=models_29(), progress=False), "category")
        for name, hyper, behaviour in CONFIGS:
            results.setdefault(f"{name} {json.dumps(hyper)} {behaviour}", []).append(
                learn(name, hyper, behaviour, st, seed)
            )
    print("| learner, hyperparameters, choices learned from | V_B, own distribution | V_B, greedy |\n|---|---|---|")
    for key, vals in results.items():
        own, greedy = zip(*vals, strict=True)
        print(f"| {key} | {statistics.mean(own):.4f} | {statistics.mean(greedy):.4f} |")


if __name__ == "__main__":
    main()
