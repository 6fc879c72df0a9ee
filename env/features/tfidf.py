"""Hashed TF-IDF (shared by the SVD and category featurizers) and the ``tfidf-svd`` featurizer.

Word 1..``ngram_max``-grams are hashed into ``2**hash_bits`` buckets (scikit-learn's stateless
``HashingVectorizer``; a served query, one or a few prompts, takes :func:`bucket_counts`, the same tokens and
murmurhash without the vectorizer's per-call set-up), restricted to the ``max_features`` buckets with the highest
document frequency (at least ``min_df``) on the training prompts, weighted by sublinear TF-IDF and L2-normalised.
``tfidf-svd`` reduces that by TruncatedSVD to ``dim - 1`` components and L2-normalises again: entries in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from banditroute.env.features.base import Engine, FeaturizerError, FeaturizerSpec, l2_rows, need


def _hasher(spec: FeaturizerSpec) -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=2**spec.hash_bits,
        ngram_range=(1, spec.ngram_max),
        alternate_sign=False,
        norm=None,
        lowercase=True,
        dtype=np.float64,
    )


def _cached_hasher(spec: FeaturizerSpec, cache: dict[str, Any]) -> Any:
    hv = cache.get("hasher")
    if hv is None:
        hv = cache["hasher"] = _hasher(spec)
    return hv


#: at most this many prompts are hashed one by one (:func:`bucket_counts`); larger batches use the vectorizer
FEW = 8
#: n-gram -> bucket entries remembered per featurizer (a few MB at most); cleared when full
MEMO = 50_000


def _analyzer(spec: FeaturizerSpec) -> Any:
    """The vectorizer's analyzer for our settings (lower case, ``token_pattern``, word 1..``ngram_max``-grams,
    no stop words, no accent stripping), without its per-call dispatch: the same list of n-grams in the same
    order (tests/env/test_features.py checks it against the vectorizer)."""
    import re

    find = re.compile(_hasher(spec).token_pattern).findall
    top = spec.ngram_max

    def analyze(text: str) -> list[str]:
        tokens: list[str] = find(text.lower())
        grams = list(tokens)
        for n in range(2, min(top, len(tokens)) + 1):
            grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return grams

    return analyze


def bucket_counts(spec: FeaturizerSpec, text: str, cache: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """One prompt's hashed n-gram counts, ``(sorted buckets, counts)``: exactly ``HashingVectorizer.transform``'s
    row (same n-grams, murmurhash3 of the UTF-8 n-gram with seed 0, the same bucket for ``-2**31``), without the
    vectorizer's per-call validation and sparse-matrix building; the buckets of recent n-grams are remembered
    (at most :data:`MEMO` of them), so common words are hashed once per process."""
    from sklearn.utils import murmurhash3_32

    analyze = cache.get("analyzer")
    if analyze is None:
        analyze = cache["analyzer"] = _analyzer(spec)
    memo: dict[str, int] = cache.setdefault("buckets", {})
    grams = analyze(text)
    get = memo.get
    buckets = [get(g) for g in grams]
    if None in buckets:
        n = 2**spec.hash_bits
        for i, b in enumerate(buckets):
            if b is None:
                if len(memo) >= MEMO:
                    memo.clear()
                h = murmurhash3_32(grams[i], 0)
                buckets[i] = memo[grams[i]] = (2**31 - 1 - (n - 1)) % n if h == -(2**31) else abs(h) % n
    a = np.array(buckets, dtype=np.int64)
    if a.size == 0:
        return a, np.zeros(0)
    a.sort()
    # run-length counts of the sorted buckets (np.unique's result, at a fraction of its overhead on short rows)
    starts = np.flatnonzero(np.concatenate(([True], a[1:] != a[:-1])))
    return a[starts], np.diff(np.append(starts, a.size)).astype(np.float64)


def fit_vocabulary(spec: FeaturizerSpec, prompts: Sequence[str], min_columns: int) -> dict[str, np.ndarray]:
    """``columns`` (kept hashed buckets, sorted) and their ``idf``, from the training prompts."""
    counts = sp.csc_matrix(_hasher(spec).transform(list(prompts)))
    df = np.diff(counts.indptr)
    eligible = np.flatnonzero(df >= spec.min_df)
    if eligible.size < min_columns:
        raise FeaturizerError(
            f"only {eligible.size} n-grams occur in >= min_df={spec.min_df} prompts; lower min_df or dim ({spec.dim})"
        )
    # Highest document frequency first; ties broken by bucket index so the choice is deterministic.
    order = np.lexsort((eligible, -df[eligible]))
    columns = np.sort(eligible[order[: spec.max_features]]).astype(np.int64)
    n = len(prompts)
    return {"columns": columns, "idf": np.log((1.0 + n) / (1.0 + df[columns])) + 1.0}


def check_vocabulary(spec: FeaturizerSpec, arrays: dict[str, np.ndarray]) -> None:
    need(arrays, "columns", "idf")
    cols, idf = arrays["columns"], arrays["idf"]
    if cols.ndim != 1 or cols.shape != idf.shape:
        raise FeaturizerError("featurizer columns and idf disagree in length")
    if cols.size and (cols.min() < 0 or cols.max() >= 2**spec.hash_bits):
        raise FeaturizerError("featurizer columns fall outside the hash space")


def _colmap(spec: FeaturizerSpec, arrays: dict[str, np.ndarray], cache: dict[str, Any]) -> np.ndarray:
    """Hashed bucket -> kept column (or -1): a lookup table, much cheaper than slicing 2**hash_bits columns."""
    cached = cache.get("colmap")
    if cached is None:
        cached = np.full(2**spec.hash_bits, -1, dtype=np.int64)
        cached[arrays["columns"]] = np.arange(arrays["columns"].shape[0])
        cache["colmap"] = cached
    return np.asarray(cached)


def tfidf_rows(
    spec: FeaturizerSpec, prompts: Sequence[str], arrays: dict[str, np.ndarray], cache: dict[str, Any]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per prompt: (kept column positions, L2-normalised sublinear TF-IDF values). Row by row, so that a served
    query and a training batch are computed the very same way."""
    colmap = _colmap(spec, arrays, cache)
    idf = arrays["idf"]
    for buckets, counts in _hashed_rows(spec, prompts, cache):
        pos = colmap[buckets]
        keep = pos >= 0
        pos = pos[keep]
        v = (1.0 + np.log(counts[keep])) * idf[pos]
        norm = float(np.sqrt(v @ v))
        yield pos, (v / norm if norm > 0 else v)


