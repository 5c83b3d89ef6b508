"""`python -m shiori.cli`: the `shiori` command."""

from shiori.cli import app

app()
