"""Entry points of the registered environment ids: ``gym.make(id)`` with no arguments runs on the bundled records.

``gym.make("banditroute/Routing-v0")`` (and ``BudgetedRouting-v0``, ``CascadeRouting-v0``) loads the bundled
``data/mmlu_pro.parquet`` (or the file ``$BANDITROUTE_DEFAULT_RECORDS`` names), splits it 70/30 by query
(``seed`` 0), fits the default featurizer on the train split (out-of-fold train features; both cached on disk
by :mod:`env.features.cache`, so only the first call fits) and returns the env on the ``split`` asked for.
Keyword arguments choose otherwise:

- ``records``: a records file; ``models``: keep these models (default all; queries some of them lack are dropped);
- ``split``: ``"train"`` (default) or ``"test"``; ``seed``, ``test_frac``: the split;
- ``features``: a featurizer spec such as ``"category+lexical"`` (default: the commands' default);
- the cascade env's ``candidates`` (default: the best model on the train split and the three best models
  cheaper than it; always ordered cheapest first) and ``groups`` (names);
- any other keyword goes to the env class (``lam``, ``cost_scale`` (default: the train split's), ...).

Passing ``quality``, ``cost`` and ``features`` arrays builds the env on them as before, unchanged.

Loading and featurizing happen on the first call, never at import; one process keeps the prepared split in
memory, so making the three envs on the same records prepares them once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from banditroute.env.answers import answers_of
from banditroute.env.budgeted_env import BudgetedRoutingEnv
from banditroute.env.cascade_env import CascadeRoutingEnv, choice_agreement
from banditroute.env.routing_env import RoutingEnv

if TYPE_CHECKING:
    from banditroute.env.records import RecordSet

#: the records ``gym.make`` uses when given none (the repository's ``data/``), unless ``$BANDITROUTE_DEFAULT_RECORDS``
BUNDLED_RECORDS = Path(__file__).resolve().parents[1] / "data" / "mmlu_pro.parquet"
RECORDS_ENV_VAR = "BANDITROUTE_DEFAULT_RECORDS"
SPLITS = ("train", "test")
#: how many candidates the cascade env calls by default
DEFAULT_CANDIDATES = 4


@functools.lru_cache(maxsize=4)
def _prepared(records: str, models: tuple[str, ...] | None, seed: int, test_frac: float, features: str | None) -> Any:
    # simulations.data is the one place records become featurized splits; imported here, never at import time
    from banditroute.env.features import FeaturizerSpec
    from banditroute.simulations.data import prepare

    spec = FeaturizerSpec.parse(features) if features else None
    return prepare(records, seed=seed, test_frac=test_frac, models=models, spec=spec)


def default_records() -> Path:
    """``$BANDITROUTE_DEFAULT_RECORDS`` if set, else :data:`BUNDLED_RECORDS`."""
    return Path(os.environ.get(RECORDS_ENV_VAR) or BUNDLED_RECORDS)


def prepared_split(
    records: str | Path | None = None,
    models: Sequence[str] | None = None,
    split: str = "train",
    seed: int = 0,
    test_frac: float = 0.3,
    features: str | None = None,
) -> tuple[Any, RecordSet, np.ndarray]:
    """``(prepared, records of the split, features of the split)``; ``prepared`` is
    :class:`banditroute.simulations.data.Prepared` (both splits, the featurizer, the train cost scale)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if features is not None and not isinstance(features, str):
        raise ValueError(
            "features must be a featurizer spec such as 'category+lexical' when no quality/cost arrays are given; "
            "to pass a feature array, pass quality and cost arrays too"
        )
    path = Path(records) if records is not None else default_records()
    if not path.exists():
        raise ValueError(f"records {str(path)!r} does not exist. Fix: pass records=PATH of a performance records file")
    prep = _prepared(str(path), tuple(models) if models else None, int(seed), float(test_frac), features)
    if split == "train":
        return prep, prep.train, prep.x_train
    return prep, prep.test, prep.x_test


def _arrays_given(kwargs: dict[str, Any]) -> bool:
    return "quality" in kwargs or "cost" in kwargs


def _split_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    keys = ("records", "models", "split", "seed", "test_frac", "features")
    return {k: kwargs.pop(k) for k in keys if k in kwargs}


