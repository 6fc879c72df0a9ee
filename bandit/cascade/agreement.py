"""The fixed agreement rule as a cascade policy (FrugalGPT's simplest scorer: agreement between answers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from banditroute.bandit.cascade.policy import Cascade
from banditroute.bandit.cascade.vote import UNANIMOUS


class AgreementCascade(Cascade):
    """The fixed rule: stop when every model of the stage answered and all agree, else escalate; after an
    escalation the latest stage's answer is returned (``final_answer="last"``: the vote of the other models only
    if it gave none).
    Nothing of the stop decision is learned (the query-level regressions still are: they break ties)."""

    name = "cascade-agreement"
    learn_stop = False

    def __init__(self, models: Sequence[str], dim: int, *, final_answer: str = "last", **kwargs: Any) -> None:
        super().__init__(models, dim, final_answer=final_answer, **kwargs)

    def stop_pmf(self, Phi: np.ndarray, next_cost: np.ndarray, can_escalate: np.ndarray, lam: float) -> np.ndarray:
        unanimous = Phi[:, UNANIMOUS] > 0.5
        esc = can_escalate & ~unanimous
        return np.column_stack([~esc, esc]).astype(float)
