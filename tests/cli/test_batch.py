"""`mlops batch run|status` against the synthesized batch inference workflow in moto."""

from __future__ import annotations

import json

import boto3
import pytest

from mlops_cli.commands.batch import _describe_job
from mlops_cli.errors import FAILED
from tests.behaviour.batch_world import ARTIFACTS_BUCKET, GROUPS, INPUT_URI, OUTPUT_URI, REGION, batch_world


@pytest.fixture
def world(batch_template, world_mlops):
    with batch_world(batch_template) as world:
        yield world


def _run(world_mlops, *extra: str):
    return world_mlops("batch", "run", "--env", "dev", "--input", INPUT_URI, "--output", OUTPUT_URI, *extra)


def test_run_starts_the_workflow_with_the_input_and_output(world_mlops, world):
    result = _run(world_mlops)

    assert result.exit_code == 0, result.stderr
    (execution,) = world.sfn.list_executions(stateMachineArn=world.state_machine)["executions"]
    given = json.loads(world.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert given == {"input_uri": INPUT_URI, "output_uri": OUTPUT_URI}


def test_run_with_a_model_version_names_that_package(world_mlops, world):
    older, _ = world.register()
    world.register()

    _run(world_mlops, "--model-version", "1")

    (execution,) = world.sfn.list_executions(stateMachineArn=world.state_machine)["executions"]
    assert json.loads(world.sfn.describe_execution(executionArn=execution["executionArn"])["input"])["model_package_arn"] == older


def _given(world) -> dict:
    (execution,) = world.sfn.list_executions(stateMachineArn=world.state_machine)["executions"]
    return json.loads(world.sfn.describe_execution(executionArn=execution["executionArn"])["input"])


def test_run_with_a_model_names_it_and_its_version_resolves_in_its_group(world_mlops, world):
    world.register()
    churn_first, _ = world.register(group=GROUPS["churn"])

    result = _run(world_mlops, "--model", "churn", "--model-version", "1")

    assert result.exit_code == 0, result.stderr
    assert _given(world) == {"input_uri": INPUT_URI, "output_uri": OUTPUT_URI, "model": "churn", "model_package_arn": churn_first}


def test_run_with_a_model_scores_its_latest_approved_version(world_mlops, world):
    world.register()
    churn, _ = world.register(group=GROUPS["churn"])

    result = _run(world_mlops, "--model", "churn", "--wait", "--poll-seconds", "0")

    assert result.exit_code == 0, result.stderr
    assert f"(model churn: {churn})" in result.stdout


def test_run_with_an_unknown_model_is_refused_listing_the_models(world_mlops, world):
    result = _run(world_mlops, "--model", "fraud")

    assert result.exit_code == FAILED
    assert f"has no model 'fraud'; its models: {', '.join(GROUPS)}" in result.stderr
    assert world.sfn.list_executions(stateMachineArn=world.state_machine)["executions"] == []


def test_run_and_wait_shows_each_job_and_where_the_output_is(world_mlops, world):
    world.register()

    result = _run(world_mlops, "--wait", "--poll-seconds", "0")

    assert result.exit_code == 0, result.stderr
    for step in ("pre", "infer", "post"):
        assert f"-{step}: Completed" in result.stdout
    assert f"SUCCEEDED: the results are under {OUTPUT_URI}" in result.stdout


def test_run_and_wait_ends_with_the_summary_postprocessing_wrote(world_mlops, world):
    world.register()
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    key = f"{OUTPUT_URI.removeprefix(f's3://{ARTIFACTS_BUCKET}/')}/summary.json"
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=json.dumps({"rows": 569, "files": 3, "positive_rate": 0.627}))

    result = _run(world_mlops, "--wait", "--poll-seconds", "0")

    assert "Summary: 569 rows from 3 file(s), positive rate 0.627" in result.stdout


def test_run_and_wait_says_when_there_is_no_summary(world_mlops, world):
    world.register()

    result = _run(world_mlops, "--wait", "--poll-seconds", "0")

    assert f"No summary: {OUTPUT_URI}/summary.json could not be read" in result.stdout


def test_run_and_wait_fails_with_the_jobs_reason(world_mlops, world):
    world.register()
    world.shim.next_job("Failed", named=lambda name: name.endswith("-infer"), reason="predict.py: column 'age' is missing")

    result = _run(world_mlops, "--wait", "--poll-seconds", "0")

    assert result.exit_code == 1
    assert "-infer: Failed: predict.py: column 'age' is missing" in result.stdout
    assert "FAILED" in result.stdout


def test_run_with_an_unknown_model_version_is_refused(world_mlops, world):
    world.register()

    result = _run(world_mlops, "--model-version", "9")

    assert result.exit_code == FAILED
    assert "has no version 9; its versions: 1" in result.stderr


def test_run_refuses_an_input_that_is_no_s3_uri(world_mlops, world):
    result = world_mlops("batch", "run", "--env", "dev", "--input", "/data/batch", "--output", OUTPUT_URI)

    assert result.exit_code != 0
    assert "must be an s3:// URI" in result.stderr


def test_status_lists_the_runs_with_their_outcome(world_mlops, world):
    world.register()
    _run(world_mlops, "--wait", "--poll-seconds", "0")

    result = world_mlops("batch", "status", "--env", "dev", "--json")

    (run,) = json.loads(result.stdout)
    assert (run["status"], run["input_uri"], run["output_uri"], len(run["jobs"])) == ("SUCCEEDED", INPUT_URI, OUTPUT_URI, 3)


def test_status_shows_the_model_and_version_each_run_scored(world_mlops, world):
    world.register()
    _run(world_mlops)
    _run(world_mlops, "--model-version", "1")
    _run(world_mlops, "--model", "churn")

    result = world_mlops("batch", "status", "--env", "dev", "--json")

    assert sorted(run["model"] for run in json.loads(result.stdout)) == ["churn", "tabular", "tabular v1"]


def test_status_table_has_a_model_column(world_mlops, world):
    world.register()
    _run(world_mlops, "--model", "churn")

    result = world_mlops("batch", "status", "--env", "dev")

    assert result.exit_code == 0, result.stderr
    assert "model" in result.stdout
    assert "churn" in result.stdout


def test_a_job_scheduled_but_not_yet_created_is_waited_for_not_reported_as_an_error(world):
    """Between the workflow scheduling a job's task and the task creating the job, SageMaker does not know it."""
    assert _describe_job(boto3.client("sagemaker", region_name=REGION), "mlops-dev-0123456789abcdef-post") is None
