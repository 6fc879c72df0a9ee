"""The :class:`Featurizer`: a spec, the fitted arrays of each engine it runs, and the bias column.

``x: (dim,)`` is the concatenation of the engines' outputs (one engine, or the parts of a ``concat``) plus a
constant 1.0 last. The fitted state is JSON (spec and each engine's identity) plus arrays (.npz, never pickle),
prefixed by engine name; it travels inside exported policies, and a loaded featurizer computes bit-identical
vectors because ``transform`` always runs from those arrays, before and after a save.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from banditroute.env.features.base import FORMAT_VERSION, Engine, FeaturizerError, FeaturizerSpec
from banditroute.env.features.registry import FEATURIZERS


def _engine(kind: str) -> type[Engine]:
    return FEATURIZERS[kind]


class Featurizer:
    """Maps query texts to feature vectors ``(n, dim)``.

    Args:
        spec: hyperparameters; keyword arguments build one when ``spec`` is omitted.
    """

    def __init__(self, spec: FeaturizerSpec | None = None, **kwargs: Any) -> None:
        self.spec = spec if spec is not None else FeaturizerSpec(**kwargs)
        self._arrays: dict[str, dict[str, np.ndarray]] | None = None
        self._caches: dict[str, dict[str, Any]] = {}  # derived from _arrays, never saved

    @property
    def fitted(self) -> bool:
        return self._arrays is not None

    @property
    def dim(self) -> int:
        """Width of ``transform``'s output, bias included (the spec's ``dim`` until fitted)."""
        if self._arrays is None:
            return self.spec.dim
        return 1 + sum(_engine(k).width(self.spec, self._arrays[k]) for k in self.spec.kinds)

    @property
    def needs_labels(self) -> bool:
        return any(_engine(k).needs_labels for k in self.spec.kinds)

    def fit(self, prompts: Sequence[str], labels: Sequence[str] | np.ndarray | None = None) -> Featurizer:
        """Fit on training prompts (never on test prompts); ``labels: (n,)`` for supervised engines."""
        lab = None if labels is None else np.asarray(labels)
        for k in self.spec.kinds:
            _engine(k).check_installed()
        self._arrays = {k: _engine(k).fit(self.spec, prompts, lab) for k in self.spec.kinds}
        self._caches = {}
        return self

    def transform(self, prompts: Sequence[str]) -> np.ndarray:
        """Feature vectors ``(n, dim)`` float64, last column the bias 1.0."""
        if self._arrays is None:
            raise FeaturizerError("featurizer is not fitted: call fit(train_prompts) or load a saved one")
        n = len(prompts)
        if n == 0:
            return np.zeros((0, self.dim))
        parts = [
            _engine(k).transform(self.spec, prompts, self._arrays[k], self._caches.setdefault(k, {}))
            for k in self.spec.kinds
        ]
        return np.hstack([*parts, np.ones((n, 1))])

    def fit_transform(self, prompts: Sequence[str], labels: Sequence[str] | np.ndarray | None = None) -> np.ndarray:
        return self.fit(prompts, labels).transform(prompts)

    def out_of_fold(
        self, prompts: Sequence[str], labels: Sequence[str] | np.ndarray | None = None, *, folds: int = 5
    ) -> np.ndarray:
        """Features of this featurizer's own training ``prompts``, in which the columns of each supervised engine
        come, for row ``i``, from that engine fitted on the other folds. A supervised head is overconfident on its
        own training prompts; a router trained on those rows would trust it more than it deserves on new
        queries. Engines that learn no labels (an SVD, lexical signals) keep this featurizer's own columns: refit
        per fold, an SVD would give each fold its own basis, which new queries never see."""
        if not self.needs_labels or folds < 2:
            return self.transform(prompts)
        if self._arrays is None:
            raise FeaturizerError("featurizer is not fitted: call fit(train_prompts) or load a saved one")
        n = len(prompts)
        lab = None if labels is None else np.asarray(labels)
        order = np.random.default_rng(self.spec.seed).permutation(n)
        x = self.transform(prompts)
        col = 0
        for k in self.spec.kinds:
            engine = _engine(k)
            width = engine.width(self.spec, self._arrays[k])
            if engine.needs_labels:
                for part in np.array_split(order, folds):
                    rest = np.setdiff1d(order, part)
                    arrays = engine.fit(self.spec, [prompts[i] for i in rest], None if lab is None else lab[rest])
                    if engine.width(self.spec, arrays) != width:  # a label absent from the other folds
                        return self.transform(prompts)  # in-sample rows, as before the split
                    out = engine.transform(self.spec, [prompts[i] for i in part], arrays, {})
                    x[part, col : col + width] = out
            col += width
        return x

    def identity(self) -> list[dict[str, Any]]:
        """Name, version (and shipped weights' package) of each engine: what a loader must have installed."""
        return [_engine(k).identity() for k in self.spec.kinds]

    # ---- state: JSON spec + arrays, never pickle -------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(spec as dict with identity, arrays prefixed 'engine.')`` of a fitted featurizer, for artifacts."""
        if self._arrays is None:
            raise FeaturizerError("featurizer is not fitted")
        spec = {"format_version": FORMAT_VERSION, **asdict(self.spec), "identity": self.identity()}
        spec["parts"] = list(self.spec.parts)
        arrays = {f"{k}.{name}": a for k, d in self._arrays.items() for name, a in d.items()}
        return spec, arrays

    @classmethod
    def from_state(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Featurizer:
        """Rebuild from :meth:`state`, checking the format, the installed engines and the arrays' shapes."""
        spec = dict(spec)
        version = spec.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise FeaturizerError(
                f"featurizer format_version {version!r} is not supported (want {FORMAT_VERSION}); "
                "re-export the policy with this version of banditroute"
            )
        identity = spec.pop("identity", [])
        try:
            fs = FeaturizerSpec(**spec)
        except TypeError as exc:
            raise FeaturizerError(f"featurizer spec has unknown fields: {exc}") from exc
        out: dict[str, dict[str, np.ndarray]] = {}
        for k, ident in zip(fs.kinds, identity or [None] * len(fs.kinds), strict=True):
            engine = _engine(k)
            engine.check_installed()
            if ident is not None and ident.get("version") != engine.version:
                raise FeaturizerError(
                    f"the artifact's {k!r} featurizer is version {ident.get('version')}, this banditroute computes "
                    f"version {engine.version}: refit the policy (banditroute fit) with this version"
                )
            part = {name.split(".", 1)[1]: a for name, a in arrays.items() if name.startswith(k + ".")}
            engine.check(fs, part)
            out[k] = part
        f = cls(fs)
        f._arrays = out
        return f

    def fingerprint(self) -> str:
        """sha256 of the spec, each engine's identity and the fitted arrays."""
        spec, arrays = self.state()
        h = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode())
        for k in sorted(arrays):
            h.update(k.encode() + np.ascontiguousarray(arrays[k]).tobytes())
        return h.hexdigest()

    def save(self, directory: str | Path) -> Path:
        """Write ``featurizer.json`` and ``featurizer.npz`` into ``directory``."""
        spec, arrays = self.state()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "featurizer.npz", **arrays)  # type: ignore[arg-type]  # numpy's stub misreads **kwargs
        (d / "featurizer.json").write_text(json.dumps(spec, indent=2, sort_keys=True))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> Featurizer:
        d = Path(directory)
        try:
            spec = json.loads((d / "featurizer.json").read_text())
            with np.load(d / "featurizer.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise FeaturizerError(f"{d}: cannot read a saved featurizer: {exc}") from exc
        return cls.from_state(spec, arrays)
