"""``banditroute simulate SCENARIO``: run one of the simulation scenarios and print its tables and checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from banditroute.cli.common import OutOpt, SeedOpt
from banditroute.cli.data_options import (
    FeaturesOpt,
    KeepDuplicatesOpt,
    LabelColumnOpt,
    PricesOpt,
    SplitColumnOpt,
    data_options,
    feature_spec,
)
from banditroute.cli.errors import UserError
from banditroute.cli.extras import RL_MODULES, require_extra


def scenario_config(scenario: str, quick: bool, set_: list[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``--set`` overrides and the config they give, checked before any records are read.

    Raises:
        UserError: an unknown scenario, or a ``--set`` that is not ``key=value``.
        MissingExtraError: the config trains an SB3 agent (``rl_steps > 0``) and ``[rl]`` is not installed.
    """
    from banditroute.simulations.simulate import SCENARIOS, load_config, parse_overrides

    if scenario not in SCENARIOS:
        raise UserError(f"unknown scenario {scenario!r}", f"choose one of {', '.join(sorted(SCENARIOS))}")
    try:
        overrides = parse_overrides(set_)
    except ValueError as exc:  # parse_overrides raises only for an item without '='
        raise UserError(str(exc), "write --set key=value, e.g. --set steps=500") from exc
    cfg = load_config(scenario, quick=quick, overrides=overrides)
    if int(cfg.get("rl_steps", 0)) > 0:
        for module in RL_MODULES:
            require_extra(module, "rl", f"simulate {scenario} with an SB3 agent", "or pass --set rl_steps=0")
    return overrides, cfg


def _short(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def simulate(
    scenario: Annotated[str, typer.Argument(help="online | feedback-noise | drift | budget | scaling | ab | ope")],
    out: OutOpt,
    records: Annotated[Path | None, typer.Option("--records", help="Record file (default: the config's).")] = None,
    seed: SeedOpt = 0,
    quick: Annotated[bool, typer.Option(help="The config's [quick] sizes (for tests and a first look).")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config value: key=value.")] = None,
    features: FeaturesOpt = None,
    prices: PricesOpt = None,
    split_column: SplitColumnOpt = None,
    keep_duplicates: KeepDuplicatesOpt = False,
    label_column: LabelColumnOpt = "benchmark",
) -> None:
    """Run a simulation scenario; write results.json, report.md, plots and the config used into OUT."""
    overrides, _ = scenario_config(scenario, quick, set_)
    options = data_options(
        prices=prices,
        split_column=split_column,
        keep_duplicates=keep_duplicates,
        nan_scores=str(overrides.get("nan_scores", "error")),
        label_column=label_column,
    )
    if features is not None:
        feature_spec(features, 64)
        overrides["features"] = features
    overrides.update(
        {k: v for k, v in (("prices", options.prices), ("split_column", options.split_column)) if v is not None}
    )
    if keep_duplicates:
        overrides["keep_duplicates"] = True
    if label_column != "benchmark":
        overrides["label_column"] = label_column
    from banditroute.simulations.simulate import simulate as run

    results = run(scenario, records, out, seed=seed, quick=quick, overrides=overrides)
    for name, rows in results["tables"].items():
        if rows:
            typer.echo(f"{name}:")
            for r in rows:
                typer.echo("  " + ", ".join(f"{k}={_short(v)}" for k, v in r.items()))
    for k, v in results.get("checks", {}).items():
        typer.echo(f"check {k}: {v}")
    typer.echo(f"wrote {out / 'report.md'} ({results['seconds']} s)")
