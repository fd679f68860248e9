"""`mlops image build`: start the environment's CodeBuild project for the batch inference image and follow it."""

from __future__ import annotations

import time

import click

from config.naming import batch_image_build_name
from mlops_cli.errors import MlopsError
from mlops_cli.options import env_option, environment
from mlops_cli.output import console

# CodeBuild's buildStatus while a build runs; every other status is an outcome.
_RUNNING = "IN_PROGRESS"


@click.group()
def image() -> None:
    """Container images: build the batch inference image with the platform's CodeBuild project."""


def _failure(build: dict) -> str:
    """Where and why a build failed, from the first phase that did not succeed."""
    for phase in build.get("phases", []):
        if phase.get("phaseStatus") not in (None, "SUCCEEDED"):
            messages = "; ".join(c.get("message", "") for c in phase.get("contexts", []) if c.get("message"))
            return f"{phase['phaseType']} {phase['phaseStatus']}" + (f": {messages}" if messages else "")
    return ""


@image.command()
@env_option
@click.option("--wait", is_flag=True, help="Follow the build's phases until it ends; exit status 1 unless it succeeds.")
@click.option("--poll-seconds", type=float, default=10, show_default=True, hidden=True)
def build(env_name: str, wait: bool, poll_seconds: float) -> None:
    """Build the batch inference image from the configured repository and branch and push it, tagged with
    the commit, to the environment's batch inference repository."""
    env = environment(env_name)
    configured = env.config.batch_inference.image_build
    project = batch_image_build_name(env.prefix)
    if configured is None:
        raise MlopsError(
            f"environment {env.name} has no image build: config/{env.name}.yaml sets no batch_inference.image_build "
            "(connection_arn, repository, branch); add it and deploy, or push the image to the batch inference repository yourself"
        )
    client = env.client("codebuild")
    try:
        started = client.start_build(projectName=project)["build"]
    except client.exceptions.ResourceNotFoundException:
        raise MlopsError(f"the CodeBuild project {project} does not exist: is environment {env.name} deployed with its image build?") from None
    out = console()
    out.print(f"Started {started['id']} ({configured.repository}@{configured.branch})")
    if not wait:
        out.print(f"Its logs: {started.get('logs', {}).get('deepLink', 'the CodeBuild console')}")
        return
    finished = _follow(client, started["id"], poll_seconds)
    status = finished["buildStatus"]
    if status != "SUCCEEDED":
        out.print(f"{started['id']} {status}: {_failure(finished) or 'no phase reported why'}")
        click.get_current_context().exit(1)
    commit = finished.get("resolvedSourceVersion")
    pushed = f": the image is tagged {commit}" if commit else ""
    out.print(f"{started['id']} SUCCEEDED{pushed}")


def _follow(client, build_id: str, poll_seconds: float) -> dict:
    """Print each phase as the build reaches it; the build once it has ended."""
    out = console()
    shown = 0
    with out.status("Waiting for the build to finish"):
        while True:
            (current,) = client.batch_get_builds(ids=[build_id])["builds"]
            phases = [p for p in current.get("phases", []) if p.get("phaseStatus")]
            for phase in phases[shown:]:
                out.print(f"{phase['phaseType']}: {phase['phaseStatus']}")
            shown = len(phases)
            if current["buildStatus"] != _RUNNING:
                return current
            time.sleep(poll_seconds)
