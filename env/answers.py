"""The models' own answers in performance records, and agreement between two answers.

A record may carry what the model answered: ``pred`` (a short answer: a choice letter, a number) or
``response`` (free text). Cascades read them: ask cheap models first, and escalate when their answers
disagree. Records without answers offer no cascade methods (:func:`answers_of` returns None).

Agreement:

- **choice** answers (every answer at most :data:`CHOICE_MAX_CHARS` characters): equal after normalising
  case, surrounding blanks and brackets/periods (``"(b)."`` agrees with ``"B"``); a missing answer agrees
  with nothing, not even another missing answer.
- **text** answers: cosine similarity of the answers' feature vectors (any fitted
  :class:`~banditroute.env.features.Featurizer` of the registry, e.g. ``tfidf-svd``) at least ``threshold``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from banditroute.env.record_files import RecordsError

if TYPE_CHECKING:
    from banditroute.env.features import Featurizer
    from banditroute.env.records import RecordSet

__all__ = [
    "ANSWER_COLUMNS",
    "CHOICE_MAX_CHARS",
    "AnswerKind",
    "Answers",
    "agreement_matrix",
    "answer_labels",
    "answer_lengths",
    "answers_of",
    "choice_agree",
    "normalise_choice",
    "query_labels",
    "text_agreement",
]

#: Record columns that hold a model's answer, in order of preference.
ANSWER_COLUMNS = ("pred", "response")
#: Answers no longer than this (after normalising) are compared as choices.
CHOICE_MAX_CHARS = 16

AnswerKind = Literal["choice", "text"]
_STRIP = re.compile(r"^[\s(\[{'\"]+|[\s)\]}'\".:]+$")


def normalise_choice(answer: object) -> str:
    """A short answer in canonical form: ``" (b). "`` -> ``"B"``; a missing answer (None, NaN, blank) -> ``""``."""
    if answer is None or (isinstance(answer, float) and np.isnan(answer)):
        return ""
    return _STRIP.sub("", str(answer)).upper()


def choice_agree(a: object, b: object) -> bool:
    """Whether two short answers are the same choice; a missing answer agrees with nothing."""
    na, nb = normalise_choice(a), normalise_choice(b)
    return bool(na) and na == nb


@dataclass(frozen=True)
class Answers:
    """The answers of ``k`` models on ``n`` queries.

    Attributes:
        values: ``(n, k)`` object array of answers as text; ``""`` where the model gave none.
        kind: ``"choice"`` (compared by :func:`choice_agree`) or ``"text"`` (by :func:`text_agreement`).
        column: the record column they came from.
    """

    values: np.ndarray
    kind: AnswerKind
    column: str

    def subset(self, index: np.ndarray | Sequence[int]) -> Answers:
        return Answers(self.values[np.asarray(index)], self.kind, self.column)

    def missing(self) -> np.ndarray:
        """``(n, k)`` bool: the model gave no answer."""
        missing: np.ndarray = self.values == ""
        return missing


def answers_of(records: RecordSet, column: str | None = None) -> Answers | None:
    """The answers in ``records`` (column ``column``, default the first of :data:`ANSWER_COLUMNS` present), or
    None when the records carry none.

    Raises:
        RecordsError: ``column`` was named and the records do not have it.
    """
    if column is not None and column not in records.extras:
        raise RecordsError(
            f"{records.path}: no answer column {column!r}; per-model columns are {sorted(records.extras)}. "
            f"Fix: name one of them, or add {' or '.join(ANSWER_COLUMNS)} to the records"
        )
    name = column or next((c for c in ANSWER_COLUMNS if c in records.extras), None)
    if name is None:
        return None
    raw = records.extras[name]
    choices = np.vectorize(normalise_choice, otypes=[object])(raw) if raw.size else raw.astype(object)
    if all(len(v) <= CHOICE_MAX_CHARS for v in choices.ravel()):
        return Answers(choices, "choice", name)
    text = np.vectorize(lambda v: "" if normalise_choice(v) == "" else str(v).strip(), otypes=[object])(raw)
    return Answers(text, "text", name)


def text_agreement(answers: Sequence[str], featurizer: Featurizer, threshold: float = 0.8) -> np.ndarray:
    """``(m, m)`` bool: which of ``m`` free-text answers agree (cosine similarity of their feature vectors at
    least ``threshold``; the featurizer's bias entry is left out). A missing answer agrees with nothing."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    texts = [str(a) for a in answers]
    present = np.array([bool(t.strip()) for t in texts])
    out = np.zeros((len(texts), len(texts)), dtype=bool)
    if present.sum() == 0:
        return out
    V = featurizer.transform([t for t, p in zip(texts, present, strict=True) if p])[:, :-1]
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    U = V / np.where(norms > 0, norms, 1.0)
    sim = U @ U.T
    ok = (sim >= threshold - 1e-12) & (norms > 0) & (norms.T > 0)
    idx = np.flatnonzero(present)
    out[np.ix_(idx, idx)] = ok
    return out


def agreement_matrix(
    answers: Sequence[object],
    kind: AnswerKind = "choice",
    featurizer: Featurizer | None = None,
    threshold: float = 0.8,
) -> np.ndarray:
    """``(m, m)`` bool agreement of ``m`` answers to one query (diagonal True where an answer exists)."""
    if kind == "choice":
        norm = [normalise_choice(a) for a in answers]
        return np.array([[bool(a) and a == b for b in norm] for a in norm], dtype=bool).reshape(len(norm), len(norm))
    if kind == "text":
        if featurizer is None:
            raise ValueError("text answers need a fitted featurizer to compare them")
        return text_agreement([str(a) if a is not None else "" for a in answers], featurizer, threshold)
    raise ValueError(f"kind must be 'choice' or 'text', got {kind!r}")


def query_labels(
    answers: Sequence[object],
    kind: AnswerKind = "choice",
    featurizer: Featurizer | None = None,
    threshold: float = 0.8,
) -> list[str]:
    """Labels of ``m`` answers to one query such that two agree iff their labels are equal (``""`` = none): the
    normalised choices, or for free text the agreement clusters (answers linked by :func:`text_agreement`,
    transitively) named ``"#0"``, ``"#1"``, ... What a cascade compares (the gateway labels what came back so)."""
    if kind == "choice":
        return [normalise_choice(a) for a in answers]
    agree = agreement_matrix(answers, kind, featurizer, threshold)
    m = len(answers)
    label = -np.ones(m, dtype=np.int64)
    for j in range(m):
        if not agree[j, j] or label[j] >= 0:
            continue
        stack, label[j] = [j], label.max() + 1
        while stack:  # the connected component of j
            i = stack.pop()
            for o in np.flatnonzero(agree[i] & (label < 0)):
                label[o] = label[j]
                stack.append(int(o))
    return ["" if c < 0 else f"#{c}" for c in label]


def answer_labels(answers: Answers, featurizer: Featurizer | None = None, threshold: float = 0.8) -> np.ndarray:
    """``(n, k)`` :func:`query_labels` of every query's answers."""
    if answers.kind == "choice":
        return answers.values.astype(str)
    if featurizer is None:
        raise ValueError("text answers need a fitted featurizer to compare them")
    rows = [query_labels(list(v), "text", featurizer, threshold) for v in answers.values]
    return np.array(rows, dtype=str).reshape(answers.values.shape)


def answer_lengths(records: RecordSet, answers: Answers) -> np.ndarray:
    """``(n, k)`` length in characters of each model's output: the records' ``output_chars`` where present, else
    the length of the answer text (0 where unknown)."""
    if "output_chars" in records.extras:
        raw = np.asarray(records.extras["output_chars"], dtype=np.float64)
        return np.where(np.isfinite(raw) & (raw >= 0), raw, 0.0)
    lengths: np.ndarray = np.vectorize(len, otypes=[np.float64])(answers.values)
    return lengths
