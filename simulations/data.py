"""The one place that turns a record file into split, featurized arrays for simulations and training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from banditroute.env.features import (
    Featurizer,
    FeaturizerSpec,
    cross_fit_cached,
    transform_cached,
)
from banditroute.env.records import RecordSet, load_records

#: the featurizer every command uses unless told otherwise (measured best: README "Results"); on records whose
#: label column has a single value (one benchmark) the default falls back to ``tfidf-svd``
DEFAULT_FEATURES = "category"


@dataclass(frozen=True)
class DataOptions:
    """How records become a split (the flags every command that reads records shares).

    Attributes:
        prices: price table CSV for rows without ``cost_usd`` (default: ``prices.csv`` beside the records).
        split_column: use the records' own split (``train``/``test``/out-of-domain) instead of a seeded one.
        merge_duplicates: merge queries with identical prompts (``--keep-duplicates`` turns it off).
        nan_scores: ``error`` or ``missing``: what a NaN score means.
        label_column: what supervised featurizers (``category``) learn to predict.
        cross_fit_folds: out-of-fold train features for supervised featurizers (0 or 1: in-sample).
    """

    prices: str | None = None
    split_column: str | None = None
    merge_duplicates: bool = True
    nan_scores: str = "error"
    label_column: str = "benchmark"
    cross_fit_folds: int = 5


@dataclass(frozen=True)
class Prepared:
    """A train/test split with features fitted on the train prompts only.

    Attributes:
        records: all loaded records; ``train``/``test``: the split; ``ood``: an out-of-domain test split when the
            records' own split column has one.
        x_train: ``(n_train, d)`` (out of fold for supervised featurizers); ``x_test``: ``(n_test, d)``.
        featurizer: fitted on ``train.prompts`` (and their labels).
        cost_scale: USD, from the train split (the most expensive model's mean cost).
    """

    records: RecordSet
    train: RecordSet
    test: RecordSet
    x_train: np.ndarray
    x_test: np.ndarray
    featurizer: Featurizer
    cost_scale: float
    ood: RecordSet | None = None
    x_ood: np.ndarray | None = None


def load(
    path: str | Path, *, models: Sequence[str] | None = None, benchmark: str | None = None, options: DataOptions
) -> RecordSet:
    """Load ``path`` with ``options``, optionally keeping ``models`` and one ``benchmark`` (prefix)."""
    records = load_records(
        path,
        prices=options.prices,
        models=models,
        nan_scores=options.nan_scores,  # type: ignore[arg-type]
        merge_duplicates=options.merge_duplicates,
    )
    return records.with_benchmarks(benchmark) if benchmark else records


def prepare(
    path: str | Path,
    *,
    seed: int = 0,
    test_frac: float = 0.3,
    models: Sequence[str] | None = None,
    benchmark: str | None = None,
    spec: FeaturizerSpec | None = None,
    options: DataOptions | None = None,
    use_cache: bool = True,
    dim: int = 64,
) -> Prepared:
    """Load ``path``, split (seeded, or by the records' own column), fit features on the train split.

    ``spec`` None: the default featurizer (``dim`` wide where it is SVD-reduced)."""
    options = options or DataOptions()
    records = load(path, models=models, benchmark=benchmark, options=options)
    ood = None
    if options.split_column:
        train, test, ood = records.split_by_column(options.split_column)
    else:
        train, test = records.split(test_frac=test_frac, seed=seed)
    labels = None
    if spec is None:
        spec = FeaturizerSpec.parse(DEFAULT_FEATURES, dim=dim)
        if len(set(train.column(options.label_column))) < 2:  # one label (one benchmark): nothing to predict
            spec = FeaturizerSpec(kind="tfidf-svd", dim=dim)
    if Featurizer(spec).needs_labels:
        labels = train.column(options.label_column)
    featurizer, x_train = cross_fit_cached(
        spec, list(train.prompts), labels, folds=options.cross_fit_folds, use_cache=use_cache
    )
    x_test = transform_cached(featurizer, list(test.prompts), use_cache=use_cache)
    x_ood = None if ood is None else transform_cached(featurizer, list(ood.prompts), use_cache=use_cache)
    return Prepared(records, train, test, x_train, x_test, featurizer, train.cost_scale(), ood, x_ood)
