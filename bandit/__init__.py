"""Routing policies: contextual bandits in pure numpy (no I/O but the artifact module's files).

Quality and cost are learned apart and traded at decision time with a per-request lambda; every decision
carries its distribution and propensity. See :mod:`bandit.base` for the contract.
"""

from bandit.artifact import Artifact, export, to_bytes
from bandit.artifact import load as import_artifact
from bandit.base import Decision, Policy
from bandit.context_free import UCB1, BestSingle, Oracle, RandomPolicy, Thompson
from bandit.errors import (
    ArtifactError,
    BanditError,
    InvalidHyperparameterError,
    InvalidInputError,
    StateError,
    UnknownModelError,
)
from bandit.linear import LinEpsGreedy, LinTS, LinUCB
from bandit.pacing import BudgetPacer
from bandit.registry import POLICIES, make_policy

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
    "Oracle",
    "Policy",
    "RandomPolicy",
    "StateError",
    "Thompson",
    "UnknownModelError",
    "export",
    "import_artifact",
    "make_policy",
    "to_bytes",
]
