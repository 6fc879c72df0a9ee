"""Routing policies: contextual bandits in pure numpy (no I/O but the artifact module's files).

Quality and cost are learned apart and traded at decision time with a per-request lambda; every decision
carries its distribution and propensity. See :mod:`bandit.base` for the contract.
"""

from banditroute.bandit.artifact import Artifact, export, to_bytes
from banditroute.bandit.artifact import load as import_artifact
from banditroute.bandit.base import Decision, Policy
from banditroute.bandit.context_free import UCB1, BestSingle, Oracle, RandomPolicy, Thompson
from banditroute.bandit.errors import (
    ArtifactError,
    BanditError,
    InvalidHyperparameterError,
    InvalidInputError,
    MissingExtraError,
    StateError,
    UnknownModelError,
)
from banditroute.bandit.linear import LinEpsGreedy, LinTS, LinUCB
from banditroute.bandit.onnx_static import OnnxStaticPolicy
from banditroute.bandit.pacing import BudgetPacer
from banditroute.bandit.registry import POLICIES, make_policy, policy_from_state

__all__ = [
    "POLICIES",
    "UCB1",
    "Artifact",
    "ArtifactError",
    "BanditError",
    "BestSingle",
    "BudgetPacer",
    "Decision",
    "InvalidHyperparameterError",
    "InvalidInputError",
    "LinEpsGreedy",
    "LinTS",
    "LinUCB",
    "MissingExtraError",
    "OnnxStaticPolicy",
    "Oracle",
    "Policy",
    "RandomPolicy",
    "StateError",
    "Thompson",
    "UnknownModelError",
    "export",
    "import_artifact",
    "make_policy",
    "policy_from_state",
    "to_bytes",
]
