"""The `mlops` command: a group per noun, each command taking --env."""

from __future__ import annotations

from pathlib import Path

import click
from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli.commands.batch import batch
from mlops_cli.commands.deploy import deploy
from mlops_cli.commands.image import image
from mlops_cli.commands.model import model
from mlops_cli.commands.outputs import outputs
from mlops_cli.commands.pipeline import pipeline
from mlops_cli.environment import DEFAULT_CONFIG_DIR
from mlops_cli.errors import MlopsError


class _Commands(click.Group):
    """Turns what AWS refuses into one plain sentence (exit status 2) instead of a traceback."""

    def invoke(self, context: click.Context):
        try:
            return super().invoke(context)
        except ClientError as error:
            details = error.response.get("Error", {})
            raise MlopsError(f"AWS refused {error.operation_name}: {details.get('Code', '')}: {details.get('Message', '')}") from None
        except BotoCoreError as error:
            raise MlopsError(f"could not reach AWS: {error}") from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CONFIG_DIR,
    envvar="MLOPS_CONFIG_DIR",
    show_default="the repository's config/",
    help="Where config/<env>.yaml files are.",
)
@click.pass_context
def cli(context: click.Context, config_dir: Path) -> None:
    """The platform's tasks, one command each. Credentials are checked against the environment's account and
    region before anything else; exit status 2 means the command could not do its work."""
    context.obj = {"config_dir": config_dir}


cli.add_command(model)
cli.add_command(deploy)
cli.add_command(batch)
cli.add_command(pipeline)
cli.add_command(outputs)
cli.add_command(image)
