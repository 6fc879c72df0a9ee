"""The flags every command that reads records shares: features, prices, the records' own split, duplicates,
NaN scores and the label column; each turned into a one-line error when it cannot be used."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from banditroute.cli.common import check_choice
from banditroute.cli.errors import UserError
from banditroute.cli.extras import require_extra

if TYPE_CHECKING:
    from banditroute.env.features import FeaturizerSpec
    from banditroute.simulations.data import DataOptions

NAN_SCORES = ("error", "missing")

FeaturesOpt = Annotated[
    str | None,
    typer.Option(
        help="Featurizer: a registry name (tfidf-svd, category, lexical, minilm) or several joined by '+' "
        "(default: category)."
    ),
]
PricesOpt = Annotated[
    Path | None,
    typer.Option(help="Price table CSV (model,input_usd_per_mtok,output_usd_per_mtok) for rows without cost_usd."),
]
SplitColumnOpt = Annotated[
    str | None, typer.Option(help="Use the records' own split column (train/test/ood values), not a seeded split.")
]
KeepDuplicatesOpt = Annotated[
    bool, typer.Option(help="Keep queries with identical prompts apart (default: merged, scores averaged).")
]
LabelColumnOpt = Annotated[str, typer.Option(help="Per-query column the category featurizer learns to predict.")]
NanScoresOpt = Annotated[str, typer.Option(help="error | missing: what a NaN score means.")]


def feature_spec(features: str | None, dim: int) -> FeaturizerSpec:
    """The featurizer spec of ``--features`` (checked, with its optional package present)."""
    from banditroute.env.features import FEATURIZERS, FeaturizerError, FeaturizerSpec
    from banditroute.simulations.data import DEFAULT_FEATURES

    text = features or DEFAULT_FEATURES
    try:
        spec = FeaturizerSpec.parse(text, dim=dim)
    except FeaturizerError as exc:
        raise UserError(f"--features {text!r}: {exc}", f"choose among {', '.join(FEATURIZERS)}") from exc
    for kind in spec.kinds:
        requires = FEATURIZERS[kind].requires
        if requires:
            require_extra(*requires, f"the {kind} featurizer (--features {text})")
    return spec


def data_options(
    *,
    prices: Path | None,
    split_column: str | None,
    keep_duplicates: bool,
    nan_scores: str,
    label_column: str,
) -> DataOptions:
    """The :class:`DataOptions` of the shared flags (a price table is checked to exist before any work)."""
    from banditroute.simulations.data import DataOptions

    check_choice(nan_scores, NAN_SCORES, "--nan-scores")
    if prices is not None and not prices.is_file():
        raise UserError(
            f"--prices {prices}: no such file", "pass a CSV with model,input_usd_per_mtok,output_usd_per_mtok"
        )
    return DataOptions(
        prices=str(prices) if prices else None,
        split_column=split_column,
        merge_duplicates=not keep_duplicates,
        nan_scores=nan_scores,
        label_column=label_column,
    )