def routing_env(**kwargs: Any) -> RoutingEnv:
    """``banditroute/Routing-v0``: arrays as :class:`RoutingEnv`, or records (see the module docstring)."""
    if _arrays_given(kwargs):
        return RoutingEnv(**kwargs)
    prep, rs, x = prepared_split(**_split_kwargs(kwargs))
    kwargs.setdefault("cost_scale", prep.cost_scale)
    return RoutingEnv.from_records(rs, x, **kwargs)


def budgeted_env(**kwargs: Any) -> BudgetedRoutingEnv:
    """``banditroute/BudgetedRouting-v0``: arrays as :class:`BudgetedRoutingEnv`, or records."""
    if _arrays_given(kwargs):
        return BudgetedRoutingEnv(**kwargs)
    prep, rs, x = prepared_split(**_split_kwargs(kwargs))
    kwargs.setdefault("cost_scale", prep.cost_scale)
    return BudgetedRoutingEnv.from_records(rs, x, **kwargs)


def default_candidates(train: RecordSet, count: int = DEFAULT_CANDIDATES) -> list[str]:
    """The best model on ``train`` (mean score) and the ``count - 1`` best models cheaper than it (mean cost),
    cheapest first. On mmlu_pro-29: gemini-1.5-flash-002, Meta-Llama-3_1-70B-Instruct, gemini-1.5-pro-002,
    gpt-4o-2024-05-13."""
    q, c = train.quality.mean(axis=0), train.cost.mean(axis=0)
    best = int(np.argmax(q))
    cheaper = [j for j in np.argsort(-q, kind="stable") if c[j] < c[best]][: count - 1]
    chosen = [best, *cheaper]
    return [train.models[j] for j in sorted(chosen, key=lambda j: c[j])]


def cascade_tables(rs: RecordSet, candidates: Sequence[str], answer_column: str | None = None) -> dict[str, Any]:
    """The :class:`CascadeRoutingEnv` arrays of ``candidates`` (in that order) in ``rs``: quality, cost,
    agreement and lengths (``output_chars`` where the records have it, else the answers' length)."""
    unknown = [m for m in candidates if m not in rs.models]
    if unknown:
        raise ValueError(f"candidates {unknown} are not among the records' models {list(rs.models)}")
    sub = rs.select_models(list(candidates))
    answers = answers_of(sub, answer_column)
    if answers is None:
        raise ValueError(
            f"{rs.path}: the records carry no answers; the cascade env needs a per-model 'pred' or 'response' column"
        )
    if answers.kind == "choice":
        agreement = choice_agreement(answers.values)
    else:
        from banditroute.env.answers import text_agreement
        from banditroute.env.features import Featurizer, FeaturizerSpec

        texts = [t for t in answers.values.ravel() if t]
        featurizer = Featurizer(FeaturizerSpec(kind="tfidf-svd", dim=64)).fit(texts)
        agreement = np.stack([text_agreement(list(row), featurizer) for row in answers.values])
    if "output_chars" in sub.extras:
        lengths = np.nan_to_num(np.asarray(sub.extras["output_chars"], dtype=np.float64), nan=0.0)
    else:
        lengths = np.vectorize(len, otypes=[float])(answers.values)
    return {
        "quality": sub.quality,
        "cost": sub.cost,
        "agreement": agreement,
        "lengths": np.maximum(lengths, 0.0),
        "models": sub.models,
    }


def cascade_env(**kwargs: Any) -> CascadeRoutingEnv:
    """``banditroute/CascadeRouting-v0``: arrays as :class:`CascadeRoutingEnv`, or records with answers (the
    module docstring; ``candidates`` and ``answer_column`` choose which models and which answers)."""
    if _arrays_given(kwargs):
        return CascadeRoutingEnv(**kwargs)
    candidates = kwargs.pop("candidates", None)
    answer_column = kwargs.pop("answer_column", None)
    prep, rs, x = prepared_split(**_split_kwargs(kwargs))
    names = list(candidates) if candidates else default_candidates(prep.train)
    unknown = [m for m in names if m not in rs.models]
    if unknown:
        raise ValueError(f"candidates {unknown} are not among the records' models {list(rs.models)}")
    train_cost = prep.train.select_models(names).cost.mean(axis=0)
    names = [names[j] for j in np.argsort(train_cost, kind="stable")]  # cheapest first
    kwargs.setdefault("cost_scale", float(train_cost.max()))
    tables = cascade_tables(rs, names, answer_column)
    return CascadeRoutingEnv(features=x, **tables, **kwargs)
