"""`mlops deploy`: watch a deployment, answer its approval, and go back to an older version on purpose."""

from __future__ import annotations

import datetime
import json

import click
from rich.table import Table

from config.naming import COLOURS, data_quality_alarm_name, deployer_name, variant_alarm_names
from mlops_cli import deployer, registry
from mlops_cli.environment import Environment
from mlops_cli.errors import MlopsError
from mlops_cli.options import env_option, environment, json_option, model_option
from mlops_cli.output import console, print_json, when

# The states of the deployer's bake (mlops_constructs/canary_deployer/canary.py), the first first; a test
# checks them against the synthesized definition.
BAKE_STATES = ("Start the bake", "Check the canary's alarms", "Count bake checks", "Is the canary healthy?", "Bake")
# The input that makes the deployer release an older version: a deliberate act, never an approval event.
ROLLBACK_RELEASE = "rollback"


@click.group()
def deploy() -> None:
    """The endpoint's deployments: status, approve or deny the waiting promotion, roll back on purpose."""


def _selector(env: Environment) -> str:
    """The options that reach this model's deployer again: the environment, and the model where it has several."""
    return f"--env {env.name}" + (f" --model {env.model.name}" if len(env.config.model_units()) > 1 else "")


def _version_of(package_arn: str | None) -> int | None:
    tail = (package_arn or "").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _alarm_names(env: Environment) -> list[str]:
    names = [name for colour in COLOURS for name in variant_alarm_names(env.model.stem, colour, env.model.deployment.serving.mode)]
    if env.model.deployment.monitoring.enabled:
        names.append(data_quality_alarm_name(env.model.stem))
    return names


def _running(env: Environment) -> dict | None:
    """The running execution with its phase, input and any approval it waits for; None when idle."""
    running = deployer.executions(env, status="RUNNING", limit=1)
    if not running:
        return None
    execution = running[0]
    events = deployer.history(env, execution["executionArn"])
    entered = deployer.states_entered(events)
    given = deployer.execution_input(events)
    status = {
        "execution": execution["name"],
        "arn": execution["executionArn"],
        "started": execution["startDate"],
        "version": _version_of(given.get("ModelPackageArn")),
        "release": given.get("Release", "approval"),
        "phase": entered[-1][0] if entered else None,
        "waiting_for_approval": deployer.waiting_token(events) is not None,
    }
    bake_started = next((at for name, at in reversed(entered) if name == BAKE_STATES[0]), None)
    if bake_started is not None and status["phase"] in BAKE_STATES:
        timings = env.model.deployment
        ends = bake_started + datetime.timedelta(seconds=timings.bake_checks * timings.alarm_poll_seconds)
        status["bake_ends"] = ends
        status["bake_seconds_left"] = max(0, int((ends - datetime.datetime.now(datetime.timezone.utc)).total_seconds()))
    return status


def _last_outcome(env: Environment) -> dict | None:
    ended = [execution for execution in deployer.executions(env) if execution["status"] != "RUNNING"]
    if not ended:
        return None
    execution = ended[0]
    events = deployer.history(env, execution["executionArn"])
    return {
        "execution": execution["name"],
        "status": execution["status"],
        "version": _version_of(deployer.execution_input(events).get("ModelPackageArn")),
        "ended": execution.get("stopDate"),
        **(deployer.failure(events) or {}),
    }


@deploy.command()
@env_option
@model_option
@json_option
def status(env_name: str, model_name: str | None, as_json: bool) -> None:
    """What is serving, the running deployment's phase, the alarms it watches and the last outcome."""
    env = environment(env_name, model_name)
    alarms = env.client("cloudwatch").describe_alarms(AlarmNames=_alarm_names(env))["MetricAlarms"]
    report = {
        "environment": env.name,
        "model": env.model.name,
        "deployer": deployer_name(env.model.stem),
        "serving": registry.serving(env),
        "running": _running(env),
        "alarms": [{"name": alarm["AlarmName"], "state": alarm["StateValue"], "since": alarm.get("StateUpdatedTimestamp")} for alarm in alarms],
        "last_outcome": _last_outcome(env),
    }
    if as_json:
        print_json(report)
        return
    _print_status(env, report)


