"""The one place that turns a record file into split, featurized arrays for simulations and training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from banditroute.env.features import Featurizer, FeaturizerSpec, fit_cached, transform_cached
from banditroute.env.records import RecordSet, load_records


@dataclass(frozen=True)
class Prepared:
    """A train/test split with features fitted on the train prompts only.

    Attributes:
        records: all loaded records; ``train``/``test``: the split.
        x_train: ``(n_train, d)``; ``x_test``: ``(n_test, d)``.
        featurizer: fitted on ``train.prompts``.
        cost_scale: USD, from the train split (the most expensive model's mean cost).
    """

    records: RecordSet
    train: RecordSet
    test: RecordSet
    x_train: np.ndarray
    x_test: np.ndarray
    featurizer: Featurizer
    cost_scale: float


def prepare(
    path: str | Path,
    *,
    seed: int = 0,
    test_frac: float = 0.3,
    models: Sequence[str] | None = None,
    benchmark: str | None = None,
    spec: FeaturizerSpec | None = None,
    prices: str | Path | None = None,
    nan_scores: str = "error",
    use_cache: bool = True,
) -> Prepared:
    """Load ``path``, optionally keep ``models`` and one ``benchmark`` (prefix), split, fit features on train."""
    records = load_records(path, prices=prices, models=models, nan_scores=nan_scores)  # type: ignore[arg-type]
    if benchmark:
        records = records.with_benchmarks(benchmark)
    train, test = records.split(test_frac=test_frac, seed=seed)
    featurizer = fit_cached(spec or FeaturizerSpec(), list(train.prompts), use_cache=use_cache)
    x_train = transform_cached(featurizer, list(train.prompts), use_cache=use_cache)
    x_test = transform_cached(featurizer, list(test.prompts), use_cache=use_cache)
    return Prepared(records, train, test, x_train, x_test, featurizer, train.cost_scale())
