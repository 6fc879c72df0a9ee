"""``banditroute demo``: the end-to-end run (features, warm start, the service with an embedded Redis, an A/B test
over HTTP) on the bundled records, printed as one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from banditroute.cli.common import SeedOpt
from banditroute.cli.extras import RL_MODULES, require_extra


def demo(
    out: Annotated[Path, typer.Option(help="Where the report goes.")] = Path("runs/demo"),
    records: Annotated[Path, typer.Option(help="Bundled records to run on.")] = Path("data/mmlu_pro.parquet"),
    steps: Annotated[int, typer.Option(min=1, help="Held-out queries sent through the service.")] = 1000,
    rl_steps: Annotated[int, typer.Option(min=0, help="PPO steps for the SB3 arm (0: no SB3 arm).")] = 20000,
    seed: SeedOpt = 0,
    gateway: Annotated[
        bool, typer.Option("--gateway", help="The OpenAI-compatible gateway demo instead (replay upstreams, openai).")
    ] = False,
) -> None:
    """The end-to-end demo: fit features, warm-start policies, start the service with an embedded Redis, run an A/B
    test over HTTP with simulated evaluators, and print each arm next to best single and oracle."""
    if gateway:
        from banditroute.cli.demo_gateway import demo_gateway

        demo_gateway(records, min(steps, 2000), seed)
        return
    if rl_steps > 0:
        for module in RL_MODULES:
            require_extra(module, "rl", "the demo's SB3 arm", "or pass --rl-steps 0")
    from banditroute.simulations.simulate import simulate

    typer.echo(f"banditroute demo on {records}: featurize, warm-start, serve (embedded Redis), A/B over HTTP ...")
    res = simulate("ab", records, out, seed=seed, overrides={"steps": steps, "rl_steps": rl_steps})
    _print_arms(res)
    typer.echo(f"report: {out / 'report.md'}")


def _print_arms(res: dict[str, Any]) -> None:
    arms = res["tables"]["arms (from the service's experiment report)"]
    typer.echo("")
    typer.echo(f"{'arm / reference':52s} {'quality':>8s} {'95% CI':>17s} {'USD/query':>10s} {'decisions':>9s}")
    for a in arms:
        ci = a["quality 95% CI"]
        ci_s = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"
        typer.echo(
            f"{'arm ' + a['arm']:52s} {a['quality (service)']:8.4f} {ci_s:>17s} "
            f"{a['cost USD (service)']:10.6f} {a['decisions']:9d}"
        )
    for r in res["tables"]["reference"]:
        typer.echo(f"{r['method']:52s} {r['quality']:8.4f} {'':>17s} {r['cost_usd']:10.6f}")
    typer.echo("")
    for k, v in res["checks"].items():
        typer.echo(f"check {k}: {v}")
    typer.echo(f"HTTP: {res['http']['requests']} requests in {res['http']['seconds']} s")
