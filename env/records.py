"""Performance records: the long format on disk, the dense :class:`RecordSet` in memory.

On disk, one row per (query, model)::

    query_id, benchmark, prompt, model, score in [0, 1], [cost_usd], [any extra columns]

In memory, a :class:`RecordSet` holds ``quality: (n, k)`` and ``cost: (n, k)`` for ``n`` queries and ``k``
models, the prompts and benchmarks of the queries, and every extra column pivoted to ``(n, k)``.

Missing scores: a query that some selected model has no score for is **dropped** (``missing="drop"``,
the default, counted in ``RecordSet.n_dropped_incomplete``), or refused (``missing="error"``). Restrict the
models first (``models=[...]``) to keep queries that only the dropped models lack.

Costs: ``cost_usd`` is used where it is present and finite; elsewhere it is derived from a price table
(:mod:`env.costs`), by default the ``prices.csv`` beside the records file.

Reading and validating files is :mod:`.record_files` (loaders registered by suffix in :data:`LOADERS`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from banditroute.env.costs import PriceTable
from banditroute.env.record_files import (
    LOADERS,
    LONG_COLUMNS,
    REQUIRED_COLUMNS,
    RecordsError,
    derive_costs,
    loader_for,
    validate_long,
)

__all__ = ["LOADERS", "REQUIRED_COLUMNS", "RecordSet", "RecordsError", "load_records"]


@dataclass(frozen=True)
class RecordSet:
    """Dense performance records of ``n`` queries on ``k`` models.

    Attributes:
        path: the file the records came from.
        query_ids: ``(n,)`` query identifiers.
        prompts: ``(n,)`` query texts.
        benchmarks: ``(n,)`` benchmark of each query.
        models: the ``k`` model names, in column order.
        quality: ``(n, k)`` score of each model on each query, in [0, 1].
        cost: ``(n, k)`` USD cost of each call.
        extras: extra columns of the file, each pivoted to ``(n, k)``.
        n_dropped_incomplete: queries dropped because some model had no score.
        n_merged_duplicates: queries merged into an earlier one with the very same prompt text.
        cost_derived: whether any cost came from the price table.
    """

    path: str
    query_ids: np.ndarray
    prompts: np.ndarray
    benchmarks: np.ndarray
    models: tuple[str, ...]
    quality: np.ndarray
    cost: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    n_dropped_incomplete: int = 0
    cost_derived: bool = False
    n_merged_duplicates: int = 0

    def __len__(self) -> int:
        return int(self.quality.shape[0])

    @property
    def n_models(self) -> int:
        return len(self.models)

    def subset(self, index: np.ndarray | Sequence[int]) -> RecordSet:
        """The queries at ``index`` (integer positions or a boolean mask), in that order."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return replace(
            self,
            query_ids=self.query_ids[idx],
            prompts=self.prompts[idx],
            benchmarks=self.benchmarks[idx],
            quality=self.quality[idx],
            cost=self.cost[idx],
            extras={k: v[idx] for k, v in self.extras.items()},
        )

    def select_models(self, models: Sequence[str]) -> RecordSet:
        """Keep only ``models`` (in that order); complete rows stay complete."""
        unknown = [m for m in models if m not in self.models]
        if unknown:
            raise RecordsError(f"{self.path}: unknown model(s) {unknown}; the records have {list(self.models)}")
        cols = [self.models.index(m) for m in models]
        return replace(
            self,
            models=tuple(models),
            quality=self.quality[:, cols],
            cost=self.cost[:, cols],
            extras={k: v[:, cols] for k, v in self.extras.items()},
        )

    def with_benchmarks(self, prefix: str) -> RecordSet:
        """The queries whose benchmark equals ``prefix`` or starts with ``prefix + '/'``."""
        mask = np.array([b == prefix or b.startswith(prefix + "/") for b in self.benchmarks], dtype=bool)
        if not mask.any():
            raise RecordsError(
                f"{self.path}: no benchmark matches {prefix!r}; benchmarks are {sorted(set(self.benchmarks))}"
            )
        return self.subset(mask)

    def split(self, test_frac: float = 0.3, seed: int = 0) -> tuple[RecordSet, RecordSet]:
        """Seeded random split by query into (train, test). The same seed gives the same split."""
        if not 0.0 < test_frac < 1.0:
            raise ValueError(f"test_frac must be in (0, 1), got {test_frac}")
        n = len(self)
        n_test = round(n * test_frac)
        if n_test < 1 or n_test >= n:
            raise ValueError(f"test_frac={test_frac} leaves an empty train or test split of {n} queries")
        perm = np.random.default_rng(seed).permutation(n)
        return self.subset(np.sort(perm[n_test:])), self.subset(np.sort(perm[:n_test]))

    def split_by_benchmark(self, test_benchmarks: Sequence[str]) -> tuple[RecordSet, RecordSet]:
        """Out-of-domain split: queries of ``test_benchmarks`` (names or prefixes) are the test set."""
        tb = list(test_benchmarks)

        def is_test(b: str) -> bool:
            return any(b == t or b.startswith(t + "/") for t in tb)

        mask = np.array([is_test(b) for b in self.benchmarks], dtype=bool)
        if not mask.any() or mask.all():
            raise RecordsError(
                f"{self.path}: benchmarks {tb} leave an empty train or test split; "
                f"benchmarks are {sorted(set(self.benchmarks))}"
            )
        return self.subset(~mask), self.subset(mask)

    def column(self, name: str) -> np.ndarray:
        """``(n,)`` per-query values of ``name``: ``benchmark``, ``query_id``, ``prompt`` or an extra column
        (its value on the first model; such a column should not vary by model)."""
        fixed = {"benchmark": self.benchmarks, "query_id": self.query_ids, "prompt": self.prompts}
        if name in fixed:
            return fixed[name]
        if name not in self.extras:
            raise RecordsError(
                f"{self.path}: no column {name!r}; per-query columns are {sorted([*fixed, *self.extras])}"
            )
        return np.asarray(self.extras[name][:, 0])

    def split_by_column(self, name: str) -> tuple[RecordSet, RecordSet, RecordSet | None]:
        """The records' own split: ``(train, test, out-of-domain test or None)`` from column ``name``, whose
        values are ``train``, ``test`` and optionally an out-of-domain test value (containing ``ood``)."""
        values = np.array([str(v).strip().lower() for v in self.column(name)])
        train, test = np.isin(values, ("train", "training")), np.isin(values, ("test", "testing"))
        ood = np.char.find(values.astype(str), "ood") >= 0
        other = sorted({str(v) for v in values[~(train | test | ood)]})
        if other:
            raise RecordsError(
                f"{self.path}: split column {name!r} has value(s) {other[:5]}; "
                "Fix: use 'train', 'test' and (for an out-of-domain test) a value containing 'ood'"
            )
        if not train.any() or not (test.any() or ood.any()):
            raise RecordsError(f"{self.path}: split column {name!r} leaves an empty train or test split")
        return (
            self.subset(train),
            self.subset(test if test.any() else ood),
            self.subset(ood) if ood.any() and test.any() else None,
        )

    def cost_scale(self) -> float:
        """Mean cost per query of the most expensive model: lambda = 1 prices that at one quality unit."""
        scale = float(self.cost.mean(axis=0).max()) if len(self) else 0.0
        return scale if scale > 0 else 1.0

    def fingerprint(self) -> str:
        """sha256 over query ids, prompts and models: a cache key for features of this set."""
        h = hashlib.sha256()
        for m in self.models:
            h.update(m.encode() + b"\0")
        for q, p in zip(self.query_ids, self.prompts, strict=True):
            h.update(str(q).encode() + b"\1" + str(p).encode() + b"\0")
        return h.hexdigest()


