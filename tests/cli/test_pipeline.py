"""`mlops pipeline list|run` against moto's SageMaker pipelines, with the suite's shims for what moto lacks
(ListPipelineExecutionSteps, how runs end)."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path
from unittest import mock

import boto3
import pytest
import yaml
from moto.sagemaker.models import SageMakerModelBackend

from config.naming import pipeline_name
from mlops_cli.errors import FAILED
from pipeline_code.render import pipeline_names
from tests.behaviour.pipeline_runs import pipeline_runs
from tests.behaviour.pipeline_shim import pipeline_shim
from tests.cli.conftest import run_mlops
from tests.synth import TEST_CONFIG_DIR

STARTED = datetime.datetime(2026, 11, 25, 9, 0, tzinfo=datetime.timezone.utc)
DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [{"Name": "InputDataUri", "Type": "String"}, {"Name": "AucThreshold", "Type": "Float", "DefaultValue": 0.8}],
    "Steps": [{"Name": "Evaluate", "Type": "Processing", "Arguments": {}}],
}


@pytest.fixture
def folder() -> str:
    return pipeline_names()[0]


@pytest.fixture
def sagemaker(aws, dev):
    with pipeline_shim(), pipeline_runs(dev.account, dev.region) as runs:
        client = boto3.client("sagemaker", region_name=dev.region)
        client.runs = runs
        yield client


@pytest.fixture
def deployed(sagemaker, dev, folder) -> str:
    name = pipeline_name(dev.prefix, folder)
    sagemaker.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(DEFINITION), RoleArn=f"arn:aws:iam::{dev.account}:role/pipelines")
    return name


def _ends(sagemaker, status: str, steps: list[dict]):
    """Every run started from now on ends at once with `status` after `steps`."""
    original = SageMakerModelBackend.start_pipeline_execution

    def start(backend, *args, **kwargs):
        answer = original(backend, *args, **kwargs)
        sagemaker.runs.end(answer["PipelineExecutionArn"], status, steps, started=STARTED, ended=STARTED + datetime.timedelta(minutes=9))
        return answer

    return mock.patch.object(SageMakerModelBackend, "start_pipeline_execution", start)


def test_list_shows_a_pipeline_that_never_ran(mlops, deployed):
    result = mlops("pipeline", "list", "--env", "dev", "--json")

    assert result.exit_code == 0, result.stderr
    (row,) = [row for row in json.loads(result.stdout) if row["pipeline"] == deployed]
    assert (row["deployed"], row["last_run"]) == (True, None)


def test_list_shows_the_last_run_and_its_failure(mlops, sagemaker, deployed, folder):
    with _ends(sagemaker, "Failed", [{"StepName": "Evaluate", "StepStatus": "Failed", "FailureReason": "AUC 0.61"}]):
        mlops("pipeline", "run", folder, "--env", "dev")

    result = mlops("pipeline", "list", "--env", "dev", "--json")

    (row,) = [row for row in json.loads(result.stdout) if row["pipeline"] == deployed]
    assert row["last_run"]["status"] == "Failed" and row["last_run"]["failure"]


def test_list_says_which_pipelines_are_not_deployed(mlops, sagemaker, dev):
    result = mlops("pipeline", "list", "--env", "dev")

    assert result.exit_code == 0, result.stderr
    assert "not deployed" in result.stdout


def test_run_starts_the_deployed_pipeline_with_the_parameters(mlops, sagemaker, deployed, folder):
    result = mlops("pipeline", "run", folder, "--env", "dev", "--param", "InputDataUri=s3://data/training/march/", "--param", "AucThreshold=0.85")

    assert result.exit_code == 0, result.stderr
    (run,) = sagemaker.list_pipeline_executions(PipelineName=deployed)["PipelineExecutionSummaries"]
    parameters = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=run["PipelineExecutionArn"])["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in parameters} == {"InputDataUri": "s3://data/training/march/", "AucThreshold": "0.85"}


def test_run_refuses_a_parameter_the_pipeline_does_not_declare(mlops, deployed, folder):
    result = mlops("pipeline", "run", folder, "--env", "dev", "--param", "MaxDepth=8")

    assert result.exit_code == FAILED
    assert "--param MaxDepth: the pipeline has no such parameter; its parameters: InputDataUri, AucThreshold" in result.stderr


def test_run_of_an_unknown_pipeline_lists_the_pipelines(mlops, sagemaker):
    result = mlops("pipeline", "run", "no-such-pipeline", "--env", "dev")

    assert result.exit_code == FAILED
    assert f"unknown pipeline 'no-such-pipeline'; the pipelines (folders of pipeline_code/): {', '.join(pipeline_names())}" in result.stderr


def test_run_of_an_undeployed_pipeline_says_so(mlops, sagemaker, folder):
    result = mlops("pipeline", "run", folder, "--env", "dev")

    assert result.exit_code == FAILED
    assert "is not deployed in dev" in result.stderr


def test_run_and_wait_follows_the_steps_and_ends_with_the_evaluation_report(mlops, sagemaker, deployed, folder, dev):
    s3 = boto3.client("s3", region_name=dev.region)
    s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": dev.region})
    s3.put_object(Bucket="artifacts", Key="run-1/Evaluate/evaluation/evaluation.json", Body=json.dumps({"binary_classification_metrics": {"auc": {"value": 0.93}}}))
    job = sagemaker.create_processing_job(
        ProcessingJobName="pipelines-run-1-evaluate",
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        AppSpecification={"ImageUri": "sklearn"},
        RoleArn=f"arn:aws:iam::{dev.account}:role/pipelines",
        ProcessingOutputConfig={"Outputs": [{"OutputName": "evaluation", "S3Output": {"S3Uri": "s3://artifacts/run-1/Evaluate/evaluation", "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]},
    )["ProcessingJobArn"]
    steps = [{"StepName": "Evaluate", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": job}}}]

    with _ends(sagemaker, "Succeeded", steps):
        result = mlops("pipeline", "run", folder, "--env", "dev", "--wait", "--poll-seconds", "0")

    assert result.exit_code == 0, result.stderr
    assert "Evaluate: Succeeded" in result.stdout
    assert '"auc": {"value": 0.93}' in result.stdout
    assert "Run Succeeded" in result.stdout


def test_run_and_wait_exits_1_with_the_failed_steps_reason(mlops, sagemaker, deployed, folder):
    with _ends(sagemaker, "Failed", [{"StepName": "Evaluate", "StepStatus": "Failed", "FailureReason": "Model AUC 0.61 is below the threshold 0.8"}]):
        result = mlops("pipeline", "run", folder, "--env", "dev", "--wait", "--poll-seconds", "0")

    assert result.exit_code == 1
    assert "Evaluate: Failed: Model AUC 0.61 is below the threshold 0.8" in result.stdout
    assert "Run Failed" in result.stdout


@pytest.fixture
def promoting_tabular(tmp_path) -> Path:
    """The tests' config, with dev taking model tabular (pipeline_code/training) from staging instead of training it."""
    config_dir = tmp_path / "config"
    shutil.copytree(TEST_CONFIG_DIR, config_dir)
    dev = yaml.safe_load((config_dir / "dev.yaml").read_text())
    dev["models"]["tabular"].update(source="promote", promote_from="staging")
    (config_dir / "dev.yaml").write_text(yaml.safe_dump(dev))
    return config_dir


@pytest.mark.parametrize("command", ["run", "diff"])
def test_a_pipeline_of_a_model_the_environment_only_promotes_is_refused_naming_where_it_is_trained(promoting_tabular, sagemaker, command):
    result = run_mlops(promoting_tabular, "pipeline", command, "training", "--env", "dev")

    assert result.exit_code == FAILED
    assert (
        "model tabular in dev is promoted from staging, not trained here, so pipeline training is not deployed in dev; "
        "run it in staging, or set source: both for models.tabular in config/dev.yaml"
    ) in result.stderr


def test_list_leaves_out_the_pipelines_of_a_model_the_environment_only_promotes(promoting_tabular, sagemaker, dev):
    result = run_mlops(promoting_tabular, "pipeline", "list", "--env", "dev", "--json")

    assert result.exit_code == 0, result.stderr
    assert [row["folder"] for row in json.loads(result.stdout)] == [folder for folder in pipeline_names() if folder != "training"]
