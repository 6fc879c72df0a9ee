"""Price table and the derived per-call cost.

Where a record file has no ``cost_usd``, the cost of asking model ``m`` query ``q`` is estimated as::

    cost_usd = (prompt_tokens * input_usd_per_mtok[m] + output_tokens * output_usd_per_mtok[m]) / 1e6
    prompt_tokens = len(prompt) / CHARS_PER_TOKEN
    output_tokens = output_chars / CHARS_PER_TOKEN

``output_chars`` is taken from the record's ``output_chars`` (or ``response_chars``) column where it is
present and finite, else :data:`DEFAULT_OUTPUT_CHARS`. Four characters per token is the usual rule of
thumb for English text with BPE tokenizers; the estimate is documented, not exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CHARS_PER_TOKEN = 4.0
#: Output length assumed when a record does not say (about 250 tokens).
DEFAULT_OUTPUT_CHARS = 1000.0
OUTPUT_LENGTH_COLUMNS = ("output_chars", "response_chars")
PRICE_COLUMNS = ("model", "input_usd_per_mtok", "output_usd_per_mtok")


class PriceTableError(ValueError):
    """A price table that is malformed, or that lacks a model it is asked for."""


@dataclass(frozen=True)
class PriceTable:
    """USD per million input and output tokens, per model.

    Args:
        input_usd_per_mtok: model name -> price of a million prompt tokens.
        output_usd_per_mtok: model name -> price of a million output tokens.
        source: where the table came from (for error messages).
    """

    input_usd_per_mtok: Mapping[str, float]
    output_usd_per_mtok: Mapping[str, float]
    source: str = "<memory>"

    @classmethod
    def load(cls, path: str | Path) -> PriceTable:
        """Read a CSV with columns ``model, input_usd_per_mtok, output_usd_per_mtok`` (others ignored)."""
        path = Path(path)
        try:
            df = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise PriceTableError(f"{path}: cannot read price table: {exc}") from exc
        missing = [c for c in PRICE_COLUMNS if c not in df.columns]
        if missing:
            raise PriceTableError(f"{path}: missing column(s) {missing}; expected {list(PRICE_COLUMNS)}")
        for col in PRICE_COLUMNS[1:]:
            vals = pd.to_numeric(df[col], errors="coerce")
            bad = np.flatnonzero(~np.isfinite(vals.to_numpy(dtype=float)) | (vals.to_numpy(dtype=float) < 0))
            if bad.size:
                row = int(bad[0])
                raise PriceTableError(
                    f"{path}: row {row + 2} (model {df['model'].iloc[row]!r}): {col} must be a finite "
                    f"number >= 0, got {df[col].iloc[row]!r}"
                )
        dup = df["model"].duplicated()
        if dup.any():
            raise PriceTableError(f"{path}: model {df['model'][dup].iloc[0]!r} is listed twice")
        return cls(
            dict(zip(df["model"], df["input_usd_per_mtok"].astype(float), strict=True)),
            dict(zip(df["model"], df["output_usd_per_mtok"].astype(float), strict=True)),
            source=str(path),
        )

    def check_models(self, models: Iterable[str]) -> None:
        """Raise if any model has no price."""
        unknown = sorted(set(models) - set(self.input_usd_per_mtok))
        if unknown:
            raise PriceTableError(
                f"{self.source}: no price for model(s) {unknown}; add a row "
                "'model,input_usd_per_mtok,output_usd_per_mtok' for each, or give cost_usd in the records"
            )

    def cost(self, models: np.ndarray, prompt_chars: np.ndarray, output_chars: np.ndarray) -> np.ndarray:
        """Estimated USD cost of each call (arrays of equal length), by the module's formula."""
        self.check_models(np.unique(models))
        pin = np.array([self.input_usd_per_mtok[m] for m in models], dtype=float)
        pout = np.array([self.output_usd_per_mtok[m] for m in models], dtype=float)
        out = np.where(np.isfinite(output_chars), output_chars, DEFAULT_OUTPUT_CHARS)
        return np.asarray((prompt_chars / CHARS_PER_TOKEN * pin + out / CHARS_PER_TOKEN * pout) / 1e6)
