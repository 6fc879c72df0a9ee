"""A static policy backed by an ONNX agent exported by ``banditroute train-rl``.

It chooses what the agent chooses (mixed with the exploration floor, so every candidate keeps a propensity
and logged decisions stay usable for off-policy evaluation) and learns nothing: feedback on it is counted, not
applied. It lives in the service (not in ``bandit/``) because it needs onnxruntime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from banditroute.bandit.base import Policy
from banditroute.bandit.errors import InvalidInputError

NAME = "onnx-static"


class OnnxStaticPolicy(Policy):
    name = NAME

    def __init__(self, models: Sequence[str], dim: int, *, onnx_model: bytes, **kwargs: Any) -> None:
        super().__init__(models, dim, **kwargs)
        import onnxruntime as ort

        try:
            self._session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise InvalidInputError(f"not a loadable ONNX model: {exc}") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != "obs":
            raise InvalidInputError("the ONNX model must have one input named 'obs' (as train-rl exports)")
        shape = inputs[0].shape
        if len(shape) != 2 or shape[1] != dim:
            raise InvalidInputError(f"the ONNX model takes obs of shape {shape}, the featurizer gives dim {dim}")
        outs = {o.name for o in self._session.get_outputs()}
        if "scores" not in outs:
            raise InvalidInputError("the ONNX model must output 'scores' (as train-rl exports)")
        self._n = 0.0

    def _scores(self, X: np.ndarray) -> np.ndarray:
        scores = self._session.run(["scores"], {"obs": X.astype(np.float32)})[0]
        if scores.shape != (X.shape[0], self.k):
            raise InvalidInputError(f"the ONNX model scores {scores.shape[1]} models, the policy has {self.k}")
        return np.asarray(scores, dtype=np.float64)

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        from banditroute.bandit.base import greedy_pmf

        return greedy_pmf(self._scores(X), mask)

    def _estimates(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._scores(X), np.zeros((X.shape[0], self.k))

    def _update_arm(self, X: np.ndarray, j: int, quality: np.ndarray, cost: np.ndarray, weight: np.ndarray) -> None:
        return None  # static: feedback is counted by the base class, not learned

    def _new_arm(self) -> None:
        raise InvalidInputError("a static ONNX policy cannot add models (its network has a fixed output)")

    def _drop_arm(self, j: int) -> None:
        raise InvalidInputError("a static ONNX policy cannot remove models (its network has a fixed output)")

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        return None
