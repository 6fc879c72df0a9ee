"""The registry of policies: adding one is a class in bandit/ and one line here.

:func:`make_policy` builds a fresh policy from hyperparameters; :func:`policy_from_state` rebuilds a learned one
from what was saved of it (the service's store and the exported artifact both go through it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from banditroute.bandit.base import Policy
from banditroute.bandit.cascade import AgreementCascade, Cascade
from banditroute.bandit.context_free import UCB1, BestSingle, Oracle, RandomPolicy, Thompson
from banditroute.bandit.errors import InvalidHyperparameterError
from banditroute.bandit.knn import KNNRouter
from banditroute.bandit.linear import LinEpsGreedy, LinTS, LinUCB
from banditroute.bandit.neural_linear import NeuralLinear
from banditroute.bandit.onnx_static import OnnxStaticPolicy
from banditroute.bandit.ridge import RidgeRouter
from banditroute.bandit.shared_linear import SharedLinTS, SharedLinUCB

POLICIES: dict[str, type[Policy]] = {
    LinUCB.name: LinUCB,
    LinTS.name: LinTS,
    LinEpsGreedy.name: LinEpsGreedy,
    SharedLinUCB.name: SharedLinUCB,
    SharedLinTS.name: SharedLinTS,
    KNNRouter.name: KNNRouter,
    NeuralLinear.name: NeuralLinear,
    RidgeRouter.name: RidgeRouter,
    UCB1.name: UCB1,
    Thompson.name: Thompson,
    RandomPolicy.name: RandomPolicy,
    BestSingle.name: BestSingle,
    Oracle.name: Oracle,
    OnnxStaticPolicy.name: OnnxStaticPolicy,
    Cascade.name: Cascade,
    AgreementCascade.name: AgreementCascade,
}


def policy_class(name: str) -> type[Policy]:
    """The registered class of ``name``; an unknown name raises with the known ones."""
    try:
        return POLICIES[name]
    except KeyError:
        raise InvalidHyperparameterError(f"unknown policy {name!r}; choose one of {sorted(POLICIES)}") from None


def make_policy(name: str, models: Sequence[str], dim: int, **hyperparameters: Any) -> Policy:
    """Build the registered policy ``name``; unknown names and arguments raise with the allowed ones."""
    cls = policy_class(name)
    try:
        return cls(models, dim, **hyperparameters)
    except TypeError as exc:
        raise InvalidHyperparameterError(f"policy {name!r}: {exc}") from exc


def policy_from_state(
    name: str,
    models: Sequence[str],
    dim: int,
    hyperparameters: Mapping[str, Any],
    state: Mapping[str, Any],
) -> Policy:
    """Rebuild the registered policy ``name`` from its hyperparameters and a :meth:`Policy.state_dict`.

    Raises:
        InvalidHyperparameterError: unknown name or arguments.
        StateError: a state that does not fit the policy.
    """
    cls = policy_class(name)
    try:
        return cls.from_state(models, dim, hyperparameters, state)
    except TypeError as exc:
        raise InvalidHyperparameterError(f"policy {name!r}: {exc}") from exc
