"""The options every command shares, declared once."""

from __future__ import annotations

from pathlib import Path

import click

from mlops_cli.environment import Environment, connect

env_option = click.option("--env", "env_name", required=True, metavar="ENV", help="The environment: its config/<ENV>.yaml names everything.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON, for scripts.")


def environment(name: str) -> Environment:
    """The environment `name` of the config directory the command was started with, credentials checked."""
    config_dir: Path = click.get_current_context().find_root().obj["config_dir"]
    return connect(name, config_dir)
