"""Every registered featurizer (and a concat of them): determinism, round trip, batch = single row, identity,
clear errors for missing labels or packages, and no network connection while fitting or transforming."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from banditroute.env.features import FEATURIZERS, Featurizer, FeaturizerError, FeaturizerSpec

TOPICS = {
    "math": ["integral", "proof", "algebra", "matrix", "42 + 17 = ?"],
    "law": ["court", "statute", "contract", "plaintiff", "tort"],
    "code": ["def f(x):\n    return x", "python loop", "compile error;", "```js\nlet a = 1;\n```", "import os"],
    "history": ["empire", "treaty", "war of 1812", "dynasty", "revolution"],
}
PROMPTS = [
    f"Question {i}: what about {w} and {v}?" for i in range(30) for w, v in [(TOPICS[t][i % 5], t) for t in TOPICS]
]
LABELS = np.array([t for i in range(30) for t in TOPICS])
KINDS = [k for k, e in FEATURIZERS.items() if e.requires is None]


def spec_for(kind: str) -> FeaturizerSpec:
    if "+" in kind:
        return FeaturizerSpec.parse(kind, dim=8, max_features=300)
    return FeaturizerSpec(kind=kind, dim=8, max_features=300)


@pytest.fixture(params=[*KINDS, "category+lexical", "tfidf-svd+category+lexical"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError(f"test: network connection to {address!r} refused")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_fit_transform_without_network(kind: str, no_network: list[Any]) -> None:
    f = Featurizer(spec_for(kind)).fit(PROMPTS, LABELS)
    x = f.transform(PROMPTS)
    assert x.shape == (len(PROMPTS), f.dim) and np.isfinite(x).all()
    np.testing.assert_array_equal(x[:, -1], 1.0)
    assert no_network == []


def test_deterministic_and_round_trip(kind: str, tmp_path: Path) -> None:
    f = Featurizer(spec_for(kind)).fit(PROMPTS, LABELS)
    g = Featurizer(spec_for(kind)).fit(PROMPTS, LABELS)
    probe = ["a new question about a contract in court?", *PROMPTS[:7], ""]
    np.testing.assert_array_equal(f.transform(probe), g.transform(probe))
    f.save(tmp_path)
    h = Featurizer.load(tmp_path)
    np.testing.assert_array_equal(f.transform(probe), h.transform(probe))
    assert f.fingerprint() == h.fingerprint() and h.dim == f.dim
    spec, _ = f.state()
    assert [i["name"] for i in spec["identity"]] == list(f.spec.kinds)


def test_single_query_is_its_batch_row(kind: str) -> None:
    f = Featurizer(spec_for(kind)).fit(PROMPTS, LABELS)
    batch = f.transform(PROMPTS)
    for i in range(0, len(PROMPTS), 11):
        np.testing.assert_array_equal(f.transform([PROMPTS[i]])[0], batch[i])


def test_category_head_predicts_the_labels() -> None:
    f = Featurizer(FeaturizerSpec(kind="category", dim=8, max_features=300)).fit(PROMPTS, LABELS)
    p = f.transform(PROMPTS)[:, :-1]
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    spec, arrays = f.state()
    classes = arrays["category.classes"]
    assert (classes[p.argmax(axis=1)] == LABELS).mean() > 0.9


def test_category_needs_labels_and_enough_classes() -> None:
    with pytest.raises(FeaturizerError, match="learns from labels"):
        Featurizer(FeaturizerSpec(kind="category", dim=8)).fit(PROMPTS)
    with pytest.raises(FeaturizerError, match="distinct"):
        Featurizer(FeaturizerSpec(kind="category", dim=8)).fit(PROMPTS, ["one"] * len(PROMPTS))


def test_lexical_sees_code_and_math() -> None:
    f = Featurizer(FeaturizerSpec(kind="lexical")).fit(PROMPTS)
    code, plain = f.transform(["```python\ndef f(x):\n    return x\n```", "tell me about the empire"])
    assert code[5] > plain[5]  # code_markers


def test_artifact_of_a_missing_package_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    f = Featurizer(FeaturizerSpec(kind="tfidf-svd", dim=8, max_features=300)).fit(PROMPTS)
    spec, arrays = f.state()
    engine = FEATURIZERS["tfidf-svd"]
    monkeypatch.setattr(engine, "requires", ("a_package_that_is_not_installed", "someextra"))
    with pytest.raises(FeaturizerError, match=r"pip install 'banditroute\[someextra\]'"):
        Featurizer.from_state(spec, arrays)


def test_artifact_of_another_engine_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, arrays = Featurizer(FeaturizerSpec(kind="lexical")).fit(PROMPTS).state()
    monkeypatch.setattr(FEATURIZERS["lexical"], "version", 99)
    with pytest.raises(FeaturizerError, match="version 1, this banditroute computes version 99"):
        Featurizer.from_state(spec, arrays)


@pytest.mark.parametrize(
    ("text", "match"),
    [("bert", "kind must be one of"), ("category+bert", "concat needs"), ("category+", "empty part")],
)
def test_parse_refuses_unknown_kinds(text: str, match: str) -> None:
    with pytest.raises(FeaturizerError, match=match):
        FeaturizerSpec.parse(text)


def test_out_of_fold_rows_come_from_the_other_folds() -> None:
    cat = Featurizer(FeaturizerSpec(kind="category", dim=8, max_features=300)).fit(PROMPTS, LABELS)
    oof = cat.out_of_fold(PROMPTS, LABELS, folds=5)
    assert oof.shape == (len(PROMPTS), cat.dim) and not np.array_equal(oof, cat.transform(PROMPTS))
    np.testing.assert_allclose(oof[:, :-1].sum(axis=1), 1.0)  # still distributions over the labels
    svd = Featurizer(FeaturizerSpec(kind="tfidf-svd", dim=8, max_features=300)).fit(PROMPTS)
    np.testing.assert_array_equal(svd.out_of_fold(PROMPTS, folds=5), svd.transform(PROMPTS))  # learns no labels


def test_out_of_fold_refits_only_the_supervised_parts_of_a_concat() -> None:
    spec = FeaturizerSpec.parse("category+tfidf-svd+lexical", dim=8, max_features=300)
    f = Featurizer(spec).fit(PROMPTS, LABELS)
    oof, full = f.out_of_fold(PROMPTS, LABELS, folds=5), f.transform(PROMPTS)
    n_labels = len(set(LABELS))
    # the SVD and lexical columns (and the bias) are the featurizer's own: one basis for train and new queries
    np.testing.assert_array_equal(oof[:, n_labels:], full[:, n_labels:])
    cat = Featurizer(FeaturizerSpec(kind="category", dim=8, max_features=300)).fit(PROMPTS, LABELS)
    np.testing.assert_allclose(oof[:, :n_labels], cat.out_of_fold(PROMPTS, LABELS, folds=5)[:, :-1])
