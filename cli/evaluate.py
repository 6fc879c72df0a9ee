"""``banditroute evaluate`` (every baseline and bandit on one split, a report) and ``banditroute fit`` (warm-start
one policy on the train split and export its artifact)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from banditroute.cli.common import (
    DimOpt,
    ModelsOpt,
    OutOpt,
    RecordsOpt,
    SeedOpt,
    TestFracOpt,
    check_choice,
    parse_json_object,
    split_csv,
)
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
from banditroute.cli.errors import UserError
from banditroute.cli.extras import require_extra


def check_test_frac(test_frac: float) -> None:
    """Refuse a held-out share outside (0, 1) before any records are read."""
    if not 0.0 < test_frac < 1.0:
        raise UserError(f"--test-frac {test_frac} is outside (0, 1)", "pass a share such as 0.3")


def _hyper_by_policy(hyper: str | None) -> dict[str, dict[str, Any]]:
    parsed = parse_json_object(hyper, "--hyper")
    for name, params in parsed.items():
        if not isinstance(params, dict):
            raise UserError(
                f"--hyper[{name!r}] must be an object of hyperparameters, got {type(params).__name__}",
                """pass {"policy": {"param": value}}, e.g. --hyper '{"linucb": {"alpha": 0.2}}'""",
            )
    return parsed


def _check_rl_dirs(dirs: list[Path]) -> None:
    for d in dirs:
        if not (d / "policy.onnx").is_file() or not (d / "metrics.json").is_file():
            raise UserError(f"--rl {d} holds no policy.onnx and metrics.json", "pass the --out directory of train-rl")
    if dirs:
        require_extra("onnxruntime", "onnx", "evaluate --rl", "or banditroute[rl], which includes it")


def evaluate(
    records: RecordsOpt,
    out: OutOpt,
    seed: SeedOpt = 0,
    test_frac: TestFracOpt = 0.3,
    models: ModelsOpt = None,
    policies: Annotated[str | None, typer.Option(help="Comma-separated bandit policies (default: all).")] = None,
    benchmark: Annotated[str | None, typer.Option(help="Keep only this benchmark (name or prefix).")] = None,
    rl: Annotated[list[Path] | None, typer.Option(help="A train-rl output directory (repeatable).")] = None,
    dim: DimOpt = 64,
    nan_scores: NanScoresOpt = "error",
    hyper: Annotated[str | None, typer.Option(help='JSON {"policy": {"param": value}} overrides.')] = None,
    features: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated featurizers, each a registry name or names joined by '+' (default: category)."
        ),
    ] = None,
    prices: PricesOpt = None,
    split_column: SplitColumnOpt = None,
    keep_duplicates: KeepDuplicatesOpt = False,
    label_column: LabelColumnOpt = "benchmark",
) -> None:
    """Evaluate every baseline and bandit policy on one train/test split; write report.json/.md and plots."""
    options = data_options(
        prices=prices,
        split_column=split_column,
        keep_duplicates=keep_duplicates,
        nan_scores=nan_scores,
        label_column=label_column,
    )
    feature_sets: list[str] | None = split_csv(features)
    for f in feature_sets or ["category"]:
        feature_spec(f, dim)
    check_test_frac(test_frac)
    hyperparameters = _hyper_by_policy(hyper)
    _check_rl_dirs(rl or [])
    from banditroute.simulations.evaluate import EvalConfig, evaluate
    from banditroute.simulations.report import summary_rows

    chosen: dict[str, Any] = {"policies": split_csv(policies)} if policies else {}  # default: every bandit
    cfg = EvalConfig(
        records=str(records),
        out=str(out),
        seed=seed,
        test_frac=test_frac,
        models=split_csv(models),
        benchmark=benchmark,
        rl_dirs=[str(p) for p in rl or []],
        dim=dim,
        nan_scores=nan_scores,
        hyperparameters=hyperparameters,
        features=feature_sets,
        prices=options.prices,
        split_column=options.split_column,
        keep_duplicates=not options.merge_duplicates,
        label_column=options.label_column,
        **chosen,
    )
    report = evaluate(cfg)
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


def fit(
    records: RecordsOpt,
    out: Annotated[Path, typer.Option("--out", help="Artifact to write (.zip, or a directory).")],
    policy: Annotated[str, typer.Option(help="Registry name of the policy.")] = "shared-linucb",
    seed: SeedOpt = 0,
    test_frac: Annotated[float, typer.Option(help="Share held out (not used for fitting).")] = 0.3,
    models: ModelsOpt = None,
    dim: DimOpt = 64,
    features: FeaturesOpt = None,
    hyper: Annotated[str | None, typer.Option(help='JSON hyperparameters, e.g. {"alpha": 0.1}.')] = None,
    prices: PricesOpt = None,
    split_column: SplitColumnOpt = None,
    keep_duplicates: KeepDuplicatesOpt = False,
    nan_scores: NanScoresOpt = "error",
    label_column: LabelColumnOpt = "benchmark",
) -> None:
    """Fit the featurizer and warm-start a policy on the train split (full information); export the artifact."""
    check_test_frac(test_frac)
    hyperparameters = parse_json_object(hyper, "--hyper")
    options = data_options(
        prices=prices,
        split_column=split_column,
        keep_duplicates=keep_duplicates,
        nan_scores=nan_scores,
        label_column=label_column,
    )
    spec = feature_spec(features, dim)
    from banditroute.bandit import POLICIES, export, make_policy
    from banditroute.simulations.data import prepare

    check_choice(policy, sorted(POLICIES), "--policy")
    prep = prepare(records, seed=seed, test_frac=test_frac, models=split_csv(models), spec=spec, options=options)
    p = make_policy(
        policy, prep.train.models, prep.featurizer.dim, cost_scale=prep.cost_scale, seed=seed, **hyperparameters
    )
    note = _fit(p, prep)
    export(p, out, featurizer=prep.featurizer)
    typer.echo(
        f"{policy} on {len(prep.train.models)} models, {len(prep.train)} train queries, "
        f"features {spec.describe()} (dim {prep.featurizer.dim}){note} -> {out}"
    )


def _fit(p: Any, prep: Any) -> str:
    """Warm-start ``p`` on the train split; a cascade's stop decision too when the records carry answers."""
    from banditroute.bandit.cascade import Cascade

    if isinstance(p, Cascade):
        from banditroute.simulations.cascade import as_labels, cascade_data

        d = cascade_data(prep.train, prep.x_train, prep.featurizer)
        if d is not None:
            p.fit_full(d.X, d.Q, d.C, answers=as_labels(d), lengths=d.lengths)
            return "; stop decision fitted on the models' answers"
    p.fit_full(prep.x_train, prep.train.quality, prep.train.cost)
    if not isinstance(p, Cascade):
        return ""
    return "; the records carry no answers (`pred` or `response`): the stop decision starts untrained"
