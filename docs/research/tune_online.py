"""Choose shared-linucb's online exploration on the TRAIN split only: inner 70/30 split of train, one cold pass on
inner-train, V_B on inner-val; mean over seeds. Then report the chosen config on the real test split."""

import itertools
import sys

import numpy as np

from banditroute.bandit import make_policy
from banditroute.env.features import FeaturizerSpec, cross_fit_cached, transform_cached
from banditroute.env.records import load_records

EXCL = {"gemini-3.1-pro-preview", "DeepSeek-V2-Chat", "DeepSeek-Coder-V2"}
seeds = [int(s) for s in sys.argv[1].split(",")]
policy = sys.argv[2] if len(sys.argv) > 2 else "shared-linucb"
rs0 = load_records("/work/main/data/mmlu_pro.parquet")
models = [m for m in rs0.models if m not in EXCL]
rs = load_records("/work/main/data/mmlu_pro.parquet", models=models)


def vb(P, Q, best):
    return (P * Q).sum(1).mean() / Q[:, best].mean()


def online(p, X, Q, C, seed):
    for i in np.random.default_rng(seed).permutation(len(X)):
        d = p.select(X[i])
        p.update(X[i], d.model, Q[i, d.index], C[i, d.index])
    return p


grid = (
    [dict(alpha=a, ridge=r) for a, r in itertools.product([0.1, 0.2, 0.3, 0.5], [1.0, 4.0, 16.0])]
    if policy.startswith("shared")
    else [dict(alpha=a) for a in [0.1, 0.2, 0.3, 0.5, 1.0]]
)
inner = {}
outer = {}
for seed in seeds:
    tr, te = rs.split(0.3, seed)
    spec = FeaturizerSpec.parse("category", dim=32)
    f, Xtr = cross_fit_cached(spec, list(tr.prompts), tr.benchmarks)
    Xte = transform_cached(f, list(te.prompts))
    cs = tr.cost_scale()
    perm = np.random.default_rng(seed + 1).permutation(len(tr))
    nv = round(len(tr) * 0.3)
    vi, fi = np.sort(perm[:nv]), np.sort(perm[nv:])
    bfit = int(np.argmax(tr.quality[fi].mean(0)))
    best = int(np.argmax(tr.quality.mean(0)))
    for g in grid:
        p = online(
            make_policy(policy, models, f.dim, cost_scale=cs, explore_floor=0.0, seed=seed, **g),
            Xtr[fi],
            tr.quality[fi],
            tr.cost[fi],
            seed,
        )
        inner.setdefault(str(g), []).append(vb(p.pmf_batch(Xtr[vi], 0.0), tr.quality[vi], bfit))
        p = online(
            make_policy(policy, models, f.dim, cost_scale=cs, explore_floor=0.0, seed=seed, **g),
            Xtr,
            tr.quality,
            tr.cost,
            seed,
        )
        outer.setdefault(str(g), []).append(vb(p.pmf_batch(Xte, 0.0), te.quality, best))
        print(seed, g, round(inner[str(g)][-1], 4), round(outer[str(g)][-1], 4), flush=True)
for g in inner:
    print(g, "inner-val", round(np.mean(inner[g]), 4), "test", round(np.mean(outer[g]), 4))
bestg = max(inner, key=lambda g: np.mean(inner[g]))
print("chosen on train:", bestg, "test mean", round(np.mean(outer[bestg]), 4))
