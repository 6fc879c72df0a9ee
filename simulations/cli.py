"""The ``banditroute`` command line (typer). Each command imports its machinery lazily, so that
``banditroute --help`` is fast and only ``train-rl`` loads torch and stable-baselines3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="banditroute: an LLM router that learns.")

RecordsOpt = Annotated[Path, typer.Option("--records", help="Record file (.parquet, .csv[.gz], .jsonl[.gz]).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output directory.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the split and of every generator.")]


@app.callback()
def main() -> None:
    """banditroute: an LLM router that learns."""


def _models(value: str | None) -> list[str] | None:
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


@app.command("train-rl")
def train_rl_cmd(
    records: RecordsOpt,
    out: OutOpt,
    algo: Annotated[str, typer.Option(help="ppo | a2c | dqn")] = "ppo",
    env: Annotated[str, typer.Option(help="routing | budgeted")] = "routing",
    steps: Annotated[int, typer.Option(help="Environment steps to train for.")] = 20_000,
    seed: SeedOpt = 0,
    test_frac: Annotated[float, typer.Option(help="Share of queries held out for the test split.")] = 0.3,
    lam: Annotated[float, typer.Option(help="Price of cost_scale USD in quality units.")] = 0.0,
    models: Annotated[str | None, typer.Option(help="Comma-separated models to keep (default: all).")] = None,
    torch_threads: Annotated[int, typer.Option(help="torch threads (1 is fastest for these small nets).")] = 1,
    budget_per_query: Annotated[float | None, typer.Option(help="Budgeted env: USD per query.")] = None,
) -> None:
    """Train a Stable-Baselines3 agent on the train split, evaluate it on the test split, export ONNX."""
    from simulations.rl import train_rl

    metrics = train_rl(
        records,
        algo=algo,
        env_kind=env,
        steps=steps,
        out=out,
        seed=seed,
        test_frac=test_frac,
        lam=lam,
        models=_models(models),
        torch_threads=torch_threads,
        budget_per_query=budget_per_query,
    )
    t, r = metrics["test"], metrics["random"]
    typer.echo(
        f"{algo}/{env}: test quality {t['mean_quality']:.4f} (random {r['mean_quality']:.4f}, best single "
        f"{metrics['best_single']['mean_quality']:.4f}, oracle {metrics['oracle']['mean_quality']:.4f}), "
        f"mean cost ${t['mean_cost_usd']:.6f}; ONNX parity {metrics['onnx_parity']['mismatches']} mismatches"
    )
    typer.echo(f"wrote {out / 'metrics.json'}")
    _ = json  # json output is in metrics.json


if __name__ == "__main__":  # pragma: no cover
    app()
