"""Budget pacing: adapt lambda online so that the realised mean cost per query tracks a target.

Dual (Lagrangian) ascent on the constraint ``mean cost = target``: after each observed cost,
``dual <- clip(dual + lr * (cost - target) / target, -lam_max, lam_max)`` and decisions use
``lam = max(dual, 0)``. Spending above target raises the price of a dollar, spending below lowers it.

The dual is not clipped at 0: underspending builds a credit (a negative dual) that later traffic may spend at
lambda 0. Clipping it at 0 would throw that credit away, and whenever the lambda-0 choice is cheaper than the
target the realised mean would then sit persistently below it. The credit (and the debt) is bounded by lam_max.
Over T observations the mean relative deviation from the target is ``(dual_T - dual_0) / (lr T)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from banditroute.bandit.base import Decision, Policy
from banditroute.bandit.checks import check_scalar


class BudgetPacer:
    """Wraps ``policy`` and chooses lambda itself.

    Args:
        policy: the policy to pace.
        target_cost: USD per query to aim at, > 0.
        lr: step size of the dual update, > 0.
        lam0: starting dual value, in [-lam_max, lam_max] (a saved pacer resumes from its ``dual``).
        lam_max: ceiling of lambda and bound of the dual, > 0.
    """

    def __init__(
        self, policy: Policy, target_cost: float, *, lr: float = 0.05, lam0: float = 0.0, lam_max: float = 100.0
    ) -> None:
        self.policy = policy
        self.target_cost = check_scalar(target_cost, "target_cost", low=0.0, low_inclusive=False)
        self.lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        self.lam_max = check_scalar(lam_max, "lam_max", low=0.0, low_inclusive=False)
        self.dual = check_scalar(lam0, "lam0", low=-self.lam_max, high=self.lam_max)
        self.spent = 0.0
        self.n_costs = 0

    @classmethod
    def resume(
        cls, policy: Policy, target_cost: float, dual: float, *, lr: float = 0.05, lam_max: float = 100.0
    ) -> BudgetPacer:
        """A pacer continuing from a saved ``dual`` (the service stores it beside the policy's state).

        A saved dual outside ``[-lam_max, lam_max]`` (it was saved under another bound) is clipped into it;
        a non-finite one is refused.
        """
        bound = check_scalar(lam_max, "lam_max", low=0.0, low_inclusive=False)
        saved = check_scalar(dual, "dual")
        return cls(policy, target_cost, lr=lr, lam0=min(max(saved, -bound), bound), lam_max=bound)

    @property
    def lam(self) -> float:
        """The lambda decisions use: the dual, floored at 0."""
        return max(self.dual, 0.0)

    @property
    def mean_cost(self) -> float:
        return self.spent / self.n_costs if self.n_costs else 0.0

    def select(self, x: Any, candidates: Sequence[str] | None = None) -> Decision:
        """Decide at the pacer's current lambda."""
        return self.policy.select(x, candidates=candidates, lam=self.lam)

    def observe_cost(self, cost: float) -> float:
        """Account one realised cost; return the new lambda."""
        c = check_scalar(cost, "cost", low=0.0)
        self.spent += c
        self.n_costs += 1
        step = self.lr * (c - self.target_cost) / self.target_cost
        self.dual = min(max(self.dual + step, -self.lam_max), self.lam_max)
        return self.lam

    def update(self, x: Any, model: str, quality: float, cost: float, weight: float = 1.0) -> None:
        """Update the wrapped policy and the pacer's lambda with one observation."""
        self.policy.update(x, model, quality, cost, weight)
        self.observe_cost(cost)

    def state(self) -> dict[str, float | int]:
        return {
            "lam": self.lam,
            "spent": self.spent,
            "n_costs": self.n_costs,
            "target_cost": self.target_cost,
            "lr": self.lr,
            "lam_max": self.lam_max,
        }
