"""The ``banditroute`` command: the root Typer app, and the one place where every command group is registered.

Each command lives in its own module and imports its machinery inside the function, so ``banditroute --help``
stays fast and a core install (no extras) can serve and move policies. Every command runs inside
:class:`~banditroute.cli.errors.ErrorMappingGroup`: a user's mistake is one line on stderr and exit code 2.

| command | module |
|---|---|
| ``serve`` | :mod:`banditroute.cli.serve` |
| ``policy export``, ``policy import`` | :mod:`banditroute.cli.policy` |
| ``evaluate``, ``fit`` | :mod:`banditroute.cli.evaluate` |
| ``train-rl`` | :mod:`banditroute.cli.train_rl` |
| ``simulate`` | :mod:`banditroute.cli.simulate` |
| ``ope`` | :mod:`banditroute.cli.ope` |
| ``demo`` | :mod:`banditroute.cli.demo` |
"""

from __future__ import annotations

import typer

from banditroute.cli import demo, evaluate, ope, serve, simulate, train_rl
from banditroute.cli.errors import ErrorMappingGroup
from banditroute.cli.policy import policy_app

app = typer.Typer(
    cls=ErrorMappingGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a bug's traceback stays a plain one; user mistakes never get here
    help="banditroute: an LLM router that learns.",
)


@app.callback()
def main() -> None:
    """banditroute: an LLM router that learns."""


app.command("serve")(serve.serve)
app.add_typer(policy_app, name="policy")
app.command("evaluate")(evaluate.evaluate)
app.command("fit")(evaluate.fit)
app.command("train-rl")(train_rl.train_rl)
app.command("simulate")(simulate.simulate)
app.command("ope")(ope.ope)
app.command("demo")(demo.demo)

if __name__ == "__main__":  # pragma: no cover
    app()
