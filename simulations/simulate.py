"""``banditroute simulate SCENARIO``: load the scenario's config, prepare the records, run, and write
``results.json`` (figures, the config and the seed), ``report.md`` and PNG plots into the output directory.

A scenario is a module in ``simulations/scenarios/`` with ``run(ctx) -> results`` and a config
``simulations/configs/NAME.toml``; results hold ``tables`` (name -> rows) and ``plots`` (file, title, axes,
series), which the report writer renders, so that the report shows exactly what results.json holds.
"""

from __future__ import annotations

import importlib
import json
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from banditroute.bandit.errors import InvalidHyperparameterError
from banditroute.env.features import FeaturizerSpec
from banditroute.simulations.data import DEFAULT_FEATURES, DataOptions, Prepared, prepare
from banditroute.simulations.report import write_simulation_report

CONFIGS = Path(__file__).resolve().parent / "configs"
SCENARIOS = {
    "online": "banditroute.simulations.scenarios.online",
    "feedback-noise": "banditroute.simulations.scenarios.feedback_noise",
    "drift": "banditroute.simulations.scenarios.drift",
    "budget": "banditroute.simulations.scenarios.budget",
    "scaling": "banditroute.simulations.scenarios.scaling",
    "ab": "banditroute.simulations.scenarios.ab",
    "ope": "banditroute.simulations.scenarios.ope_check",
}


@dataclass
class Context:
    """What a scenario gets: its config (after overrides), the prepared split, the seed and the output folder."""

    name: str
    cfg: dict[str, Any]
    prep: Prepared
    seed: int
    out: Path
    progress: bool = True
    notes: list[str] = field(default_factory=list)


def load_config(name: str, quick: bool = False, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The scenario's TOML config; ``[quick]`` values replace the defaults when ``quick``; then ``overrides``."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {sorted(SCENARIOS)}")
    cfg = tomllib.loads((CONFIGS / f"{name.replace('-', '_')}.toml").read_text())
    q = cfg.pop("quick", {})
    if quick:
        cfg.update(q)
    cfg.update(overrides or {})
    return cfg


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values are parsed as TOML (numbers, booleans, lists, quoted strings, inline tables) or
    kept as text; a dotted key sets a nested value (``hyperparameters.knn.alpha=0.01``)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set takes key=value, got {item!r}")
        k, v = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {v}")["v"]
        except tomllib.TOMLDecodeError:
            value = v
        *parents, leaf = [part.strip() for part in k.split(".")]
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {k}: {part!r} is already set to a value, not a table")
        node[leaf] = value
    return out


def check_hyperparameters(cfg: dict[str, Any]) -> None:
    """``[hyperparameters.NAME]`` tables of keyword values, refused with what to write otherwise."""
    hyper = cfg.get("hyperparameters", {})
    if not isinstance(hyper, dict) or not all(isinstance(v, dict) for v in hyper.values()):
        raise InvalidHyperparameterError(
            f"hyperparameters must be a table of tables, got {hyper!r}; "
            "write --set hyperparameters.NAME.PARAM=VALUE, e.g. --set hyperparameters.knn.alpha=0.01"
        )


def simulate(
    name: str,
    records: str | Path | None,
    out: str | Path,
    *,
    seed: int = 0,
    quick: bool = False,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    cfg = load_config(name, quick, overrides)
    check_hyperparameters(cfg)
    records = str(records or cfg.get("records", "data/mmlu_pro.parquet"))
    cfg["records"] = records
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    prep = prepare(
        records,
        seed=seed,
        test_frac=float(cfg.get("test_frac", 0.3)),
        models=cfg.get("models"),
        benchmark=cfg.get("benchmark"),
        spec=FeaturizerSpec.parse(str(cfg.get("features", DEFAULT_FEATURES)), dim=int(cfg.get("dim", 64))),
        options=DataOptions(
            prices=cfg.get("prices"),
            split_column=cfg.get("split_column"),
            merge_duplicates=not bool(cfg.get("keep_duplicates", False)),
            nan_scores=str(cfg.get("nan_scores", "error")),
            label_column=str(cfg.get("label_column", "benchmark")),
        ),
    )
    ctx = Context(name, cfg, prep, seed, out, progress)
    results: dict[str, Any] = importlib.import_module(SCENARIOS[name]).run(ctx)
    results.update(
        scenario=name,
        seed=seed,
        quick=quick,
        config=cfg,
        notes=ctx.notes + results.get("notes", []),
        dataset={
            "path": records,
            "models": list(prep.train.models),
            "n_train": len(prep.train),
            "n_test": len(prep.test),
        },
        seconds=round(time.perf_counter() - t0, 1),
    )
    (out / "results.json").write_text(json.dumps(results, indent=2, default=_jsonable))
    (out / "config.toml").write_text(_to_toml(cfg))
    write_simulation_report(results, out)
    return results


def _jsonable(v: Any) -> Any:
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")


def _to_toml(cfg: dict[str, Any]) -> str:
    lines = []
    for k, v in cfg.items():
        if isinstance(v, dict):
            continue
        lines.append(f"{k} = {json.dumps(v)}")
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {json.dumps(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"
