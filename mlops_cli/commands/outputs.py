"""`mlops outputs`: where things are — the named outputs of an environment's deployed stacks."""

from __future__ import annotations

import click
from rich.table import Table

from mlops_cli.environment import Environment
from mlops_cli.errors import MlopsError
from mlops_cli.options import env_option, environment, json_option
from mlops_cli.output import console, print_json

# CDK's cross-stack references are outputs too; they carry generated names and mean nothing to people.
_CROSS_STACK_PREFIXES = ("ExportsOutput", "PublishOutput")


def stack_outputs(env: Environment) -> list[dict[str, str]]:
    """The named outputs of the environment's stacks: those the Stage tagged with its project and
    environment, in the environment's region, by stack name."""
    pages = env.client("cloudformation").get_paginator("describe_stacks").paginate()
    wanted = {"project": env.config.project, "environment": env.name}.items()
    ours = sorted(
        (stack for page in pages for stack in page["Stacks"] if wanted <= {t["Key"]: t["Value"] for t in stack.get("Tags", [])}.items()),
        key=lambda stack: stack["StackName"],
    )
    if not ours:
        raise MlopsError(f"no stacks of {env.prefix} in {env.region}: deploy it first (make deploy ENV={env.name})")
    return [
        {"stack": stack["StackName"], "key": output["OutputKey"], "value": output["OutputValue"], "description": output.get("Description", "")}
        for stack in ours
        for output in stack.get("Outputs", [])
        if not output["OutputKey"].startswith(_CROSS_STACK_PREFIXES)
    ]


@click.command()
@env_option
@click.option("--key", metavar="KEY", help="Print only this output's value, for scripts (e.g. TrainingDataUri).")
@json_option
def outputs(env_name: str, key: str | None, as_json: bool) -> None:
    """Where things are: bucket names, the training-data upload URI, the endpoint, the state machines, the
    dashboard and Studio, from the environment's deployed stacks."""
    found = stack_outputs(environment(env_name))
    if key:
        values = [output["value"] for output in found if output["key"] == key]
        if not values:
            raise MlopsError(f"no output {key}; the outputs are: {', '.join(sorted({output['key'] for output in found}))}")
        click.echo(values[0])
        return
    if as_json:
        print_json(found)
        return
    table = Table(title=f"{env_name}: stack outputs")
    for column in ("key", "value", "stack"):
        table.add_column(column)
    for output in found:
        table.add_row(output["key"], output["value"], output["stack"])
    console().print(table)
