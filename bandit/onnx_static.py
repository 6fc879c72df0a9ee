"""A static policy backed by an ONNX agent exported by ``banditroute train-rl``.

It chooses what the agent chooses (mixed with the exploration floor, so every candidate keeps a propensity
and logged decisions stay usable for off-policy evaluation) and learns nothing: feedback on it is counted, not
applied. The network's bytes are its one learned array (``onnx_model``, uint8), so the service's store and the
exported artifact carry it like any other policy's state. onnxruntime (the ``[onnx]`` extra) is imported when
a policy is built, never when this module is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from banditroute.bandit.base import Policy
from banditroute.bandit.errors import InvalidHyperparameterError, InvalidInputError, MissingExtraError, StateError
from banditroute.bandit.pmf import greedy_pmf

NAME = "onnx-static"


def _session(onnx_model: bytes, dim: int) -> Any:
    """An onnxruntime session of ``onnx_model`` checked against train-rl's signature: ``obs: (n, dim)`` in,
    ``scores`` out."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingExtraError(
            "the onnx-static policy needs onnxruntime: pip install 'banditroute[onnx]'", name="onnxruntime"
        ) from exc
    try:
        session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own (non-public) exception types for a bad graph
        raise InvalidInputError(f"not a loadable ONNX model: {exc}") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != "obs":
        raise InvalidInputError("the ONNX model must have one input named 'obs' (as train-rl exports)")
    shape = inputs[0].shape
    if len(shape) != 2 or shape[1] != dim:
        raise InvalidInputError(f"the ONNX model takes obs of shape {shape}, the featurizer gives dim {dim}")
    if "scores" not in {o.name for o in session.get_outputs()}:
        raise InvalidInputError("the ONNX model must output 'scores' (as train-rl exports)")
    return session


class OnnxStaticPolicy(Policy):
    """The choices of an exported SB3 agent, with an exploration floor.

    Args:
        onnx_model: the agent's ``policy.onnx`` as bytes (or a uint8 array of them), as ``train-rl`` writes it.
        (and the base class's arguments)
    """

    name = NAME
    from_hyperparameters = False
    learns = False
    array_dtypes: ClassVar[Mapping[str, str]] = {"onnx_model": "uint8"}

    def __init__(
        self, models: Sequence[str], dim: int, *, onnx_model: bytes | np.ndarray | None = None, **kwargs: Any
    ) -> None:
        super().__init__(models, dim, **kwargs)
        if isinstance(onnx_model, np.ndarray) and onnx_model.dtype == np.uint8 and onnx_model.ndim == 1:
            onnx_model = onnx_model.tobytes()
        # bytes only: onnxruntime would read a str as a path on this machine
        if not isinstance(onnx_model, bytes | bytearray) or not onnx_model:
            raise InvalidHyperparameterError(
                "onnx_model must be the bytes of an ONNX agent exported by `banditroute train-rl`, "
                f"got {type(onnx_model).__name__}"
            )
        self._net = np.frombuffer(bytes(onnx_model), dtype=np.uint8).copy()
        self._session = _session(bytes(onnx_model), self.dim)

    @classmethod
    def from_state(
        cls, models: Sequence[str], dim: int, hyperparameters: Mapping[str, Any], state: Mapping[str, Any]
    ) -> Self:
        """The policy whose network is the state's ``onnx_model`` array."""
        try:
            net = np.asarray(state["arrays"]["onnx_model"])
        except (KeyError, TypeError) as exc:
            raise StateError("an onnx-static state holds its network as the array 'onnx_model'") from exc
        if net.dtype != np.uint8 or net.ndim != 1:
            raise StateError(f"state array 'onnx_model' must be uint8 bytes, got {net.dtype} of shape {net.shape}")
        policy = cls(models, dim, onnx_model=net.tobytes(), **hyperparameters)
        policy.load_state_dict(state)
        return policy

    def _scores(self, X: np.ndarray) -> np.ndarray:
        scores = self._session.run(["scores"], {"obs": X.astype(np.float32)})[0]
        if scores.shape != (X.shape[0], self.k):
            raise InvalidInputError(f"the ONNX model scores {scores.shape[1]} models, the policy has {self.k}")
        return np.asarray(scores, dtype=np.float64)

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
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
        return {"onnx_model": self._net}

    def _array_shapes(self, k: int) -> dict[str, tuple[int, ...]]:
        return {"onnx_model": self._net.shape}  # one network, not one row per model

    def _set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        return None  # load_state_dict checked that the network is this policy's own

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Install counters and the generator; the state must hold this policy's own network and models (build
        a policy from another network's state with ``registry.policy_from_state``)."""
        try:
            net, models = np.asarray(state["arrays"]["onnx_model"]), state["meta"]["models"]
        except (KeyError, TypeError) as exc:
            raise StateError("an onnx-static state must have 'meta' models and the array 'onnx_model'") from exc
        if net.dtype != np.uint8 or not np.array_equal(net, self._net):
            raise StateError("the state holds another ONNX network than this policy's")
        if not isinstance(models, list) or len(models) != self.k:
            raise StateError(f"the network scores {self.k} models, the state names {models!r}")
        super().load_state_dict(state)

    def warm_start(self, source: Policy) -> None:
        raise InvalidInputError("a static ONNX policy is not warm-started: it learns nothing")
