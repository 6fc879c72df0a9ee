"""Learner speed, side by side in one run: decisions + updates per second in-process on the same stream, for our
LinUCB against MABWiser's LinUCB and Vowpal Wabbit's cb_explore_adf (squarecb), at 10 and 32 models and 64
features; plus batch scoring rows per second.

Run:  .venv/bin/pip install -e '.[peers]' && .venv/bin/python benchmarks/learner_speed.py [--steps 3000]

Figures are ratios within this one run (absolute times drift on shared machines). Every loop is bounded by
--steps and by --max-seconds per learner.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from banditroute.bandit import LinUCB
from banditroute.simulations.peers import MABWiserLinUCB, VWLearner
from banditroute.simulations.stream import PolicyLearner


def stream(k: int, d: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) / np.sqrt(d)
    X[:, -1] = 1.0
    W = rng.normal(size=(k, d))
    Q = 1 / (1 + np.exp(-(X @ W.T)))
    return X, (rng.random((n, k)) < Q).astype(float)


def speed(learner: object, X: np.ndarray, Q: np.ndarray, max_seconds: float) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for i in range(X.shape[0]):
        a, p = learner.select(X[i])  # type: ignore[attr-defined]
        learner.update(X[i], a, float(Q[i, a]), 0.001, p)  # type: ignore[attr-defined]
        n += 1
        if time.perf_counter() - t0 > max_seconds:
            break
    return n / (time.perf_counter() - t0), n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    args = ap.parse_args()
    d = 64
    print(f"decisions+updates per second, {d} features, {args.steps} steps (max {args.max_seconds} s per learner)")
    print("| models | learner | per second | steps | ours / it |\n|---|---|---|---|---|")
    for k in (10, 32):
        X, Q = stream(k, d, args.steps)
        ours, _ = speed(PolicyLearner("linucb", LinUCB([f"m{j}" for j in range(k)], d, seed=0)), X, Q, args.max_seconds)
        rows = [("banditroute linucb", ours, args.steps)]
        peers: list[tuple[str, Callable[[int], Any]]] = [
            ("vowpalwabbit cb_explore_adf squarecb", lambda k: VWLearner(k, "squarecb", 0)),
            ("mabwiser linucb", lambda k: MABWiserLinUCB(k, 0)),
        ]
        for name, make in peers:
            try:
                learner = make(k)
            except ImportError:
                rows.append((name + " (not installed)", float("nan"), 0))
                continue
            rate, n = speed(learner, X, Q, args.max_seconds)
            rows.append((name, rate, n))
        for name, rate, n in rows:
            print(f"| {k} | {name} | {rate:,.0f} | {n} | {ours / rate:.2f} |")
        p = LinUCB([f"m{j}" for j in range(k)], d, seed=0)
        p.fit_full(X[:500], Q[:500], np.full((500, k), 0.001))
        t0 = time.perf_counter()
        p.pmf_batch(X, 0.0)
        print(
            f"| {k} | banditroute linucb batch scoring (pmf_batch) | {X.shape[0] / (time.perf_counter() - t0):,.0f}"
            f" rows | {X.shape[0]} | - |"
        )


if __name__ == "__main__":
    main()
