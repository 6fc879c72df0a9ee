"""``banditroute train-rl``: train a Stable-Baselines3 agent on the train split, evaluate it on the test split and
export it as ONNX. The only command that needs the ``[rl]`` extra (torch, stable-baselines3, onnx)."""

from __future__ import annotations

from typing import Annotated

import typer

from banditroute.cli.common import DimOpt, ModelsOpt, OutOpt, RecordsOpt, SeedOpt, TestFracOpt, check_choice, split_csv
from banditroute.cli.data_options import (
    FeaturesOpt,
    KeepDuplicatesOpt,
    LabelColumnOpt,
    NanScoresOpt,
    PricesOpt,
    SplitColumnOpt,
    data_options,
    feature_spec,
)
from banditroute.cli.evaluate import check_test_frac
from banditroute.cli.extras import RL_MODULES, require_extra


def train_rl(
    records: RecordsOpt,
    out: OutOpt,
    algo: Annotated[str, typer.Option(help="ppo | a2c | dqn | maskable-ppo (cascade env)")] = "ppo",
    env: Annotated[str, typer.Option(help="routing | budgeted | cascade")] = "routing",
    steps: Annotated[int, typer.Option(min=1, help="Environment steps to train for.")] = 20_000,
    seed: SeedOpt = 0,
    test_frac: TestFracOpt = 0.3,
    lam: Annotated[float, typer.Option(help="Price of cost_scale USD in quality units.")] = 0.0,
    models: ModelsOpt = None,
    torch_threads: Annotated[int, typer.Option(min=1, help="torch threads (1 is fastest for these small nets).")] = 1,
    budget_per_query: Annotated[float | None, typer.Option(help="Budgeted env: USD per query.")] = None,
    features: FeaturesOpt = None,
    dim: DimOpt = 64,
    prices: PricesOpt = None,
    split_column: SplitColumnOpt = None,
    keep_duplicates: KeepDuplicatesOpt = False,
    nan_scores: NanScoresOpt = "error",
    label_column: LabelColumnOpt = "benchmark",
) -> None:
    """Train a Stable-Baselines3 agent on the train split, evaluate it on the test split, export ONNX."""
    from banditroute.simulations.rl import ALGOS, ENVS  # no torch at the module level of rl.py

    check_choice(algo, ALGOS, "--algo")
    check_choice(env, ENVS, "--env")
    check_test_frac(test_frac)
    options = data_options(
        prices=prices,
        split_column=split_column,
        keep_duplicates=keep_duplicates,
        nan_scores=nan_scores,
        label_column=label_column,
    )
    spec = feature_spec(features, dim)
    for module in RL_MODULES:  # before the records are read, so a core install answers at once
        require_extra(module, "rl", "train-rl")
    from banditroute.simulations.rl import train_rl as run

    metrics = run(
        records,
        algo=algo,
        env_kind=env,
        steps=steps,
        out=out,
        seed=seed,
        test_frac=test_frac,
        lam=lam,
        models=split_csv(models),
        torch_threads=torch_threads,
        budget_per_query=budget_per_query,
        spec=spec,
        options=options,
    )
    t, r = metrics["test"], metrics["random"]
    typer.echo(
        f"{algo}/{env}: test quality {t['mean_quality']:.4f} (random {r['mean_quality']:.4f}, best single "
        f"{metrics['best_single']['mean_quality']:.4f}, oracle {metrics['oracle']['mean_quality']:.4f}), "
        f"mean cost ${t['mean_cost_usd']:.6f}; ONNX parity {metrics['onnx_parity']['mismatches']} mismatches"
    )
    typer.echo(f"wrote {out / 'metrics.json'}")
