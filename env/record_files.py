"""Record files on disk: readers registered by suffix, validation of the long format, and derived costs.

Loaders are registered by file suffix in :data:`LOADERS`; adding a format is one function and one line.
Row numbers in error messages count data rows from 1 (the header is not a row; a JSONL file's row is
its line). Every refusal names the file, the row, the problem and the fix (with the CLI flag that fixes it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from banditroute.env.costs import OUTPUT_LENGTH_COLUMNS, PriceTable, PriceTableError

REQUIRED_COLUMNS = ("query_id", "benchmark", "prompt", "model", "score")
LONG_COLUMNS = (*REQUIRED_COLUMNS, "cost_usd")


class RecordsError(ValueError):
    """A record file that cannot be used; the message names the file, the row and the fix."""


def _read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True)


def _read_jsonl(path: Path) -> pd.DataFrame:
    return pd.read_json(path, lines=True)


#: file suffix -> loader returning the long-format DataFrame (compression is inferred by pandas).
LOADERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".parquet": _read_parquet,
    ".csv": _read_csv,
    ".csv.gz": _read_csv,
    ".jsonl": _read_jsonl,
    ".jsonl.gz": _read_jsonl,
}


def loader_for(path: Path) -> Callable[[Path], pd.DataFrame]:
    name = path.name.lower()
    for suffix in sorted(LOADERS, key=len, reverse=True):
        if name.endswith(suffix):
            return LOADERS[suffix]
    raise RecordsError(f"{path}: unknown record format; use one of {sorted(LOADERS)}")


def show(value: object) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def fail(path: Path, row: int, problem: str, fix: str) -> RecordsError:
    return RecordsError(f"{path}: row {row + 1}: {problem}. Fix: {fix}")


def validate_long(df: pd.DataFrame, path: Path, nan_scores: str) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise RecordsError(
            f"{path}: missing column(s) {missing}. Fix: the long format needs {list(REQUIRED_COLUMNS)} "
            "(cost_usd optional), one row per (query, model)"
        )
    if len(df) == 0:
        raise RecordsError(f"{path}: no rows")
    df = df.reset_index(drop=True)
    for col in ("query_id", "model", "prompt", "benchmark"):
        nulls = np.flatnonzero(df[col].isna().to_numpy())
        if nulls.size:
            raise fail(path, int(nulls[0]), f"{col} is empty", f"give every row a {col}")
    score = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=float)
    if nan_scores == "missing":
        # An explicit choice for files (like RouterBench's) whose NaN means "this model gave no answer".
        keep_rows = ~(df["score"].isna().to_numpy())
        df, score = df[keep_rows].reset_index(drop=True), score[keep_rows]
    bad = np.flatnonzero(~np.isfinite(score) | (score < 0) | (score > 1))
    if bad.size:
        r = int(bad[0])
        raise fail(
            path,
            r,
            f"score {show(df['score'].iloc[r])} of model {df['model'].iloc[r]!r} on query "
            f"{df['query_id'].iloc[r]!r} is not a number in [0, 1] ({bad.size} such row(s))",
            "rescale scores to [0, 1]; if NaN means 'this model gave no answer', load with "
            "nan_scores='missing' (--nan-scores missing), else drop or fill those rows",
        )
    df["score"] = score
    dup = np.flatnonzero(df.duplicated(["query_id", "model"]).to_numpy())
    if dup.size:
        r = int(dup[0])
        raise fail(
            path,
            r,
            f"duplicate (query_id, model) = ({df['query_id'].iloc[r]!r}, {df['model'].iloc[r]!r})",
            "keep one row per (query, model)",
        )
    if "cost_usd" in df.columns:
        cost = pd.to_numeric(df["cost_usd"], errors="coerce").to_numpy(dtype=float)
        neg = np.flatnonzero(cost < 0)
        if neg.size:
            raise fail(path, int(neg[0]), f"cost_usd {cost[neg[0]]} is negative", "costs are USD >= 0")
        df["cost_usd"] = cost
    else:
        df["cost_usd"] = np.nan
    return df


def derive_costs(df: pd.DataFrame, path: Path, prices: PriceTable | str | Path | None) -> bool:
    """Fill missing ``cost_usd`` in place from a price table; return whether any was derived."""
    need = ~np.isfinite(df["cost_usd"].to_numpy(dtype=float))
    if not need.any():
        return False
    if prices is None:
        default = path.parent / "prices.csv"
        if not default.exists():
            raise RecordsError(
                f"{path}: rows without cost_usd and no price table. Fix: pass a price table with --prices FILE "
                "(columns model,input_usd_per_mtok,output_usd_per_mtok) or put prices.csv beside the records"
            )
        prices = default
    table = prices if isinstance(prices, PriceTable) else PriceTable.load(prices)
    sub = df.loc[need]
    unknown = sorted(set(sub["model"]) - set(table.input_usd_per_mtok))
    if unknown:
        r = int(np.flatnonzero(need & df["model"].isin(unknown).to_numpy())[0])
        raise fail(
            path,
            r,
            f"model(s) {unknown} have no cost_usd and are not in the price table {table.source}",
            "add them to a price table and pass it (--prices FILE), or give cost_usd in the records",
        )
    out = np.full(len(sub), np.nan)
    for col in OUTPUT_LENGTH_COLUMNS:
        if col in sub.columns:
            out = pd.to_numeric(sub[col], errors="coerce").to_numpy(dtype=float)
            break
    try:
        derived = table.cost(sub["model"].to_numpy(), sub["prompt"].str.len().to_numpy(dtype=float), out)
    except PriceTableError as exc:  # pragma: no cover - guarded by the unknown check above
        raise RecordsError(str(exc)) from exc
    df.loc[need, "cost_usd"] = derived
    return True
