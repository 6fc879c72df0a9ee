"""banditroute: an LLM router that learns.

The import package's subpackages live in the repository's top-level folders (setuptools' ``package-dir``
mapping): :mod:`banditroute.bandit` (policies, pure numpy), :mod:`banditroute.env` (records, costs, features,
Gymnasium environments), :mod:`banditroute.service` (the FastAPI service), :mod:`banditroute.simulations`
(evaluation, simulations, off-policy evaluation, RL) and :mod:`banditroute.cli` (the ``banditroute`` command).
:mod:`banditroute.testing` holds test support (servers on free loopback ports), not product code.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("banditroute")
except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
