"""The ``lexical`` featurizer: cheap signals of a query's form, standardised on the training prompts.

Length (characters, words, lines), digits and math symbols, code markers, question form, listed answer options,
upper case, and non-ASCII text (a proxy for language). No vocabulary: the same for any domain.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from banditroute.env.features.base import Engine, FeaturizerError, FeaturizerSpec, need

SIGNALS = (
    "log_chars",
    "log_words",
    "log_lines",
    "digit_share",
    "math_share",
    "code_markers",
    "question",
    "options",
    "upper_share",
    "non_ascii_share",
)
_MATH = set("+-*/=^<>%\\∫∑√π≤≥≠")
_CODE = re.compile(r"```|\bdef |\breturn\b|\bimport |#include|\bfunction\b|=>|;\s*$|\{\s*$", re.MULTILINE)
_OPTIONS = re.compile(r"(^|\n)\s*\(?[A-J][).:]\s", re.MULTILINE)


def _signals(text: str) -> list[float]:
    n = max(len(text), 1)
    return [
        np.log1p(len(text)),
        np.log1p(len(text.split())),
        np.log1p(text.count("\n")),
        sum(c.isdigit() for c in text) / n,
        sum(c in _MATH for c in text) / n,
        min(len(_CODE.findall(text)), 10) / 10.0,
        1.0 if "?" in text else 0.0,
        min(len(_OPTIONS.findall(text)), 10) / 10.0,
        sum(c.isupper() for c in text) / n,
        sum(ord(c) > 127 for c in text) / n,
    ]


def raw_signals(prompts: Sequence[str]) -> np.ndarray:
    """``(n, len(SIGNALS))`` unscaled signals."""
    return np.array([_signals(str(p)) for p in prompts], dtype=np.float64).reshape(len(prompts), len(SIGNALS))


class Lexical(Engine):
    """Standardised form signals, clipped to [-3, 3] / 3."""

    name: ClassVar[str] = "lexical"

    @classmethod
    def fit(cls, spec: FeaturizerSpec, prompts: Sequence[str], labels: np.ndarray | None) -> dict[str, np.ndarray]:
        if len(prompts) < 2:
            raise FeaturizerError(f"need at least 2 training prompts, got {len(prompts)}")
        s = raw_signals(prompts)
        std = s.std(axis=0)
        return {"mean": s.mean(axis=0), "scale": np.where(std > 1e-12, std, 1.0)}

    @classmethod
    def transform(
        cls, spec: FeaturizerSpec, prompts: Sequence[str], arrays: dict[str, np.ndarray], cache: dict[str, Any]
    ) -> np.ndarray:
        z = (raw_signals(prompts) - arrays["mean"]) / arrays["scale"]
        return np.asarray(np.clip(z, -3.0, 3.0) / 3.0)

    @classmethod
    def check(cls, spec: FeaturizerSpec, arrays: dict[str, np.ndarray]) -> None:
        need(arrays, "mean", "scale")
        if arrays["mean"].shape != (len(SIGNALS),) or arrays["scale"].shape != (len(SIGNALS),):
            raise FeaturizerError(f"lexical arrays must have {len(SIGNALS)} entries")

    @classmethod
    def width(cls, spec: FeaturizerSpec, arrays: dict[str, np.ndarray]) -> int:
        return len(SIGNALS)
