"""The models' own answers in records, and agreement between answers (choices and free text)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from banditroute.env.answers import (
    agreement_matrix,
    answer_labels,
    answer_lengths,
    answers_of,
    choice_agree,
    normalise_choice,
    text_agreement,
)
from banditroute.env.features import Featurizer
from banditroute.env.records import RecordsError, load_records
from tests.conftest import synthetic_long


def _records(tmp_path: Path, column: str | None, values: list[object] | None = None):
    df = synthetic_long(4)
    if column is not None:
        df[column] = values if values is not None else ["(a)", "B.", None, " c "] * 3
    path = tmp_path / "r.parquet"
    df.to_parquet(path)
    return load_records(path)


@pytest.mark.parametrize(
    ("a", "b", "agree"),
    [
        ("B", "(b).", True),
        (" c ", "C", True),
        ("A", "B", False),
        ("", "", False),
        (None, None, False),
        ("42", "42", True),
    ],
)
def test_choice_agreement(a: object, b: object, agree: bool) -> None:
    assert choice_agree(a, b) is agree


def test_normalise_choice_missing_is_empty() -> None:
    assert normalise_choice(None) == "" and normalise_choice(float("nan")) == "" and normalise_choice("  ") == ""


def test_choice_agreement_matrix_treats_missing_as_agreeing_with_nothing() -> None:
    m = agreement_matrix(["a", "(A)", "", "b", None])
    assert m[0, 1] and m[1, 0] and m[0, 0]
    assert not m[2].any() and not m[:, 2].any() and not m[4].any()
    assert not m[0, 3]


def test_text_agreement_uses_featurized_answers() -> None:
    corpus = [
        "the capital of france is paris",
        "paris is the capital of france",
        "photosynthesis converts light into chemical energy",
        "the mitochondria is the powerhouse of the cell",
    ] * 5
    f = Featurizer(dim=4, max_features=50).fit(corpus)
    answers = ["the capital of france is paris", "paris is the capital of france", "the mitochondria cell", ""]
    m = text_agreement(answers, f, threshold=0.9)
    assert m[0, 1] and m[1, 0]
    assert not m[0, 2] and not m[3].any()
    assert np.array_equal(m, agreement_matrix(answers, "text", f, 0.9))
    with pytest.raises(ValueError, match="featurizer"):
        agreement_matrix(answers, "text")
    with pytest.raises(ValueError, match="threshold"):
        text_agreement(answers, f, threshold=0.0)
    with pytest.raises(ValueError, match="kind"):
        agreement_matrix(answers, "essay")  # type: ignore[arg-type]


def test_answers_of_choice_records(tmp_path: Path) -> None:
    rs = _records(tmp_path, "pred")
    ans = answers_of(rs)
    assert ans is not None and ans.kind == "choice" and ans.column == "pred"
    assert ans.values.shape == (len(rs), rs.n_models)
    assert set(ans.values.ravel()) <= {"A", "B", "C", ""}
    assert ans.missing().any()
    np.testing.assert_array_equal(answer_labels(ans), ans.values.astype(str))
    np.testing.assert_array_equal(answer_lengths(rs, ans), rs.extras["output_chars"])  # output_chars when present


def test_answers_of_free_text_records_and_their_clusters(tmp_path: Path) -> None:
    texts = ["paris is the capital of france", "the capital of france is paris", "the mitochondria powers the cell"]
    rs = _records(tmp_path, "response", texts * 4)
    ans = answers_of(rs)
    assert ans is not None and ans.kind == "text"
    other = ["photosynthesis converts light into chemical energy", "the mitochondria is the powerhouse of the cell"]
    f = Featurizer(dim=4, max_features=50).fit([*texts, *other] * 5)
    labels = answer_labels(ans, f, threshold=0.9)
    for i in range(len(rs)):  # the two paris answers share a label, berlin has its own
        row = dict(zip(ans.values[i], labels[i], strict=True))
        assert row[texts[0]] == row[texts[1]] != row[texts[2]]
    with pytest.raises(ValueError, match="featurizer"):
        answer_labels(ans)


def test_records_without_answers_give_none(tmp_path: Path) -> None:
    assert answers_of(_records(tmp_path, None)) is None


def test_unknown_answer_column_is_a_clear_error(tmp_path: Path) -> None:
    rs = _records(tmp_path, "pred")
    with pytest.raises(RecordsError, match=r"no answer column 'verdict'.*Fix"):
        answers_of(rs, "verdict")


def test_answer_lengths_fall_back_to_the_text(tmp_path: Path) -> None:
    df = synthetic_long(2).drop(columns=["output_chars"])
    df["response"] = ["a long answer", "short"] * 3
    path = tmp_path / "r.csv"
    pd.DataFrame(df).to_csv(path, index=False)
    rs = load_records(path)
    ans = answers_of(rs)
    assert ans is not None
    np.testing.assert_array_equal(answer_lengths(rs, ans), np.vectorize(len)(ans.values))


def test_query_labels_for_one_query() -> None:
    from banditroute.env.answers import query_labels

    assert query_labels(["(b).", "B", "", "c"]) == ["B", "B", "", "C"]
    corpus = ["the capital of france is paris", "paris is the capital of france", "the mitochondria powers the cell"]
    other = ["photosynthesis converts light into chemical energy", "the mitochondria is the powerhouse of the cell"]
    f = Featurizer(dim=4, max_features=50).fit([*corpus, *other] * 5)
    labels = query_labels([*corpus, ""], "text", f, 0.9)
    assert labels[0] == labels[1] != labels[2] and labels[3] == ""
