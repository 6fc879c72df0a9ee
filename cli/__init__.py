"""The ``banditroute`` command: one module per command group, registered in :mod:`banditroute.cli.app`."""

from banditroute.cli.app import app

__all__ = ["app"]
