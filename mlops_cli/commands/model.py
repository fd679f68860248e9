"""`mlops model`: the reviewer's commands on a model's package group."""

from __future__ import annotations

import click
from rich.table import Table

from mlops_cli import promotion, registry
from mlops_cli.options import env_option, environment, json_option, model_option
from mlops_cli.output import console, print_json, when


@click.group()
def model() -> None:
    """Review the model versions the pipelines registered: list, approve, reject; promote one between environments."""


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


@model.command()
@click.argument("version", type=int)
@click.option("--from", "source", required=True, metavar="ENV", help="The environment the version is Approved in (e.g. staging).")
@click.option("--to", "target", required=True, metavar="ENV", help="The environment to promote it into (e.g. prod); the credentials are this one's.")
@click.option("--model", "model_name", metavar="NAME", help="Which model, where the target environment promotes several.")
@json_option
def promote(version: int, source: str, target: str, model_name: str | None, as_json: bool) -> None:
    """Copy VERSION, Approved in --from (and released there, where --from serves the model), into --to: its
    artifact into --to's bucket, registered in --to's group for review. With credentials for --to's account."""
    promotion.check_environments(source, target)
    env = environment(target)
    out = console()
    with out.status(f"Promoting version {version} from {source} into {target}: checking it, copying its artifacts, registering it"):
        answer = promotion.promote(env, source, version, model_name)
    if as_json:
        print_json(answer)
        return
    landed = f"version {answer['targetVersion']} of {answer['targetGroup']} in {target}"
    if answer.get("alreadyPromoted"):
        out.print(f"Version {version} of {answer['model']} in {source} was promoted before: it is {landed} ({answer['approvalStatus']}).")
    else:
        out.print(f"Version {version} of {answer['model']} in {source} is now {landed}, {answer['approvalStatus']}.")
    for url in answer.get("modelDataUrls", []):
        out.print(f"Artifact: {url}")
    if answer.get("approvalStatus") == "PendingManualApproval":
        which = f" --model {answer['model']}" if len(env.config.model_units()) > 1 else ""
        out.print(
            f"Next: a reviewer in {target} approves it, and {target}'s deployer releases it: "
            f"mlops model approve {answer['targetVersion']} --env {target}{which}"
        )
