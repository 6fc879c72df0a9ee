from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from banditroute.env.features import Featurizer, FeaturizerError, FeaturizerSpec, fit_cached, transform_cached
from banditroute.env.records import load_records

PROMPTS = [
    f"question {i} about {w} and {v}"
    for i, (w, v) in enumerate(
        zip(
            ["algebra", "history", "biology", "law", "python"] * 20,
            ["proof", "war", "cell", "court", "loop"] * 20,
            strict=True,
        )
    )
]


def fitted(dim: int = 8) -> Featurizer:
    return Featurizer(dim=dim, max_features=200).fit(PROMPTS)


def test_shape_bounds_and_bias() -> None:
    x = fitted().transform(PROMPTS[:10] + ["an unseen text entirely", ""])
    assert x.shape == (12, 8) and x.dtype == np.float64
    assert np.all(x >= -1) and np.all(x <= 1)
    np.testing.assert_array_equal(x[:, -1], 1.0)
    np.testing.assert_allclose(np.linalg.norm(x[:10, :-1], axis=1), 1.0)
    np.testing.assert_array_equal(x[-1, :-1], 0.0)  # no known n-gram: zero vector, bias only


def test_save_load_gives_identical_vectors(tmp_path: Path) -> None:
    f = fitted()
    f.save(tmp_path)
    g = Featurizer.load(tmp_path)
    probe = ["law and court today", *PROMPTS[:5]]
    np.testing.assert_array_equal(f.transform(probe), g.transform(probe))
    assert f.fingerprint() == g.fingerprint()
    with np.load(tmp_path / "featurizer.npz", allow_pickle=False) as z:  # plain arrays, no pickle
        assert set(z.files) == {"tfidf-svd.columns", "tfidf-svd.idf", "tfidf-svd.components"}


def test_state_is_validated() -> None:
    spec, arrays = fitted().state()
    bad = dict(arrays, **{"tfidf-svd.components": arrays["tfidf-svd.components"][:3]})
    with pytest.raises(FeaturizerError, match="components have shape"):
        Featurizer.from_state(spec, bad)
    with pytest.raises(FeaturizerError, match="format_version"):
        Featurizer.from_state({**spec, "format_version": 99}, arrays)
    with pytest.raises(FeaturizerError, match="unknown fields"):
        Featurizer.from_state({**spec, "colour": "red"}, arrays)
    with pytest.raises(FeaturizerError, match="outside the hash space"):
        Featurizer.from_state(spec, dict(arrays, **{"tfidf-svd.columns": arrays["tfidf-svd.columns"] + 2**30}))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dim": 1}, "dim must be in"),
        ({"kind": "bert"}, "kind must be one of"),
        ({"ngram_max": 0}, "ngram_max"),
        ({"hash_bits": 40}, "hash_bits"),
        ({"min_df": 0}, "min_df"),
        ({"max_features": 4, "dim": 8}, "max_features"),
    ],
)
def test_invalid_spec_names_the_parameter(kwargs: dict, match: str) -> None:
    with pytest.raises(FeaturizerError, match=match):
        FeaturizerSpec(**kwargs)


def test_unfitted_and_too_few_prompts() -> None:
    with pytest.raises(FeaturizerError, match="not fitted"):
        Featurizer().transform(["x"])
    with pytest.raises(FeaturizerError, match="at least dim"):
        Featurizer(dim=64).fit(PROMPTS[:10])


def test_seeded_fit_is_deterministic() -> None:
    np.testing.assert_array_equal(fitted().transform(PROMPTS), fitted().transform(PROMPTS))


def test_disk_cache_returns_the_same_and_skips_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synthetic_parquet: Path
) -> None:
    monkeypatch.setenv("BANDITROUTE_CACHE_DIR", str(tmp_path / "cache"))
    rs = load_records(synthetic_parquet)
    spec = FeaturizerSpec(dim=8, max_features=100)
    f1 = fit_cached(spec, list(rs.prompts))
    x1 = transform_cached(f1, list(rs.prompts))
    assert len(list((tmp_path / "cache" / "features").glob("*.npy"))) == 1
    calls = []
    monkeypatch.setattr(Featurizer, "fit", lambda self, p, labels=None: calls.append("fit") or self)
    monkeypatch.setattr(Featurizer, "transform", lambda self, p: calls.append("transform"))
    f2 = fit_cached(spec, list(rs.prompts))
    x2 = transform_cached(f2, list(rs.prompts))
    assert calls == []  # both came from disk
    np.testing.assert_array_equal(x1, x2)


def test_a_single_query_gets_exactly_its_batch_row() -> None:
    """Serving featurizes one query at a time; training featurized batches: the vectors must be the same bits."""
    f = fitted()
    batch = f.transform(PROMPTS)
    for i in range(0, len(PROMPTS), 7):
        np.testing.assert_array_equal(f.transform([PROMPTS[i]])[0], batch[i])


@pytest.mark.parametrize("hash_bits", [10, 20])
def test_served_hashing_equals_the_vectorizer(hash_bits: int) -> None:
    """A served query's n-gram buckets (hashed one by one, memoised) are exactly the vectorizer's row, for
    accents, CJK, emoji, punctuation only and empty text, and when buckets collide (10 bits)."""
    from banditroute.env.features import tfidf

    spec = FeaturizerSpec(hash_bits=hash_bits)
    texts = [
        *PROMPTS[:20],
        "",
        "  ?! ",
        "Ünïcödé café naïve résumé",
        "数学 问题 是 什么",
        "emoji 🚀 test 🚀 test",
        "a a a a b",
    ]
    rows = tfidf._hasher(spec).transform(texts)
    rows.sum_duplicates()
    cache: dict = {}
    for _ in range(2):  # the second pass reads the memo
        for i, text in enumerate(texts):
            buckets, counts = tfidf.bucket_counts(spec, text, cache)
            lo, hi = rows.indptr[i], rows.indptr[i + 1]
            order = np.argsort(rows.indices[lo:hi])
            np.testing.assert_array_equal(buckets, rows.indices[lo:hi][order])
            np.testing.assert_array_equal(counts, rows.data[lo:hi][order])
