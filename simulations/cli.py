"""The ``banditroute`` command line (typer). Each command imports its machinery lazily, so that
``banditroute --help`` is fast and only ``train-rl`` loads torch and stable-baselines3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="banditroute: an LLM router that learns.")


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors in the user's input (records, artifacts, hyperparameters): reported as a message and exit code 2,
    not a traceback, because the message says what to fix."""
    from bandit.errors import BanditError
    from env.costs import PriceTableError
    from env.features import FeaturizerError
    from env.records import RecordsError

    return (BanditError, RecordsError, PriceTableError, FeaturizerError)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


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


@app.command("evaluate")
def evaluate_cmd(
    records: RecordsOpt,
    out: OutOpt,
    seed: SeedOpt = 0,
    test_frac: Annotated[float, typer.Option(help="Share of queries held out for the test split.")] = 0.3,
    models: Annotated[str | None, typer.Option(help="Comma-separated models to keep (default: all).")] = None,
    policies: Annotated[str | None, typer.Option(help="Comma-separated bandit policies (default: all).")] = None,
    benchmark: Annotated[str | None, typer.Option(help="Keep only this benchmark (name or prefix).")] = None,
    rl: Annotated[list[Path] | None, typer.Option(help="A train-rl output directory (repeatable).")] = None,
    dim: Annotated[int, typer.Option(help="Feature dimension.")] = 64,
    nan_scores: Annotated[str, typer.Option(help="error | missing: what a NaN score means.")] = "error",
    hyper: Annotated[str | None, typer.Option(help='JSON {"policy": {"param": value}} overrides.')] = None,
) -> None:
    """Evaluate every baseline and bandit policy on one train/test split; write report.json/.md and plots."""
    from simulations.evaluate import BANDITS, EvalConfig, evaluate, parse_csv, summary_rows

    cfg = EvalConfig(
        records=str(records),
        out=str(out),
        seed=seed,
        test_frac=test_frac,
        models=parse_csv(models),
        policies=parse_csv(policies) or list(BANDITS),
        benchmark=benchmark,
        rl_dirs=[str(p) for p in rl or []],
        dim=dim,
        nan_scores=nan_scores,
        hyperparameters=json.loads(hyper) if hyper else {},
    )
    try:
        report = evaluate(cfg)
    except (*_user_errors(), ValueError) as exc:
        raise _fail(exc) from exc
    for name, m in summary_rows(report):
        if name.startswith("single:"):
            continue
        share = m["cheapest_within_1pt_cost_share"]
        extra = f"  APGR {m['apgr']:.3f}" if m.get("apgr") is not None else ""
        typer.echo(
            f"{name:28s} quality {m['quality']:.4f}  cost ${m['cost_usd']:.6f}  V_B {m['v_b']:.4f}  "
            f"AIQ {m['aiq']:.4f}  within-1pt share {'-' if share is None else f'{share:.3f}'}{extra}"
        )
    typer.echo(f"wrote {out / 'report.md'} ({report['seconds']} s)")


if __name__ == "__main__":  # pragma: no cover
    app()
