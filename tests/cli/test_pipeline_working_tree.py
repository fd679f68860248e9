"""`mlops pipeline diff` and `run --draft` on the real definitions: the live pipeline is what the stack deploys (the synthesized
rendering with its deploy-time values filled in, as the upsert does), then edited as someone in Studio would."""

from __future__ import annotations

import copy
import json
import re

import boto3
import pytest

from config import ENVIRONMENTS
from config.naming import DRAFT_ENVIRONMENTS, draft_pipeline_name, draft_user, pipeline_name
from mlops_cli.definitions import shown
from mlops_cli.errors import FAILED
from pipeline_code import render
from tests.behaviour.pipeline_shim import pipeline_shim
from tests.cli.conftest import FOLDER, as_deployed


def _step(definition: dict, step_type: str) -> dict:
    return next(step for step in definition["Steps"] if step["Type"] == step_type)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_deployed_definition_shows_no_difference(mlops, deploy, synthesized, environment, monkeypatch):
    # Each environment's own account: prod's jobs run in subnets, with a tracking server.
    monkeypatch.setenv("MOTO_ACCOUNT_ID", synthesized.config(environment).account)
    deploy(as_deployed(synthesized, environment), environment=environment)

    result = mlops("pipeline", "diff", FOLDER, "--env", environment)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "No differences." in result.stdout


def test_a_changed_hyperparameter_shows_by_its_path_and_exits_1(mlops, deploy, deployed_definition):
    live = copy.deepcopy(deployed_definition)
    train = _step(live, "Training")
    key, before = next(iter(train["Arguments"]["HyperParameters"].items()))
    train["Arguments"]["HyperParameters"][key] = "8"
    deploy(live)

    result = mlops("pipeline", "diff", FOLDER, "--env", "dev")

    assert result.exit_code == 1
    assert f"{train['Name']}.HyperParameters.{key}: {before} -> 8" in result.stdout.splitlines()


def test_a_changed_instance_type_shows_by_its_path(mlops, deploy, deployed_definition):
    live = copy.deepcopy(deployed_definition)
    train = _step(live, "Training")
    before = train["Arguments"]["ResourceConfig"]["InstanceType"]
    train["Arguments"]["ResourceConfig"]["InstanceType"] = "ml.c5.4xlarge"
    deploy(live)

    result = mlops("pipeline", "diff", FOLDER, "--env", "dev", "--json")

    changed = json.loads(result.stdout)["changed"]
    assert changed == [{"path": f"{train['Name']}.ResourceConfig.InstanceType", "working_tree": shown(before), "live": "ml.c5.4xlarge"}]


def test_a_step_removed_live_shows_as_only_in_the_working_tree(mlops, deploy, deployed_definition):
    live = copy.deepcopy(deployed_definition)
    removed = live["Steps"].pop()
    deploy(live)

    result = mlops("pipeline", "diff", FOLDER, "--env", "dev", "--json")

    assert removed["Name"] in json.loads(result.stdout)["only_working_tree"]


def test_a_different_deploy_time_value_in_one_place_is_an_edit(mlops, deploy, deployed_definition):
    # The role is a deploy-time value: any value matches, but one value for every use of it.
    live = copy.deepcopy(deployed_definition)
    train = _step(live, "Training")
    train["Arguments"]["RoleArn"] = train["Arguments"]["RoleArn"].replace("deployed-pipelinerolename", "someone-elses-role")
    deploy(live)

    result = mlops("pipeline", "diff", FOLDER, "--env", "dev", "--json")

    assert [change["path"] for change in json.loads(result.stdout)["changed"]] == [f"{train['Name']}.RoleArn"]


def test_a_live_script_that_differs_from_the_working_tree_is_named(mlops, deploy, deployed_definition):
    script = render.step_scripts(FOLDER)[0].name
    deploy(deployed_definition, scripts={script: b"print('edited in Studio')\n"})

    result = mlops("pipeline", "diff", FOLDER, "--env", "dev")

    assert result.exit_code == 1
    assert f"script {script}: the live copy differs from the working tree's" in result.stdout


