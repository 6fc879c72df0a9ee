"""``python -m banditroute`` runs the ``banditroute`` command."""

from banditroute.cli import app

app()