def _print_status(env: Environment, report: dict) -> None:
    out = console()
    serving = report["serving"]
    if serving is None:
        out.print(f"Nothing is serving in {env.name}: the first approved version creates the endpoint.")
    else:
        table = Table(title=f"{serving['endpoint']} ({serving['status']})")
        for column in ("variant", "weight", "instances", "version", "model"):
            table.add_column(column)
        for variant in serving["variants"]:
            # A serverless variant has no instances.
            instances = "serverless" if variant["instances"] is None else f"{variant['instances']}"
            table.add_row(variant["variant"], f"{variant['weight']}", instances, f"{variant['version'] or '-'}", variant["model"])
        out.print(table)
    running = report["running"]
    if running is None:
        out.print(f"No deployment is running ({report['deployer']}).")
    else:
        what = "rollback to" if running["release"] == ROLLBACK_RELEASE else "release of"
        out.print(f"Running: {running['execution']}, {what} version {running['version']}, since {when(running['started'])}; phase: {running['phase']}")
        if "bake_ends" in running:
            out.print(f"Bake: ends about {when(running['bake_ends'])} ({running['bake_seconds_left']} s left)")
        if running["waiting_for_approval"]:
            out.print(f"Waiting for approval: answer with `mlops deploy approve {_selector(env)}` or `mlops deploy deny {_selector(env)}`")
    table = Table(title="Alarms")
    for column in ("alarm", "state", "since"):
        table.add_column(column)
    for alarm in report["alarms"]:
        table.add_row(alarm["name"], alarm["state"], when(alarm["since"]))
    out.print(table)
    last = report["last_outcome"]
    if last:
        reason = f": {last.get('error', '')} {last.get('cause', '')}".rstrip() if last["status"] != "SUCCEEDED" else ""
        out.print(f"Last outcome: {last['execution']} (version {last['version']}) {last['status']} at {when(last['ended'])}{reason}")


def _waiting(env: Environment) -> tuple[dict, str]:
    running = deployer.executions(env, status="RUNNING")
    for execution in running:
        token = deployer.waiting_token(deployer.history(env, execution["executionArn"]))
        if token:
            return execution, token
    busy = f" (running: {', '.join(execution['name'] for execution in running)})" if running else " (no deployment is running)"
    raise MlopsError(f"nothing is waiting for approval in {deployer_name(env.model.stem)}{busy}")


@deploy.command()
@env_option
@model_option
@click.option("--note", help="Recorded in the execution as the approval's reason.")
def approve(env_name: str, model_name: str | None, note: str | None) -> None:
    """Let the deployment waiting for approval promote its canary."""
    env = environment(env_name, model_name)
    execution, token = _waiting(env)
    env.client("stepfunctions").send_task_success(taskToken=token, output=json.dumps({"approvedBy": env.caller_arn, "note": note or ""}))
    console().print(f"Approved {execution['name']}: the canary is promoted. Follow it with `mlops deploy status {_selector(env)}`.")


@deploy.command()
@env_option
@model_option
@click.option("--note", help="Why: the deployment fails with this reason.")
def deny(env_name: str, model_name: str | None, note: str | None) -> None:
    """Refuse the deployment waiting for approval: it rolls back."""
    env = environment(env_name, model_name)
    execution, token = _waiting(env)
    env.client("stepfunctions").send_task_failure(
        taskToken=token, error="ApprovalDenied", cause=note or f"denied with mlops by {env.caller_arn}"
    )
    console().print(f"Denied {execution['name']}: it rolls back. Follow it with `mlops deploy status {_selector(env)}`.")


@deploy.command()
@click.option("--to", "version", type=int, required=True, metavar="VERSION", help="The Approved version to serve again.")
@env_option
@model_option
def rollback(version: int, env_name: str, model_name: str | None) -> None:
    """Deploy an older Approved version deliberately: the one input that releases a version older than the one serving."""
    env = environment(env_name, model_name)
    package = registry.version(env, version)
    if package["ModelApprovalStatus"] != "Approved":
        raise MlopsError(f"version {version} is {package['ModelApprovalStatus']}: only an Approved version can be deployed")
    serving = registry.serving(env)
    if serving and any(variant["version"] == version for variant in serving["variants"]):
        raise MlopsError(f"version {version} is already serving on {serving['endpoint']}")
    running = deployer.executions(env, status="RUNNING", limit=1)
    if running:
        raise MlopsError(f"a deployment is running ({running[0]['name']}): wait for it to end (`mlops deploy status {_selector(env)}`)")
    name = f"rollback-to-v{version}-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%S}"
    started = env.client("stepfunctions").start_execution(
        stateMachineArn=deployer.state_machine_arn(env),
        name=name,
        input=json.dumps({"ModelPackageArn": package["ModelPackageArn"], "Release": ROLLBACK_RELEASE}),
    )
    console().print(f"Started {name}: the deployer releases version {version} ({started['executionArn']}). Follow it with `mlops deploy status {_selector(env)}`.")
