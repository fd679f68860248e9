"""`mlops outputs`: the named outputs of the environment's deployed stacks, read back from CloudFormation."""

from __future__ import annotations

import json

import boto3
import pytest

from mlops_cli.errors import FAILED


def _deploy_stack(cloudformation, name: str, tags: dict[str, str], outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value, "Description": f"about {key}"} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template), Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


@pytest.fixture
def cloudformation(aws, dev):
    return boto3.client("cloudformation", region_name=dev.region)


def test_outputs_lists_the_environments_named_outputs_and_hides_cross_stack_references(mlops, dev, cloudformation):
    tags = {"project": dev.project, "environment": dev.name}
    _deploy_stack(cloudformation, f"{dev.name}-storage", tags, {"ArtifactsBucketName": "bucket-1", "PublishOutputRefArtifacts1234": "bucket-1"})
    _deploy_stack(cloudformation, f"{dev.name}-deployment", tags, {"EndpointName": f"{dev.prefix}-endpoint", "ExportsOutputRefTopic": "arn"})

    result = mlops("outputs", "--env", "dev", "--json")

    assert result.exit_code == 0, result.stderr
    assert [(o["stack"], o["key"], o["value"]) for o in json.loads(result.stdout)] == [
        (f"{dev.name}-deployment", "EndpointName", f"{dev.prefix}-endpoint"),
        (f"{dev.name}-storage", "ArtifactsBucketName", "bucket-1"),
    ]


def test_outputs_print_a_table_people_read(mlops, dev, cloudformation):
    _deploy_stack(cloudformation, f"{dev.name}-model-build", {"project": dev.project, "environment": dev.name}, {"TrainingDataUri": "s3://data/training/"})

    result = mlops("outputs", "--env", "dev")

    assert result.exit_code == 0, result.stderr
    assert "TrainingDataUri" in result.stdout and "s3://data/training/" in result.stdout


def test_outputs_leave_out_other_projects_and_environments(mlops, dev, cloudformation):
    _deploy_stack(cloudformation, "theirs", {"project": "another", "environment": dev.name}, {"ArtifactsBucketName": "theirs"})
    _deploy_stack(cloudformation, "staging-storage", {"project": dev.project, "environment": "staging"}, {"ArtifactsBucketName": "staging's"})
    _deploy_stack(cloudformation, "ours", {"project": dev.project, "environment": dev.name}, {"ArtifactsBucketName": "ours"})

    result = mlops("outputs", "--env", "dev", "--json")

    assert [o["value"] for o in json.loads(result.stdout)] == ["ours"]


def test_outputs_of_an_environment_not_deployed_say_how_to_deploy_it(mlops, dev, cloudformation):
    result = mlops("outputs", "--env", "dev")

    assert result.exit_code == FAILED
    assert f"no stacks of {dev.prefix} in {dev.region}: deploy it first (make deploy ENV=dev)" in result.stderr


def test_outputs_key_prints_only_that_value_for_scripts(mlops, dev, cloudformation):
    _deploy_stack(cloudformation, f"{dev.name}-model-build", {"project": dev.project, "environment": dev.name}, {"TrainingDataUri": "s3://data/training/"})

    result = mlops("outputs", "--env", "dev", "--key", "TrainingDataUri")

    assert (result.exit_code, result.stdout) == (0, "s3://data/training/\n")


def test_outputs_key_that_no_stack_has_lists_the_keys_there_are(mlops, dev, cloudformation):
    _deploy_stack(cloudformation, f"{dev.name}-model-build", {"project": dev.project, "environment": dev.name}, {"TrainingDataUri": "s3://data/training/"})

    result = mlops("outputs", "--env", "dev", "--key", "TrainingDataBucket")

    assert result.exit_code == FAILED
    assert "no output TrainingDataBucket; the outputs are: TrainingDataUri" in result.stderr
