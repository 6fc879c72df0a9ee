"""``banditroute ope``: off-policy estimates (IPS, SNIPS, DR with bootstrap intervals) of a candidate policy on
logged decisions, read from a JSONL file or from the service's Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from banditroute.cli.common import SeedOpt, check_choice, redis_store
from banditroute.cli.errors import UserError, redact

if TYPE_CHECKING:
    from banditroute.simulations.ope import Logged

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
SOURCES = ("user", "evaluator")


def _load(decisions: str, policy_id: str | None, models: tuple[str, ...], source: str) -> Logged:
    """The logged decisions, from Redis (``policy_id`` required) or a JSONL file."""
    import asyncio

    from banditroute.simulations.ope import load_jsonl, load_redis

    if decisions.startswith(REDIS_SCHEMES):
        if not policy_id:
            raise UserError("--decisions is a Redis URL but no policy is named", "give --policy-id")
        try:
            with redis_store(decisions, "--decisions"):  # maps an unreachable Redis; load_redis opens its own client
                return asyncio.run(load_redis(decisions, policy_id, models, source))
        except ValueError as exc:  # Logged refuses what was read: nothing scored, or bad propensities
            raise UserError(
                f"decisions of policy {policy_id!r} with a {source!r} score in the Redis at {redact(decisions)}: {exc}",
                "check --policy-id and --source (only scored decisions within retention count)",
            ) from exc
    try:
        return load_jsonl(decisions, models)
    except ValueError as exc:  # a malformed line (named), or rows Logged refuses (none, bad propensities)
        raise UserError(f"{decisions}: {exc}" if decisions not in str(exc) else str(exc), _JSONL_FIX) from exc


_JSONL_FIX = 'write one JSON object per line: {"x": [...], "model": ..., "propensity": (0, 1], "reward": ...}'


def ope(
    decisions: Annotated[str, typer.Option(help="Logged decisions: a JSONL file, or a Redis URL (with --policy-id).")],
    policy: Annotated[Path, typer.Option(help="The candidate policy: an exported artifact (.zip or directory).")],
    policy_id: Annotated[str | None, typer.Option(help="With a Redis URL: the policy whose decisions to read.")] = None,
    source: Annotated[str, typer.Option(help="With a Redis URL: whose scores are the reward (user|evaluator).")] = (
        "evaluator"
    ),
    lam: Annotated[float, typer.Option(help="Lambda the candidate decides with.")] = 0.0,
    bootstrap: Annotated[int, typer.Option(min=1, help="Bootstrap resamples for the intervals.")] = 1000,
    seed: SeedOpt = 0,
    out: Annotated[Path | None, typer.Option(help="Write the estimates as JSON here.")] = None,
) -> None:
    """Estimate what a candidate policy would have scored on logged decisions (IPS, SNIPS, DR, 95% intervals)."""
    check_choice(source, SOURCES, "--source")
    from banditroute.bandit import import_artifact
    from banditroute.simulations.ope import estimate

    cand = import_artifact(policy).policy
    logged = _load(decisions, policy_id, cand.models, source)
    if logged.X.shape[1] != cand.dim:
        raise UserError(
            f"the logged contexts have dim {logged.X.shape[1]}, the candidate takes {cand.dim}",
            "evaluate a candidate built on the same features as the logging policy",
        )
    result = estimate(logged, cand.pmf_batch(logged.X, lam), n_boot=bootstrap, seed=seed)
    typer.echo(
        f"{result['n']} logged decisions, logged mean reward {result['logged_mean_reward']:.4f}, "
        f"ESS {result['ess']:.1f}"
    )
    for key in ("ips", "snips", "dr"):
        lo, hi = result[key]["ci95"]
        typer.echo(f"  {key:5s} {result[key]['value']:.4f}  95% CI [{lo:.4f}, {hi:.4f}]")
    if out:
        out.write_text(json.dumps(result, indent=2))
