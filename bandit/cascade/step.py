"""A cascade's decisions as values: the step it takes, its actions, and the check of a layout."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from banditroute.bandit.errors import InvalidHyperparameterError

ACTIONS = ("stop", "escalate")
#: What a cascade returns once it has escalated: the vote of every answer seen, or the latest stage's own answer
#: (its vote; every answer's only where the latest stage gave none).
FINAL_ANSWERS = ("vote", "last")
STOP, ESCALATE = 0, 1


@dataclass(frozen=True)
class CascadeStep:
    """One decision of a cascade.

    Attributes:
        action: ``"call"`` (call ``models``, in parallel) or ``"stop"`` (return ``answer``).
        models: the models to call now (empty when stopping).
        answer: the label returned (``""`` if no called model answered); ``answer_model``: the called model whose
            response is returned; both None when calling.
        stage: stages already done when the decision was made (0: the first stage is being chosen).
        pmf: the decision's distribution (``{model: p}`` for a chosen first model; ``{"stop": p, "escalate": 1 - p}``
            for a stop decision; ``{"stage": 1.0}`` for a fixed first stage or a forced stop).
        propensity: the probability of what was done; ``features``: the stop decision's context (None otherwise).
    """

    action: str
    models: tuple[str, ...]
    answer: str | None
    answer_model: str | None
    stage: int
    pmf: dict[str, float]
    propensity: float
    lam: float
    features: np.ndarray | None = field(default=None, repr=False)
    kind: str = "first"  # "first" | "stop-decision" | "forced-stop"


def check_stages(stages: Any, models: Sequence[str]) -> list[list[str]] | None:
    """A layout (list of non-empty lists of distinct known models) as lists of names, or None."""
    if stages is None:
        return None
    if not isinstance(stages, list | tuple) or not stages or not all(isinstance(s, list | tuple) and s for s in stages):
        raise InvalidHyperparameterError(
            f"stages must be a non-empty list of non-empty lists of models, got {stages!r}"
        )
    flat = [str(m) for s in stages for m in s]
    unknown = sorted(set(flat) - set(models))
    if unknown:
        raise InvalidHyperparameterError(f"stages name unknown model(s) {unknown}; the policy routes {list(models)}")
    if len(set(flat)) != len(flat):
        raise InvalidHyperparameterError(f"stages must name each model once, got {stages!r}")
    return [[str(m) for m in s] for s in stages]


def last_stage(stages: list[list[str]] | None, models: Sequence[str], answers: Mapping[str, str]) -> np.ndarray:
    """``(1, k)`` bool: the latest stage's models among ``answers`` (a layout: its last stage with a called model;
    without one, the model answered last, by the mapping's order)."""
    index = {m: j for j, m in enumerate(models)}
    last = np.zeros((1, len(models)), dtype=bool)
    if stages is None:
        last[0, index[list(answers)[-1]]] = True
        return last
    for s in reversed(stages):
        hit = [index[m] for m in s if m in answers]
        if hit:
            last[0, hit] = True
            return last
    last[0, [index[m] for m in answers]] = True
    return last
