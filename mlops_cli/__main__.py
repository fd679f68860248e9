"""`python -m mlops_cli`: the same as the `mlops` console script."""

from mlops_cli.main import cli

cli()
