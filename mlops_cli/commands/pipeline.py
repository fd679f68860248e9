"""`mlops pipeline`: the environment's SageMaker pipelines (one per pipeline_code/ folder), their runs."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError
from rich.table import Table

from config.naming import DRAFT_ENVIRONMENTS, EXPERIMENT_NAME_MAX_LENGTH, PipelineFolderError, draft_pipeline_name, draft_user, pipeline_name
from mlops_cli import definitions
from mlops_cli.environment import Environment
from mlops_cli.errors import MlopsError
from mlops_cli.options import env_option, environment, json_option
from mlops_cli.output import console, print_json, when
from pipeline_code import render
from pipeline_code.render import pipeline_names
from pipeline_code.settings import ARTIFACTS_PREFIX

# A run has ended in one of these (SageMaker's PipelineExecutionStatus).
ENDED = ("Succeeded", "Failed", "Stopped")
# The processing output the evaluation step writes its report to, and the report's file.
EVALUATION_OUTPUT = "evaluation"
EVALUATION_REPORT = "evaluation.json"
# Where SageMaker describes the Studio space a terminal runs in, its user profile included.
STUDIO_METADATA = Path("/opt/ml/metadata/resource-metadata.json")
# The tag a draft pipeline carries: the deployed pipeline it is a draft of.
DRAFT_TAG = "mlops:draft-of"


@click.group()
def pipeline() -> None:
    """The SageMaker pipelines of pipeline_code/: list them with their last run, compare with the working tree, run one."""


def _pipeline(env: Environment, folder: str) -> str:
    folders = pipeline_names()
    if folder not in folders:
        raise MlopsError(f"unknown pipeline '{folder}'; the pipelines (folders of pipeline_code/): {', '.join(folders) or 'none'}")
    owner = env.config.pipeline_model(folder)
    if owner is not None and not owner.trained_here:
        raise MlopsError(
            f"model {owner.name} in {env.name} is promoted from {owner.promote_from}, not trained here, so pipeline {folder} is not deployed "
            f"in {env.name}; run it in {owner.promote_from}, or set source: both for models.{owner.name} in config/{env.name}.yaml"
        )
    return pipeline_name(env.prefix, folder)


def _last_run(sagemaker: Any, name: str) -> dict | None:
    """The pipeline's newest run; None if it never ran."""
    runs = sagemaker.list_pipeline_executions(PipelineName=name, SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
    summaries = runs.get("PipelineExecutionSummaries", [])
    return summaries[0] if summaries else None


@pipeline.command("list")
@env_option
@json_option
def list_pipelines(env_name: str, as_json: bool) -> None:
    """Each pipeline of pipeline_code/ the environment deploys (none of a model it only promotes), with its last run."""
    env = environment(env_name)
    sagemaker = env.client("sagemaker")
    rows = []
    for folder in env.config.deployed_pipelines():
        name = pipeline_name(env.prefix, folder)
        row: dict[str, Any] = {"folder": folder, "pipeline": name, "deployed": True, "last_run": None}
        try:
            sagemaker.describe_pipeline(PipelineName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("ResourceNotFound", "ValidationException"):
                raise
            row["deployed"] = False
        if row["deployed"]:
            last = _last_run(sagemaker, name)
            if last:
                row["last_run"] = {
                    "arn": last["PipelineExecutionArn"],
                    "status": last.get("PipelineExecutionStatus"),
                    "started": last.get("StartTime"),
                    "failure": last.get("PipelineExecutionFailureReason"),
                }
        rows.append(row)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Pipelines of {env.name}")
    for column in ("pipeline", "last run", "started", "reason"):
        table.add_column(column)
    for row in rows:
        last = row["last_run"]
        if not row["deployed"]:
            table.add_row(row["pipeline"], "not deployed", "", "")
        elif last is None:
            table.add_row(row["pipeline"], "never ran", "", "")
        else:
            table.add_row(row["pipeline"], last["status"] or "", when(last["started"]), last["failure"] or "")
    console().print(table)


def _parameters(given: tuple[str, ...], definition: dict) -> list[dict[str, str]]:
    """--param K=V pairs as SageMaker's PipelineParameters, each a parameter the definition declares."""
    declared = [parameter["Name"] for parameter in definition.get("Parameters", [])]
    parameters = []
    for pair in given:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise MlopsError(f"--param {pair}: write it as NAME=VALUE")
        if key not in declared:
            raise MlopsError(f"--param {key}: the pipeline has no such parameter; its parameters: {', '.join(declared) or 'none'}")
        parameters.append({"Name": key, "Value": value})
    return parameters


def _steps(sagemaker: Any, execution_arn: str) -> list[dict]:
    pages = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=execution_arn, SortOrder="Ascending")
    return [step for page in pages for step in page["PipelineExecutionSteps"]]


def _metrics(env: Environment, steps: list[dict]) -> dict | None:
    """The evaluation report of the run: the report a processing step wrote to its `evaluation` output."""
    sagemaker, s3 = env.client("sagemaker"), env.client("s3")
    for step in steps:
        job = step.get("Metadata", {}).get("ProcessingJob", {}).get("Arn")
        if not job:
            continue
        outputs = sagemaker.describe_processing_job(ProcessingJobName=job.rsplit("/", 1)[-1]).get("ProcessingOutputConfig", {}).get("Outputs", [])
        for output in outputs:
            if output.get("OutputName") != EVALUATION_OUTPUT:
                continue
            bucket, _, prefix = output["S3Output"]["S3Uri"].removeprefix("s3://").partition("/")
            key = f"{prefix.rstrip('/')}/{EVALUATION_REPORT}" if prefix else EVALUATION_REPORT
            try:
                return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            except (ClientError, ValueError) as error:
                return {"unreadable": f"s3://{bucket}/{key}: {error}"}
    return None


def _follow(env: Environment, execution_arn: str, poll_seconds: float) -> dict:
    """Print each step's status as it changes until the run ends; the run's description."""
    sagemaker = env.client("sagemaker")
    out = console()
    seen: dict[str, str] = {}
    with out.status("Waiting for the run to finish"):
        while True:
            described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
            steps = _steps(sagemaker, execution_arn)
            for step in steps:
                status = step.get("StepStatus", "")
                if seen.get(step["StepName"]) != status:
                    seen[step["StepName"]] = status
                    reason = f": {step['FailureReason']}" if step.get("FailureReason") else ""
                    out.print(f"{step['StepName']}: {status}{reason}")
            if described["PipelineExecutionStatus"] in ENDED:
                described["steps"] = steps
                return described
            time.sleep(poll_seconds)


def _working_tree(env: Environment, name: str, live: dict) -> dict:
    """pipeline_code/`name` as the stack renders it for `env`, compared with `live`."""
    try:
        return definitions.render_working_tree(env, name, live)
    except ImportError as error:
        raise MlopsError(f"rendering pipeline_code/{name} needs the SageMaker SDK v3 of requirements-sdk.txt ({error})") from None


def _live_definition(env: Environment, deployed: str) -> dict:
    try:
        return json.loads(env.client("sagemaker").describe_pipeline(PipelineName=deployed)["PipelineDefinition"])
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("ResourceNotFound", "ValidationException"):
            raise
        raise MlopsError(f"pipeline {deployed} is not deployed in {env.name}: deploy the model-build stack first") from None


@pipeline.command()
@click.argument("name")
@env_option
@json_option
def diff(name: str, env_name: str, as_json: bool) -> None:
    """Compare the live pipeline NAME with what the working tree renders, step by step.

    Deploy-time values (role, buckets, key, subnets, script locations) are normalised, so only real edits
    show. Exit status 1 when they differ.
    """
    env = environment(env_name)
    deployed = _pipeline(env, name)
    live = _live_definition(env, deployed)
    found = definitions.difference(_working_tree(env, name, live), live)
    scripts, unreadable = definitions.changed_scripts(env, name, found.values)
    if as_json:
        print_json(
            {
                "pipeline": deployed,
                "only_working_tree": found.only_local,
                "only_live": found.only_live,
                "changed": [
                    {"path": path, "working_tree": definitions.shown(before), "live": definitions.shown(after)} for path, before, after in found.changed
                ],
                "scripts_changed": scripts,
                "scripts_unreadable": unreadable,
            }
        )
    else:
        out = console()
        out.print(f"pipeline_code/{name} (working tree) -> {deployed} (live in {env.name})")
        for step in found.only_local:
            out.print(f"- step {step}: only in the working tree")
        for step in found.only_live:
            out.print(f"+ step {step}: only live")
        for path, before, after in found.changed:
            out.print(f"{path}: {definitions.shown(before)} -> {definitions.shown(after)}")
        for script in scripts:
            out.print(f"script {script}: the live copy differs from the working tree's")
        for script in unreadable:
            out.print(f"script {script}: could not be read to compare")
        if not (found or scripts):
            out.print("No differences.")
    if found or scripts:
        click.get_current_context().exit(1)


@pipeline.command()
@click.argument("name")
@env_option
@click.option("--replace-code", is_flag=True, help="The folder has a pipeline.py: replace it with the live definition.")
def pull(name: str, env_name: str, replace_code: bool) -> None:
    """Write the live pipeline NAME into pipeline_code/NAME/definition.json, the environment's values turned
    back into placeholders, so the usual deploy takes it to every environment."""
    env = environment(env_name)
    deployed = _pipeline(env, name)
    folder = render.PACKAGE_DIR / name
    code = folder / "pipeline.py"
    if code.exists() and not replace_code:
        raise MlopsError(
            f"pipeline_code/{name}/ is defined in code (pipeline.py): port the change `mlops pipeline diff {name} --env {env.name}` "
            "shows into it, or pull with --replace-code to keep the pipeline as JSON from now on"
        )
    live = _live_definition(env, deployed)
    found = definitions.difference(_working_tree(env, name, live), live)
    had_code = code.exists()
    (folder / render.DEFINITION_FILE).write_text(json.dumps(definitions.generalised(env, name, live, found.values), indent=2) + "\n")
    if had_code:
        code.unlink()
    console().print(
        f"Wrote pipeline_code/{name}/{render.DEFINITION_FILE} from {deployed}"
        + (" (pipeline.py removed)" if had_code else "")
        + ": review it with git diff, then run make test and deploy."
    )


@pipeline.command()
@click.argument("name")
@click.option("--from-live", "live_name", required=True, metavar="LIVE_NAME", help="The pipeline made in Studio to start from.")
@env_option
def new(name: str, live_name: str, env_name: str) -> None:
    """Start pipeline_code/NAME/ from the pipeline LIVE_NAME someone designed in Studio: its definition.json
    with the environment's values as placeholders, and the scripts it runs."""
    env = environment(env_name)
    try:
        pipeline_name(env.prefix, name)
    except PipelineFolderError as error:
        raise MlopsError(str(error)) from None
    folder = render.PACKAGE_DIR / name
    if folder.exists():
        raise MlopsError(f"pipeline_code/{name}/ exists already: pick another name, or `mlops pipeline pull {name}` to update it")
    live = _live_definition(env, live_name)
    deployed = {}
    for existing in pipeline_names():
        try:
            deployed[existing] = _live_definition(env, pipeline_name(env.prefix, existing))
        except MlopsError:
            continue
    values = definitions.learnt_values(env, deployed)
    folder.mkdir(parents=True)
    try:
        code = definitions.fetch_code(env, live, folder)
    except (LookupError, ClientError) as error:
        shutil.rmtree(folder)
        raise MlopsError(f"could not bring home the code of {live_name}: {error}") from None
    (folder / render.DEFINITION_FILE).write_text(json.dumps(definitions.generalised(env, name, live, values, live_name=live_name, code=code), indent=2) + "\n")
    scripts = sorted(path.name for path in render.step_scripts(name))
    console().print(
        f"Wrote pipeline_code/{name}/ from {live_name}: {render.DEFINITION_FILE} and {', '.join(scripts) or 'no scripts'}. "
        f"It deploys as {pipeline_name(env.prefix, name)}; {_claim_hint(env, name)}add tests for its scripts, run make test, then deploy."
    )


def _claim_hint(env: Environment, folder: str) -> str:
    """What to add to the config so that a new folder belongs to a model: nothing where config has no models."""
    if env.config.models is None:
        return ""
    return f"add {folder} to one model's pipelines under models: in every config/<env>.yaml (its models: {', '.join(env.config.model_units())}), "


def _studio_user() -> str | None:
    """The Studio user profile of the space this runs in, from the metadata file SageMaker puts there."""
    try:
        return json.loads(STUDIO_METADATA.read_text()).get("UserProfileName") or None
    except (OSError, ValueError):
        return None


def _upsert_draft(env: Environment, folder: str, deployed: str, live: dict) -> str:
    """Create or update the caller's draft of `folder` from the working tree; its name.

    The deploy-time values (role, buckets, key, subnets) are the deployed pipeline's; the step scripts are
    uploaded under the draft's own prefix of the artifacts bucket."""
    user = draft_user(_studio_user() or env.caller_arn)
    draft = draft_pipeline_name(env.prefix, user, folder)
    if len(draft) > EXPERIMENT_NAME_MAX_LENGTH:
        raise MlopsError(f"the draft name {draft} is longer than SageMaker's {EXPERIMENT_NAME_MAX_LENGTH} characters; shorten the folder name")
    definition, values = definitions.render_draft(env, folder, draft, live)
    bucket = values.get("ArtifactsBucket")
    if bucket is None or "PipelineRoleName" not in values:
        raise MlopsError(f"could not tell the artifacts bucket and the pipeline role from the deployed {deployed}; run `mlops pipeline diff {folder} --env {env.name}`")
    s3 = env.client("s3")
    for name, body in definitions.script_bodies(folder).items():
        key = f"{ARTIFACTS_PREFIX}{draft}/code/{hashlib.sha256(body).hexdigest()[:16]}/{name}"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        values[definitions.SCRIPT + name] = key
    values[definitions.SCRIPTS_BUCKET] = bucket
    try:
        text = definitions.fill_in(definition, values)
    except LookupError as missing:
        raise MlopsError(f"the deployed {deployed} gives no value for {missing}: deploy the model-build stack, then try again") from None
    sagemaker = env.client("sagemaker")
    request = {
        "PipelineName": draft,
        "PipelineDefinition": text,
        "RoleArn": f"arn:{env.partition}:iam::{env.account}:role/{values['PipelineRoleName']}",
        "PipelineDescription": f"Draft of pipeline_code/{folder} by {user}, made with mlops",
    }
    try:
        sagemaker.describe_pipeline(PipelineName=draft)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("ResourceNotFound", "ValidationException"):
            raise
        sagemaker.create_pipeline(**request, Tags=[{"Key": DRAFT_TAG, "Value": deployed}])
    else:
        sagemaker.update_pipeline(**request)
    console().print(f"Draft {draft} holds the working tree's pipeline_code/{folder}.")
    return draft


@pipeline.command()
@click.argument("name")
@env_option
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A pipeline parameter; repeat for several.")
@click.option("--wait", is_flag=True, help="Follow each step until the run ends; exit status 1 unless it succeeds.")
@click.option("--draft", is_flag=True, help="Run the working tree as your own draft pipeline (dev only), without a deploy.")
@click.option("--poll-seconds", type=float, default=15, show_default=True, hidden=True)
def run(name: str, env_name: str, params: tuple[str, ...], wait: bool, draft: bool, poll_seconds: float) -> None:
    """Start the deployed pipeline NAME (a folder of pipeline_code/), or with --draft the working tree's."""
    env = environment(env_name)
    sagemaker = env.client("sagemaker")
    deployed = _pipeline(env, name)
    if draft and env.name not in DRAFT_ENVIRONMENTS:
        raise MlopsError(
            f"draft pipelines exist in {', '.join(DRAFT_ENVIRONMENTS)} only: run the deployed pipeline in {env.name}, or deploy the change"
        )
    definition = _live_definition(env, deployed)
    target = _upsert_draft(env, name, deployed, definition) if draft else deployed
    if draft:
        definition = json.loads(sagemaker.describe_pipeline(PipelineName=target)["PipelineDefinition"])
    started = sagemaker.start_pipeline_execution(
        PipelineName=target,
        PipelineParameters=_parameters(params, definition),
        PipelineExecutionDescription=f"Started with mlops by {env.caller_arn}",
    )["PipelineExecutionArn"]
    out = console()
    out.print(f"Started {started}")
    if not wait:
        out.print(f"Follow it with `mlops pipeline list --env {env.name}`.")
        return
    ended = _follow(env, started, poll_seconds)
    metrics = _metrics(env, ended["steps"])
    if metrics is not None:
        out.print(f"Evaluation report: {json.dumps(metrics, sort_keys=True)}")
    reason = f": {ended['FailureReason']}" if ended.get("FailureReason") else ""
    out.print(f"Run {ended['PipelineExecutionStatus']}{reason}")
    if ended["PipelineExecutionStatus"] != "Succeeded":
        click.get_current_context().exit(1)
