"""The ``category`` featurizer: a supervised head that predicts each query's label from its text.

A logistic regression on the hashed TF-IDF (:mod:`.tfidf`), one-vs-rest and fitted by SGD (seconds, not the
minute an exact multinomial solver takes on 20,000 columns), learns the training prompts' labels (the records'
``benchmark`` or another per-query column); its predicted distribution over the labels (the one-vs-rest
probabilities, normalised) is the context. A compact context whose coordinates mean something ("this looks like
law") lets a linear router learn per-category model strengths from few events, where a 64-d SVD spreads them thin.
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


def ovr_probabilities(z: np.ndarray) -> np.ndarray:
    """One-vs-rest logits ``(n, k)`` to a distribution: each class's sigmoid, normalised (as scikit-learn's
    ``predict_proba`` of a one-vs-rest logistic model)."""
    s = 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))
    total = s.sum(axis=1, keepdims=True)
    return np.asarray(np.where(total > 0, s / np.where(total > 0, total, 1.0), 1.0 / z.shape[1]))


class CategoryHead(Engine):
    """Predicted label distribution ``(n, n_labels)`` of a one-vs-rest logistic regression on TF-IDF."""

    name: ClassVar[str] = "category"
    version: ClassVar[int] = 2
    needs_labels: ClassVar[bool] = True

    @classmethod
    def fit(cls, spec: FeaturizerSpec, prompts: Sequence[str], labels: np.ndarray | None) -> dict[str, np.ndarray]:
        from sklearn.linear_model import SGDClassifier

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
        # alpha = 1 / (C n): the L2 strength of LogisticRegression(C) on n prompts, per example as SGD counts it
        clf = SGDClassifier(
            loss="log_loss",
            alpha=1.0 / (spec.l2_penalty * len(prompts)),
            max_iter=1000,
            tol=1e-4,
            random_state=spec.seed,
        )
        clf.fit(X, y)
        coef = np.asarray(clf.coef_, dtype=np.float64)
        intercept = np.asarray(clf.intercept_, dtype=np.float64)
        if classes.size == 2:  # scikit-learn keeps one row for two classes: the other class is its complement
            coef = np.vstack([-coef, coef])
            intercept = np.array([-intercept[0], intercept[0]])
        arrays["coef"] = np.ascontiguousarray(coef, dtype=np.float32)
        arrays["intercept"] = intercept
        arrays["classes"] = np.asarray(clf.classes_).astype(str)
        return arrays

    @classmethod
    def transform(
        cls, spec: FeaturizerSpec, prompts: Sequence[str], arrays: dict[str, np.ndarray], cache: dict[str, Any]
    ) -> np.ndarray:
        logits = project_rows(spec, prompts, arrays, cache, projection(arrays, cache, "coef"))
        return ovr_probabilities(logits + arrays["intercept"])

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