def _hashed_rows(
    spec: FeaturizerSpec, prompts: Sequence[str], cache: dict[str, Any]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per prompt: its hashed n-gram ``(buckets, counts)``."""
    if len(prompts) <= FEW:
        for text in prompts:
            yield bucket_counts(spec, text, cache)
        return
    counts = _cached_hasher(spec, cache).transform(list(prompts))
    counts.sum_duplicates()
    for i in range(counts.shape[0]):
        lo, hi = counts.indptr[i], counts.indptr[i + 1]
        yield counts.indices[lo:hi], counts.data[lo:hi]


def tfidf_matrix(
    spec: FeaturizerSpec, prompts: Sequence[str], arrays: dict[str, np.ndarray], cache: dict[str, Any]
) -> sp.csr_matrix:
    """``(n, m)`` sparse TF-IDF over the kept columns (fit-time input of the SVD and of the category head)."""
    rows, cols, values = [], [], []
    for i, (pos, v) in enumerate(tfidf_rows(spec, prompts, arrays, cache)):
        rows.append(np.full(pos.size, i))
        cols.append(pos)
        values.append(v)
    n, m = len(prompts), arrays["columns"].shape[0]
    if not rows:
        return sp.csr_matrix((n, m))
    return sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, m))


def project_rows(
    spec: FeaturizerSpec,
    prompts: Sequence[str],
    arrays: dict[str, np.ndarray],
    cache: dict[str, Any],
    weights: np.ndarray,
) -> np.ndarray:
    """``(n, w)``: each prompt's TF-IDF row times ``weights: (m, w)`` (C-contiguous float64)."""
    out = np.zeros((len(prompts), weights.shape[1]))
    for i, (pos, v) in enumerate(tfidf_rows(spec, prompts, arrays, cache)):
        out[i] = v @ weights[pos]
    return out


def fit_svd(raw: Any, spec: FeaturizerSpec) -> np.ndarray:
    """``(dim - 1, m)`` float32 TruncatedSVD components of ``raw: (n, m)``.

    float32 halves the artifact; transform always upcasts the stored values, so a saved and a fresh featurizer
    compute from the very same numbers."""
    from sklearn.decomposition import TruncatedSVD

    svd = TruncatedSVD(n_components=spec.dim - 1, random_state=spec.seed, algorithm="randomized")
    svd.fit(raw)
    return np.ascontiguousarray(svd.components_, dtype=np.float32)


def projection(arrays: dict[str, np.ndarray], cache: dict[str, Any], key: str = "components") -> np.ndarray:
    """``(m, w)``: stored float32 weights upcast and transposed once, C-contiguous for the row products."""
    name = f"proj:{key}"
    if name not in cache:
        cache[name] = np.ascontiguousarray(arrays[key].astype(np.float64).T)
    return np.asarray(cache[name])


class TfidfSvd(Engine):
    """Sublinear hashed TF-IDF reduced by TruncatedSVD to ``dim - 1`` L2-normalised components."""

    name: ClassVar[str] = "tfidf-svd"
    version: ClassVar[int] = 3

    @classmethod
    def fit(cls, spec: FeaturizerSpec, prompts: Sequence[str], labels: np.ndarray | None) -> dict[str, np.ndarray]:
        if len(prompts) < spec.dim:
            raise FeaturizerError(f"need at least dim={spec.dim} training prompts, got {len(prompts)}")
        arrays = fit_vocabulary(spec, prompts, min_columns=spec.dim)
        arrays["components"] = fit_svd(tfidf_matrix(spec, prompts, arrays, {}), spec)
        return arrays

    @classmethod
    def transform(
        cls, spec: FeaturizerSpec, prompts: Sequence[str], arrays: dict[str, np.ndarray], cache: dict[str, Any]
    ) -> np.ndarray:
        z = l2_rows(project_rows(spec, prompts, arrays, cache, projection(arrays, cache)))
        return np.asarray(np.clip(z, -1.0, 1.0))

    @classmethod
    def check(cls, spec: FeaturizerSpec, arrays: dict[str, np.ndarray]) -> None:
        check_vocabulary(spec, arrays)
        need(arrays, "components")
        comp = arrays["components"]
        if comp.ndim != 2 or comp.shape != (spec.dim - 1, arrays["columns"].shape[0]):
            raise FeaturizerError(
                f"featurizer components have shape {comp.shape}, want ({spec.dim - 1}, {arrays['columns'].shape[0]})"
            )

    @classmethod
    def width(cls, spec: FeaturizerSpec, arrays: dict[str, np.ndarray]) -> int:
        return spec.dim - 1