def test_diff_of_an_undeployed_pipeline_says_so(mlops, aws):
    with pipeline_shim():
        result = mlops("pipeline", "diff", FOLDER, "--env", "dev")

    assert result.exit_code == FAILED
    assert "is not deployed in dev" in result.stderr


@pytest.fixture
def draft(deploy, deployed_definition, dev) -> str:
    """The dev pipeline deployed, its artifacts bucket there; the name the caller's draft gets."""
    deploy(deployed_definition)
    boto3.client("s3", region_name=dev.region).create_bucket(Bucket="deployed-artifactsbucket", CreateBucketConfiguration={"LocationConstraint": dev.region})
    caller = boto3.client("sts", region_name=dev.region).get_caller_identity()["Arn"]
    return draft_pipeline_name(dev.prefix, draft_user(caller), FOLDER)


def test_draft_runs_the_working_tree_as_the_callers_own_pipeline(mlops, draft, dev):
    result = mlops("pipeline", "run", FOLDER, "--env", "dev", "--draft")

    assert result.exit_code == 0, result.stdout + result.stderr
    sagemaker = boto3.client("sagemaker", region_name=dev.region)
    described = sagemaker.describe_pipeline(PipelineName=draft)
    assert "${" not in described["PipelineDefinition"]
    assert described["RoleArn"].endswith(":role/deployed-pipelinerolename")
    assert len(sagemaker.list_pipeline_executions(PipelineName=draft)["PipelineExecutionSummaries"]) == 1


def test_draft_runs_the_working_trees_scripts_from_its_own_prefix(mlops, draft, dev):
    mlops("pipeline", "run", FOLDER, "--env", "dev", "--draft")

    definition = boto3.client("sagemaker", region_name=dev.region).describe_pipeline(PipelineName=draft)["PipelineDefinition"]
    s3 = boto3.client("s3", region_name=dev.region)
    uploaded = {obj["Key"].rsplit("/", 1)[-1]: obj["Key"] for obj in s3.list_objects_v2(Bucket="deployed-artifactsbucket", Prefix=f"pipelines/{draft}/code/")["Contents"]}
    assert set(uploaded) == {path.name for path in render.step_scripts(FOLDER)} | {render.SOURCE_ARCHIVE}
    for name, key in uploaded.items():
        if name != render.SOURCE_ARCHIVE:
            assert s3.get_object(Bucket="deployed-artifactsbucket", Key=key)["Body"].read() == (render.PACKAGE_DIR / FOLDER / name).read_bytes()
    referenced = set(re.findall(r"s3://[^\"]*/code/[^\"]*", definition))
    assert referenced and referenced <= {f"s3://deployed-artifactsbucket/{key}" for key in uploaded.values()}


def test_a_second_draft_run_updates_the_same_draft_and_leaves_the_deployed_pipeline(mlops, draft, dev, deployed_definition):
    mlops("pipeline", "run", FOLDER, "--env", "dev", "--draft")
    mlops("pipeline", "run", FOLDER, "--env", "dev", "--draft")

    sagemaker = boto3.client("sagemaker", region_name=dev.region)
    assert [p["PipelineName"] for p in sagemaker.list_pipelines(PipelineNamePrefix=f"{dev.prefix}-draft-")["PipelineSummaries"]] == [draft]
    assert len(sagemaker.list_pipeline_executions(PipelineName=draft)["PipelineExecutionSummaries"]) == 2
    deployed = sagemaker.describe_pipeline(PipelineName=pipeline_name(dev.prefix, FOLDER))
    assert json.loads(deployed["PipelineDefinition"]) == deployed_definition
    assert sagemaker.list_pipeline_executions(PipelineName=pipeline_name(dev.prefix, FOLDER))["PipelineExecutionSummaries"] == []


@pytest.mark.parametrize("environment", [name for name in ENVIRONMENTS if name not in DRAFT_ENVIRONMENTS])
def test_a_draft_outside_dev_is_refused(mlops, aws, synthesized, monkeypatch, environment):
    monkeypatch.setenv("MOTO_ACCOUNT_ID", synthesized.config(environment).account)

    result = mlops("pipeline", "run", FOLDER, "--env", environment, "--draft")

    assert result.exit_code == FAILED
    assert "draft pipelines exist in dev only" in result.stderr
