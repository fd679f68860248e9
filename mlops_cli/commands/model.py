"""`mlops model`: the reviewer's commands on a model's package group."""

from __future__ import annotations

import click
from rich.table import Table

from mlops_cli import registry
from mlops_cli.options import env_option, environment, json_option, model_option
from mlops_cli.output import console, print_json, when


@click.group()
def model() -> None:
    """Review the model versions the pipelines registered: list, approve, reject."""


@model.command("list")
@env_option
@model_option
@json_option
def list_versions(env_name: str, model_name: str | None, as_json: bool) -> None:
    """Every version of the model's package group, newest first, and which one serves."""
    env = environment(env_name, model_name)
    packages = registry.versions(env)
    endpoint = registry.serving(env)
    serving = {variant["version"]: variant["variant"] for variant in (endpoint or {}).get("variants", [])}
    rows = [
        {
            "version": package["ModelPackageVersion"],
            "status": package["ModelApprovalStatus"],
            "created": package.get("CreationTime"),
            "description": package.get("ModelPackageDescription", ""),
            "serving": serving.get(package["ModelPackageVersion"]),
            "arn": package["ModelPackageArn"],
        }
        for package in packages
    ]
    if as_json:
        print_json({"model": env.model.name, "group": registry.group_name(env), "versions": rows})
        return
    out = console()
    if not rows:
        out.print(f"{registry.group_name(env)} has no versions yet: a pipeline run registers one.")
        return
    table = Table(title=registry.group_name(env))
    for column in ("version", "status", "created", "serving", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["version"]), row["status"], when(row["created"]), row["serving"] or "", row["description"])
    out.print(table)


def _review(env_name: str, model_name: str | None, number: int, status: str, note: str | None) -> None:
    env = environment(env_name, model_name)
    package = registry.version(env, number)
    description = note or f"{status} with mlops by {env.caller_arn}"
    env.client("sagemaker").update_model_package(
        ModelPackageArn=package["ModelPackageArn"], ModelApprovalStatus=status, ApprovalDescription=description
    )
    console().print(f"Version {number} of {registry.group_name(env)}: {package['ModelApprovalStatus']} -> {status} ({description})")


@model.command()
@click.argument("version", type=int)
@env_option
@model_option
@click.option("--note", help="Why: recorded as the version's approval description.")
def approve(version: int, env_name: str, model_name: str | None, note: str | None) -> None:
    """Approve VERSION. A version newer than the one serving then starts a deployment."""
    _review(env_name, model_name, version, "Approved", note)


@model.command()
@click.argument("version", type=int)
@env_option
@model_option
@click.option("--note", help="Why: recorded as the version's approval description.")
def reject(version: int, env_name: str, model_name: str | None, note: str | None) -> None:
    """Reject VERSION: it is never deployed."""
    _review(env_name, model_name, version, "Rejected", note)