def load_records(
    path: str | Path,
    *,
    prices: PriceTable | str | Path | None = None,
    models: Sequence[str] | None = None,
    missing: Literal["drop", "error"] = "drop",
    nan_scores: Literal["error", "missing"] = "error",
    merge_duplicates: bool = True,
) -> RecordSet:
    """Load a long-format record file into a :class:`RecordSet`, validating everything first.

    Args:
        path: ``.parquet``, ``.csv``, ``.csv.gz``, ``.jsonl`` or ``.jsonl.gz``.
        prices: price table (or its CSV path) for rows without ``cost_usd``; default ``prices.csv`` beside
            the file.
        models: keep only these models, in this order (default: all, sorted by name).
        missing: ``"drop"`` queries lacking a selected model's score, or ``"error"``.
        nan_scores: ``"error"`` refuses a NaN score (the default); ``"missing"`` treats a row with a NaN
            score as absent, which ``missing`` then handles (RouterBench marks unanswered calls so).
        merge_duplicates: merge queries with the very same prompt text into the first of them (scores and
            costs averaged per model; counted in ``n_merged_duplicates``), so that a prompt cannot sit in both
            a train and a test split. ``False`` keeps them apart (``--keep-duplicates``).

    Raises:
        RecordsError: the file is unreadable or invalid; nothing is returned half-loaded.
    """
    path = Path(path)
    if missing not in ("drop", "error"):
        raise ValueError(f"missing must be 'drop' or 'error', got {missing!r}")
    if nan_scores not in ("error", "missing"):
        raise ValueError(f"nan_scores must be 'error' or 'missing', got {nan_scores!r}")
    if not path.exists():
        raise RecordsError(f"{path}: no such file")
    try:
        df = loader_for(path)(path)
    except RecordsError:
        raise
    except Exception as exc:
        raise RecordsError(f"{path}: cannot parse as {path.suffix} records: {exc}") from exc
    df = validate_long(df, path, nan_scores)
    if models is not None:
        unknown = sorted(set(models) - set(df["model"]))
        if unknown:
            raise RecordsError(f"{path}: unknown model(s) {unknown}. Fix: choose among {sorted(set(df['model']))}")
        df = df[df["model"].isin(list(models))].reset_index(drop=True)
    derived = derive_costs(df, path, prices)

    model_names = tuple(models) if models is not None else tuple(sorted(df["model"].unique()))
    q_codes, q_uniques = pd.factorize(df["query_id"], sort=False)
    m_index = {m: j for j, m in enumerate(model_names)}
    m_codes = df["model"].map(m_index).to_numpy(dtype=np.int64)
    n, k = len(q_uniques), len(model_names)
    present = np.zeros((n, k), dtype=bool)
    present[q_codes, m_codes] = True
    complete = present.all(axis=1)
    if not complete.all() and missing == "error":
        qi = int(np.flatnonzero(~complete)[0])
        lacking = [model_names[j] for j in np.flatnonzero(~present[qi])]
        raise RecordsError(
            f"{path}: query {q_uniques[qi]!r} has no score for {lacking} ({int((~complete).sum())} incomplete "
            "queries). Fix: load with missing='drop' or restrict models"
        )

    def pivot(values: np.ndarray, fill: object) -> np.ndarray:
        out = np.full((n, k), fill, dtype=values.dtype if values.dtype != object else object)
        out[q_codes, m_codes] = values
        return out[complete]

    quality = pivot(df["score"].to_numpy(dtype=float), np.nan)
    cost = pivot(df["cost_usd"].to_numpy(dtype=float), np.nan)
    first = np.unique(q_codes, return_index=True)[1]  # first row of each query, in code order
    keep = np.flatnonzero(complete)
    extras = {}
    for col in df.columns:
        if col in LONG_COLUMNS:
            continue
        vals = df[col].to_numpy()
        fill: object = np.nan if vals.dtype.kind == "f" else None
        if vals.dtype.kind not in "fiub":
            vals = vals.astype(object)
        elif vals.dtype.kind in "iub":
            vals = vals.astype(float)
        extras[col] = pivot(vals, fill)
    if n - len(keep) == n:
        raise RecordsError(f"{path}: no query has a score for every selected model. Fix: restrict models")
    records = RecordSet(
        path=str(path),
        query_ids=np.asarray(q_uniques.astype(str), dtype=object)[keep],
        prompts=df["prompt"].to_numpy(dtype=object)[first][keep],
        benchmarks=df["benchmark"].to_numpy(dtype=object)[first][keep],
        models=model_names,
        quality=quality,
        cost=cost,
        extras=extras,
        n_dropped_incomplete=int(n - len(keep)),
        cost_derived=derived,
    )
    return _merge_duplicates(records) if merge_duplicates else records


def _merge_duplicates(rs: RecordSet) -> RecordSet:
    """Queries with identical prompt text become one (the first), with per-model mean score and cost."""
    codes, uniques = pd.factorize(pd.Series(rs.prompts, dtype=object), sort=False)
    if len(uniques) == len(rs):
        return rs
    counts = np.bincount(codes).astype(float)[:, None]
    quality = np.zeros((len(uniques), rs.n_models))
    cost = np.zeros_like(quality)
    np.add.at(quality, codes, rs.quality)
    np.add.at(cost, codes, rs.cost)
    first = np.sort(np.unique(codes, return_index=True)[1])
    kept = rs.subset(first)
    order = codes[first]
    return replace(
        kept,
        quality=(quality / counts)[order],
        cost=(cost / counts)[order],
        n_merged_duplicates=len(rs) - len(uniques),
    )
