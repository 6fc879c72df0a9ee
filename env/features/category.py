"""The ``category`` featurizer: a supervised head that predicts each query's label from its text.

A multinomial logistic regression on the hashed TF-IDF (:mod:`.tfidf`) is fitted on the training prompts and
their labels (the records' ``benchmark`` or another per-query column); its predicted distribution over the labels
is the context. A compact context whose coordinates mean something ("this looks like law") lets a linear router
learn per-category model strengths from few events, where a 64-d SVD spreads them thin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from banditroute.env.features.base import Engine, FeaturizerError, FeaturizerSpec, need
from banditroute.env.features.tfidf import (
    check_vocabulary,
    fit_vocabulary,
    project_rows,
    projection,
    tfidf_matrix,
)

MAX_LABELS = 256


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


class CategoryHead(Engine):
    """Predicted label distribution ``(n, n_labels)`` of a logistic regression on TF-IDF."""

    name: ClassVar[str] = "category"
    needs_labels: ClassVar[bool] = True

    @classmethod
    def fit(cls, spec: FeaturizerSpec, prompts: Sequence[str], labels: np.ndarray | None) -> dict[str, np.ndarray]:
        from sklearn.linear_model import LogisticRegression

        if labels is None:
            raise FeaturizerError(
                f"the category featurizer learns from labels: give the records' {spec.label_column!r} column"
            )
        y = np.asarray(labels).astype(str)
        if y.shape != (len(prompts),):
            raise FeaturizerError(f"got {y.shape[0]} labels for {len(prompts)} prompts")
        classes = np.unique(y)
        if not 2 <= classes.size <= MAX_LABELS:
            raise FeaturizerError(
                f"the category featurizer needs 2 to {MAX_LABELS} distinct {spec.label_column!r} values, "
                f"got {classes.size}; choose another label column or featurizer"
            )
        arrays = fit_vocabulary(spec, prompts, min_columns=2)
        X = tfidf_matrix(spec, prompts, arrays, {})
        clf = LogisticRegression(C=spec.l2_penalty, max_iter=500, random_state=spec.seed)
        clf.fit(X, y)
        coef = np.asarray(clf.coef_, dtype=np.float64)
        intercept = np.asarray(clf.intercept_, dtype=np.float64)
        if classes.size == 2:  # scikit-learn keeps one row for two classes: expand to a two-way softmax
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        arrays["coef"] = np.ascontiguousarray(coef, dtype=np.float32)
        arrays["intercept"] = intercept
        arrays["classes"] = np.asarray(clf.classes_).astype(str)
        return arrays

    @classmethod
    def transform(
        cls, spec: FeaturizerSpec, prompts: Sequence[str], arrays: dict[str, np.ndarray], cache: dict[str, Any]
    ) -> np.ndarray:
        logits = project_rows(spec, prompts, arrays, cache, projection(arrays, cache, "coef"))
        return softmax(logits + arrays["intercept"])

    @classmethod
    def check(cls, spec: FeaturizerSpec, arrays: dict[str, np.ndarray]) -> None:
        check_vocabulary(spec, arrays)
        need(arrays, "coef", "intercept", "classes")
        k, m = arrays["classes"].shape[0], arrays["columns"].shape[0]
        if arrays["coef"].shape != (k, m) or arrays["intercept"].shape != (k,):
            raise FeaturizerError(f"category head arrays disagree: coef {arrays['coef'].shape}, want ({k}, {m})")

    @classmethod
    def width(cls, spec: FeaturizerSpec, arrays: dict[str, np.ndarray]) -> int:
        return int(arrays["classes"].shape[0])
