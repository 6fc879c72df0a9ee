"""On-disk caches of fitted featurizers and computed features, so repeated runs do not refit or recompute."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from banditroute.env.features.base import FeaturizerError, FeaturizerSpec
from banditroute.env.features.featurizer import Featurizer


def cache_dir() -> Path:
    """``$BANDITROUTE_CACHE_DIR`` or ``~/.cache/banditroute``."""
    return Path(os.environ.get("BANDITROUTE_CACHE_DIR", Path.home() / ".cache" / "banditroute"))


def _digest(prompts: Sequence[str], labels: Sequence[str] | np.ndarray | None = None) -> str:
    h = hashlib.sha256()
    for p in prompts:
        h.update(str(p).encode() + b"\0")
    if labels is not None:
        for label in labels:
            h.update(str(label).encode() + b"\1")
    return h.hexdigest()


def fit_cached(
    spec: FeaturizerSpec,
    prompts: Sequence[str],
    labels: Sequence[str] | np.ndarray | None = None,
    *,
    use_cache: bool = True,
) -> Featurizer:
    """Fit a featurizer, or load the one fitted before on the very same prompts, labels and spec."""
    engines = Featurizer(spec).identity()
    key = hashlib.sha256(
        (json.dumps([asdict(spec), engines], sort_keys=True, default=str) + _digest(prompts, labels)).encode()
    )
    d = cache_dir() / "featurizers" / key.hexdigest()[:32]
    if use_cache and (d / "featurizer.json").exists():
        try:
            return Featurizer.load(d)
        except FeaturizerError:
            pass  # a broken or outdated cache entry is refitted and overwritten below
    f = Featurizer(spec).fit(prompts, labels)
    if use_cache:
        f.save(d)
    return f


def transform_cached(featurizer: Featurizer, prompts: Sequence[str], *, use_cache: bool = True) -> np.ndarray:
    """``featurizer.transform(prompts)``, cached on disk by featurizer fingerprint and prompts."""
    if not use_cache:
        return featurizer.transform(prompts)
    key = hashlib.sha256((featurizer.fingerprint() + _digest(prompts)).encode()).hexdigest()[:32]
    path = cache_dir() / "features" / f"{key}.npy"
    if path.exists():
        try:
            x = np.load(path, allow_pickle=False)
            if x.shape == (len(prompts), featurizer.dim):
                return np.asarray(x)
        except (OSError, ValueError):
            pass
    x = featurizer.transform(prompts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, x)
    os.replace(tmp, path)
    return x


def cross_fit_cached(
    spec: FeaturizerSpec,
    prompts: Sequence[str],
    labels: Sequence[str] | np.ndarray | None = None,
    *,
    folds: int = 5,
    use_cache: bool = True,
) -> tuple[Featurizer, np.ndarray]:
    """The featurizer fitted on all ``prompts`` and their out-of-fold features (:meth:`Featurizer.out_of_fold`),
    both cached on disk."""
    f = fit_cached(spec, prompts, labels, use_cache=use_cache)
    if not f.needs_labels or folds < 2:
        return f, transform_cached(f, prompts, use_cache=use_cache)
    key = hashlib.sha256(f"{f.fingerprint()}cf-per-engine{folds}{_digest(prompts, labels)}".encode()).hexdigest()[:32]
    path = cache_dir() / "features" / f"{key}.cf.npy"
    if use_cache and path.exists():
        try:
            x = np.load(path, allow_pickle=False)
            if x.shape == (len(prompts), f.dim):
                return f, np.asarray(x)
        except (OSError, ValueError):
            pass
    x = f.out_of_fold(prompts, labels, folds=folds)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, x)
        os.replace(tmp, path)
    return f, x
