"""`mlops batch`: score a batch with the environment's workflow, follow its jobs, and list recent runs."""

from __future__ import annotations

import dataclasses
import datetime
import json
import secrets
import time

import click
from botocore.exceptions import ClientError
from rich.table import Table

from config.naming import batch_inference_name
from mlops_cli import deployer, registry
from mlops_cli.environment import Environment
from mlops_cli.errors import MlopsError
from mlops_cli.options import env_option, environment, json_option
from mlops_cli.output import console, print_json, when

# What pipeline_code/batch_inference/postprocessing.py writes next to the predictions.
SUMMARY = "summary.json"
# The history events that end an execution, and the status each stands for.
_ENDS = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED", "ExecutionTimedOut": "TIMED_OUT", "ExecutionAborted": "ABORTED"}


@click.group()
def batch() -> None:
    """Batch inference: run the workflow on a folder of files, follow it, list runs."""


def workflow_arn(env: Environment) -> str:
    return env.arn("states", f"stateMachine:{batch_inference_name(env.prefix)}")


def _s3_uri(_context: click.Context, _parameter: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.startswith("s3://"):
        raise click.BadParameter("must be an s3:// URI")
    return value


def _jobs(events: list[dict]) -> list[str]:
    """The processing jobs the execution has asked for so far, in order."""
    names = []
    for event in events:
        if event["type"] != "TaskScheduled":
            continue
        try:
            parameters = json.loads(event["taskScheduledEventDetails"].get("parameters") or "{}")
        except ValueError:
            continue
        name = parameters.get("ProcessingJobName") if isinstance(parameters, dict) else None
        if name and name not in names:
            names.append(name)
    return names


def _ended(events: list[dict]) -> tuple[str, dict] | None:
    """(status, details) once the execution has ended."""
    for event in reversed(events):
        if event["type"] in _ENDS:
            details = next((value for key, value in event.items() if key.endswith("EventDetails")), {})
            return _ENDS[event["type"]], details
    return None


def _describe_job(sagemaker, job: str) -> dict | None:
    """The job, or None while it does not exist yet: the workflow schedules the job's task before the task
    creates it. SageMaker answers a describe in between with a ValidationException ("Could not find ...");
    ResourceNotFound is taken the same way. The names come from the workflow's history, so neither means a
    malformed name."""
    try:
        return sagemaker.describe_processing_job(ProcessingJobName=job)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return None
        raise


def follow(env: Environment, execution_arn: str, poll_seconds: float) -> tuple[str, dict]:
    """Print each job's status as it changes until the execution ends; its status and end details."""
    out = console()
    sagemaker = env.client("sagemaker")
    seen: dict[str, str] = {}
    with out.status("Waiting for the batch to finish"):
        while True:
            events = deployer.history(env, execution_arn)
            for job in _jobs(events):
                described = _describe_job(sagemaker, job)
                if described is None:
                    continue
                status = described["ProcessingJobStatus"]
                if seen.get(job) != status:
                    seen[job] = status
                    reason = f": {described['FailureReason']}" if described.get("FailureReason") else ""
                    out.print(f"{job}: {status}{reason}")
            ended = _ended(events)
            if ended:
                return ended
            time.sleep(poll_seconds)


@batch.command()
@env_option
@click.option("--input", "input_uri", required=True, callback=_s3_uri, metavar="S3_URI", help="The S3 prefix of the files to score.")
@click.option("--output", "output_uri", required=True, callback=_s3_uri, metavar="S3_URI", help="Where the results go (under the output prefix the workflow allows).")
@click.option(
    "--model",
    "model_name",
    metavar="MODEL",
    default=None,
    help="Score with this model (config's models:; default: the first model the environment's config lists).",
)
@click.option("--model-version", type=int, help="Score with this version of the model's package group (default: the latest Approved).")
@click.option("--wait", is_flag=True, help="Follow each job until the run ends; exit status 1 if it fails.")
@click.option("--poll-seconds", type=float, default=15, show_default=True, hidden=True)
def run(env_name: str, input_uri: str, output_uri: str, model_name: str | None, model_version: int | None, wait: bool, poll_seconds: float) -> None:
    """Start the batch inference workflow on INPUT, writing to OUTPUT."""
    env = environment(env_name, model_name)
    given = {"input_uri": input_uri, "output_uri": output_uri}
    if model_name is not None:
        given["model"] = model_name
    if model_version is not None:
        # Without --model the workflow scores the first model the config lists.
        scored = env if model_name is not None else dataclasses.replace(env, model_name=_default_model(env))
        given["model_package_arn"] = registry.version(scored, model_version)["ModelPackageArn"]
    name = f"mlops-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    client = env.client("stepfunctions")
    try:
        started = client.start_execution(stateMachineArn=workflow_arn(env), name=name, input=json.dumps(given))
    except client.exceptions.StateMachineDoesNotExist:
        raise MlopsError(f"the batch workflow {batch_inference_name(env.prefix)} does not exist: is environment {env.name} deployed?") from None
    out = console()
    out.print(f"Started {name} ({started['executionArn']})")
    if not wait:
        out.print(f"Follow it with `mlops batch status --env {env.name}`.")
        return
    status, details = follow(env, started["executionArn"], poll_seconds)
    if status != "SUCCEEDED":
        out.print(f"{name} {status}: {details.get('error', '')} {details.get('cause', '')}".rstrip())
        click.get_current_context().exit(1)
    report = json.loads(details.get("output") or "{}")
    model = report.get("model", {})
    used = model.get("package_arn") or model.get("model_data_url") or "-"
    if report.get("model_name"):
        used = f"{report['model_name']}: {used}"
    results = report.get("output_uri", output_uri)
    out.print(f"{name} SUCCEEDED: the results are under {results} (model {used})")
    out.print(_summary(env, results))


def _default_model(env: Environment) -> str:
    """The model the workflow scores when its input names none: the first the environment's config lists."""
    return next(iter(env.config.model_units()))


def _scored(given: dict, default_model: str) -> str:
    """The model a run scores, as its input chose it: `<model>` for its latest Approved version, `<model> vN`
    for a chosen package version, or the model artifact it was given."""
    model = given.get("model") or default_model
    package = given.get("model_package_arn")
    if package:
        return f"{model} v{package.rsplit('/', 1)[1]}"
    return f"{model}: {given['model_uri']}" if given.get("model_uri") else model


def _summary(env: Environment, output_uri: str) -> str:
    """What the postprocessing step wrote to summary.json in the output, or why it cannot be shown."""
    bucket, _, prefix = output_uri.removeprefix("s3://").partition("/")
    key = f"{prefix.rstrip('/')}/{SUMMARY}" if prefix.strip("/") else SUMMARY
    try:
        summary = json.loads(env.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, ValueError) as error:
        return f"No summary: s3://{bucket}/{key} could not be read ({error})"
    return f"Summary: {summary.get('rows')} rows from {summary.get('files')} file(s), positive rate {summary.get('positive_rate')}"


@batch.command()
@env_option
@json_option
@click.option("--limit", type=int, default=10, show_default=True, help="How many of the latest runs.")
def status(env_name: str, as_json: bool, limit: int) -> None:
    """The latest runs of the batch workflow: status, start, end, model, input and output."""
    env = environment(env_name)
    client = env.client("stepfunctions")
    try:
        executions = client.list_executions(stateMachineArn=workflow_arn(env), maxResults=limit)["executions"]
    except client.exceptions.StateMachineDoesNotExist:
        raise MlopsError(f"the batch workflow {batch_inference_name(env.prefix)} does not exist: is environment {env.name} deployed?") from None
    runs = []
    default_model = _default_model(env)
    for execution in executions:
        events = deployer.history(env, execution["executionArn"])
        given = deployer.execution_input(events)
        runs.append(
            {
                "execution": execution["name"],
                "status": execution["status"],
                "started": execution["startDate"],
                "ended": execution.get("stopDate"),
                "model": _scored(given, default_model),
                "input_uri": given.get("input_uri"),
                "output_uri": given.get("output_uri"),
                "jobs": _jobs(events),
                **(deployer.failure(events) or {}),
            }
        )
    if as_json:
        print_json(runs)
        return
    out = console()
    if not runs:
        out.print(f"{batch_inference_name(env.prefix)} has not run yet.")
        return
    table = Table(title=batch_inference_name(env.prefix))
    for column in ("execution", "status", "started", "ended", "model", "input", "output", "reason"):
        table.add_column(column)
    for entry in runs:
        reason = f"{entry.get('error', '')} {entry.get('cause', '')}".strip()
        table.add_row(entry["execution"], entry["status"], when(entry["started"]), when(entry["ended"]), entry["model"], entry["input_uri"] or "", entry["output_uri"] or "", reason)
    out.print(table)
