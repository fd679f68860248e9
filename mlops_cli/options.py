"""The options every command shares, declared once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from mlops_cli.environment import Environment, connect, load_config, select_model

env_option = click.option("--env", "env_name", required=True, metavar="ENV", help="The environment: its config/<ENV>.yaml names everything.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON, for scripts.")
model_option = click.option(
    "--model", "model_name", metavar="MODEL", default=None, help="The model (config's models:); may be left out where the environment has one."
)


def environment(name: str, model_name: str | None = None) -> Environment:
    """The environment `name` of the config directory the command was started with, credentials checked;
    about model `model_name` (a name checked before the credentials), or its only model."""
    config_dir: Path = click.get_current_context().find_root().obj["config_dir"]
    if model_name is not None:
        select_model(load_config(name, config_dir), model_name)
    return dataclasses.replace(connect(name, config_dir), model_name=model_name)
