"""The registry of policies: adding one is a class in bandit/ and one line here."""

from __future__ import annotations

from typing import Any

from banditroute.bandit.base import Policy
from banditroute.bandit.context_free import UCB1, BestSingle, Oracle, RandomPolicy, Thompson
from banditroute.bandit.errors import InvalidHyperparameterError
from banditroute.bandit.linear import LinEpsGreedy, LinTS, LinUCB

POLICIES: dict[str, type[Policy]] = {
    LinUCB.name: LinUCB,
    LinTS.name: LinTS,
    LinEpsGreedy.name: LinEpsGreedy,
    UCB1.name: UCB1,
    Thompson.name: Thompson,
    RandomPolicy.name: RandomPolicy,
    BestSingle.name: BestSingle,
    Oracle.name: Oracle,
}


def make_policy(name: str, models: list[str] | tuple[str, ...], dim: int, **hyperparameters: Any) -> Policy:
    """Build the registered policy ``name``; unknown names and arguments raise with the allowed ones."""
    try:
        cls = POLICIES[name]
    except KeyError:
        raise InvalidHyperparameterError(f"unknown policy {name!r}; choose one of {sorted(POLICIES)}") from None
    try:
        return cls(models, dim, **hyperparameters)
    except TypeError as exc:
        raise InvalidHyperparameterError(f"policy {name!r}: {exc}") from exc
