"""The onnx-static policy: an exported agent's network as a registry entry whose state carries the network."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from banditroute.bandit import (
    InvalidHyperparameterError,
    MissingExtraError,
    OnnxStaticPolicy,
    StateError,
    import_artifact,
    make_policy,
    policy_from_state,
    to_bytes,
)
from banditroute.bandit.errors import InvalidInputError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

MODELS = ["a", "b", "c"]
DIM = 3
#: scores = obs @ W: model a on x[0], b on x[1], c on the bias
W = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)


def network(weights: np.ndarray = W, dim: int = DIM) -> bytes:
    """A train-rl-shaped graph: one input ``obs: (n, dim)``, output ``scores: (n, k)``."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "W"], ["scores"])],
        "agent",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["n", dim])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", weights.shape[1]])],
        [numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def new(**kw: object) -> OnnxStaticPolicy:
    p = make_policy("onnx-static", MODELS, DIM, onnx_model=network(), explore_floor=0.0, seed=1, **kw)
    assert isinstance(p, OnnxStaticPolicy)
    return p


def test_chooses_what_the_network_scores_highest() -> None:
    p = new()
    assert p.select(np.array([1.0, 0.0, 1.0])).model == "a"  # 2 > 1
    assert p.select(np.array([0.0, 1.0, 1.0])).model == "b"
    assert p.select(np.array([0.0, 0.0, 1.0])).model == "c"
    assert p.select(np.array([1.0, 0.0, 1.0]), candidates=["b", "c"]).model == "c"


def test_exploration_floor_keeps_every_candidate_possible() -> None:
    p = make_policy("onnx-static", MODELS, DIM, onnx_model=network(), explore_floor=0.3)
    pmf = p.pmf_batch(np.array([[1.0, 0.0, 1.0]]))[0]
    np.testing.assert_allclose(pmf, [0.7 + 0.1, 0.1, 0.1])


def test_feedback_is_counted_not_learned() -> None:
    p = new()
    x = np.array([1.0, 0.0, 1.0])
    before = p.pmf_batch(x[None])
    for _ in range(5):
        p.update(x, "a", 0.0, 1.0)
    assert p.n_updates == 5
    np.testing.assert_array_equal(p.pmf_batch(x[None]), before)


def test_the_network_travels_in_the_state_as_uint8() -> None:
    p = new()
    state = p.state_dict()
    assert list(state["arrays"]) == ["onnx_model"]
    assert state["arrays"]["onnx_model"].dtype == np.uint8
    assert state["arrays"]["onnx_model"].tobytes() == network()
    p.update(np.array([1.0, 0.0, 1.0]), "a", 1.0, 0.0)
    q = policy_from_state("onnx-static", MODELS, DIM, p.hyperparameters(), p.state_dict())
    assert isinstance(q, OnnxStaticPolicy) and q.n_updates == 1
    X = np.array([[1.0, 0.0, 1.0], [0.0, 3.0, 1.0]])
    np.testing.assert_array_equal(q.pmf_batch(X), p.pmf_batch(X))


def test_artifact_round_trip_like_any_policy() -> None:
    p = new()
    p.select(np.array([0.0, 1.0, 1.0]))  # move the generator: the artifact must carry it
    art = import_artifact(to_bytes(p))
    q = art.policy
    assert q.name == "onnx-static" and q.models == p.models
    assert q.state_dict()["meta"] == p.state_dict()["meta"]
    xs = [np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0])]
    assert [q.select(x).model for x in xs] == [p.select(x).model for x in xs]


def test_a_state_of_another_network_or_model_count_is_refused() -> None:
    p = new()
    other = make_policy("onnx-static", MODELS, DIM, onnx_model=network(W * 2))
    with pytest.raises(StateError, match="another ONNX network"):
        p.load_state_dict(other.state_dict())
    state = p.state_dict()
    state["meta"]["models"] = ["a", "b"]
    with pytest.raises(StateError, match="scores 3 models"):
        p.load_state_dict(state)
    with pytest.raises(StateError, match="onnx_model"):
        policy_from_state("onnx-static", MODELS, DIM, {}, {"meta": state["meta"], "arrays": {}})


@pytest.mark.parametrize(
    ("onnx_model", "err", "match"),
    [
        (None, InvalidHyperparameterError, "onnx_model must be the bytes"),
        ("/etc/passwd", InvalidHyperparameterError, "onnx_model must be the bytes"),  # never read as a path
        (b"not a network", InvalidInputError, "not a loadable ONNX model"),
    ],
)
def test_bad_networks_are_refused(onnx_model: object, err: type[Exception], match: str) -> None:
    with pytest.raises(err, match=match):
        make_policy("onnx-static", MODELS, DIM, onnx_model=onnx_model)


def test_a_network_of_another_dim_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="featurizer gives dim 4"):
        make_policy("onnx-static", MODELS, 4, onnx_model=network())


def test_models_cannot_change_and_it_is_not_warm_started() -> None:
    p = new()
    with pytest.raises(InvalidInputError, match="cannot add"):
        p.add_model("d")
    with pytest.raises(InvalidInputError, match="cannot remove"):
        p.remove_model("a")
    with pytest.raises(InvalidInputError, match="not warm-started"):
        p.warm_start(new())


def test_without_onnxruntime_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'banditroute\[onnx\]'"):
        make_policy("onnx-static", MODELS, DIM, onnx_model=network())


def test_importing_bandit_loads_no_onnxruntime() -> None:
    import subprocess

    code = "import sys, banditroute.bandit; print('onnxruntime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
