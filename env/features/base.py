"""The featurizer contract: a spec (JSON), an engine per kind (fit -> arrays, transform from arrays), errors.

An engine is stateless: everything it learns on the training prompts is returned as a dict of plain arrays, and
``transform`` computes from those arrays only, so a featurizer loaded from an artifact gives bit-identical vectors.
Adding a featurizer is one module with an :class:`Engine` subclass and one line in :mod:`.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

FORMAT_VERSION = 2


class FeaturizerError(ValueError):
    """A featurizer spec, state or saved file that cannot be used."""


@dataclass(frozen=True)
class FeaturizerSpec:
    """Hyperparameters of a featurizer (all JSON-serialisable).

    Args:
        kind: a registry name (``tfidf-svd``, ``category``, ``lexical``, ``minilm``, ``wordllama``) or ``concat``.
        dim: SVD-reduced kinds: output width including the bias column (so ``dim - 1`` components).
        ngram_max, hash_bits, max_features, min_df: the hashed TF-IDF vocabulary (tfidf-svd and category).
        seed: seed of every randomised fit.
        label_column: what the ``category`` head learns to predict (a per-query column of the records).
        l2_penalty: inverse regularisation ``C`` of the category head's logistic regression.
        parts: for ``kind="concat"``: the kinds whose outputs are concatenated, in order.
    """

    kind: str = "tfidf-svd"
    dim: int = 64
    ngram_max: int = 2
    hash_bits: int = 20
    max_features: int = 20000
    min_df: int = 2
    seed: int = 0
    label_column: str = "benchmark"
    l2_penalty: float = 4.0
    parts: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        from banditroute.env.features.registry import FEATURIZERS

        kinds = (*FEATURIZERS, "concat")
        if self.kind not in kinds:
            raise FeaturizerError(f"kind must be one of {kinds}, got {self.kind!r}")
        object.__setattr__(self, "parts", tuple(self.parts))
        if self.kind == "concat":
            bad = [p for p in self.parts if p not in FEATURIZERS]
            if len(self.parts) < 2 or bad:
                raise FeaturizerError(
                    f"concat needs two or more parts from {tuple(FEATURIZERS)}, got {list(self.parts)}"
                )
        elif self.parts:
            raise FeaturizerError(f"parts are only for kind='concat', not {self.kind!r}")
        if not 2 <= self.dim <= 1024:
            raise FeaturizerError(f"dim must be in [2, 1024], got {self.dim}")
        if not 1 <= self.ngram_max <= 3:
            raise FeaturizerError(f"ngram_max must be in [1, 3], got {self.ngram_max}")
        if not 10 <= self.hash_bits <= 24:
            raise FeaturizerError(f"hash_bits must be in [10, 24], got {self.hash_bits}")
        if self.max_features < self.dim:
            raise FeaturizerError(f"max_features must be >= dim ({self.dim}), got {self.max_features}")
        if self.min_df < 1:
            raise FeaturizerError(f"min_df must be >= 1, got {self.min_df}")
        if not self.l2_penalty > 0:
            raise FeaturizerError(f"l2_penalty must be > 0, got {self.l2_penalty}")

    @classmethod
    def parse(cls, text: str, **kwargs: Any) -> FeaturizerSpec:
        """``"category"`` or ``"category+lexical"`` (a concat), with other fields from ``kwargs``."""
        parts = tuple(p.strip() for p in text.split("+"))
        if "" in parts:
            raise FeaturizerError(
                f"empty part in features {text!r}: write kinds joined by '+', e.g. 'category+lexical'"
            )
        if len(parts) > 1:
            return cls(kind="concat", parts=parts, **kwargs)
        return cls(kind=parts[0], **kwargs)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The engine kinds this spec runs (one, or the parts of a concat)."""
        return self.parts if self.kind == "concat" else (self.kind,)

    def describe(self) -> str:
        return "+".join(self.kinds)


class Engine:
    """One kind of feature. Subclasses implement :meth:`fit` and :meth:`transform`; both are pure functions of
    their arguments (``cache`` holds values derived from ``arrays``, never saved)."""

    name: ClassVar[str]
    #: bumped when the arithmetic of transform changes (feature caches are keyed by it)
    version: ClassVar[int] = 1
    #: optional dependency as (import name, extra), for a clear error where it is missing
    requires: ClassVar[tuple[str, str] | None] = None
    #: whether fit needs per-prompt labels
    needs_labels: ClassVar[bool] = False

    @classmethod
    def fit(cls, spec: FeaturizerSpec, prompts: Sequence[str], labels: np.ndarray | None) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @classmethod
    def transform(
        cls, spec: FeaturizerSpec, prompts: Sequence[str], arrays: dict[str, np.ndarray], cache: dict[str, Any]
    ) -> np.ndarray:
        """``(n, width)`` float64 features (no bias column)."""
        raise NotImplementedError

    @classmethod
    def check(cls, spec: FeaturizerSpec, arrays: dict[str, np.ndarray]) -> None:
        """Raise :class:`FeaturizerError` if ``arrays`` cannot come from :meth:`fit` with ``spec``."""

    @classmethod
    def width(cls, spec: FeaturizerSpec, arrays: dict[str, np.ndarray]) -> int:
        raise NotImplementedError

    @classmethod
    def identity(cls) -> dict[str, Any]:
        """What a loaded artifact must match: name, version and (for shipped weights) their package and sha256."""
        return {"name": cls.name, "version": cls.version}

    @classmethod
    def check_installed(cls) -> None:
        if cls.requires is None:
            return
        module, extra = cls.requires
        import importlib.util

        if importlib.util.find_spec(module) is None:
            raise FeaturizerError(
                f"the {cls.name!r} featurizer needs the package {module!r}: pip install 'banditroute[{extra}]'"
            )


def l2_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms > 0, norms, 1.0)


def need(arrays: dict[str, np.ndarray], *names: str) -> None:
    missing = [k for k in names if k not in arrays]
    if missing:
        raise FeaturizerError(f"featurizer arrays missing {missing}")
