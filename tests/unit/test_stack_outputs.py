"""Named outputs: where people find the buckets, upload prefixes, endpoint, state machines, dashboard and
Studio of an environment, and `make outputs` reading them back from CloudFormation."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from config import ENVIRONMENTS
from scripts.stack_outputs import OutputsError, environment_outputs
from tests.templates import cfn_text

# What the documentation's first day tells people to look for, by stack.
NAMED_OUTPUTS = {
    "storage": {"TrainingDataBucketName", "ArtifactsBucketName"},
    "model-build": {"ModelPackageGroupName", "PipelineNames", "TrainingDataUri"},
    "deployment": {"EndpointName", "DeployerStateMachineArn", "DashboardUrl"},
    "batch-inference": {"BatchInferenceStateMachineArn", "BatchOutputUri", "BatchInferenceImageRepositoryUri", "BatchInferenceCodeUri"},
    "studio": {"StudioDomainId", "StudioUrl"},
}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("stack", sorted(NAMED_OUTPUTS))
def test_every_environment_outputs_what_people_look_for(synthesized, environment, stack):
    outputs = synthesized.template(environment, stack).get("Outputs", {})

    assert NAMED_OUTPUTS[stack] <= set(outputs)
    assert all(outputs[name].get("Description") for name in NAMED_OUTPUTS[stack])


def test_training_data_uri_is_the_prefix_whose_uploads_start_the_training_pipeline(synthesized):
    config = synthesized.config("dev")
    value = cfn_text(synthesized.template("dev", "model-build")["Outputs"]["TrainingDataUri"]["Value"])

    assert value.startswith("s3://") and value.endswith(f"/{config.model_build.training_prefix}")


def test_endpoint_and_pipeline_names_are_the_physical_names(synthesized):
    prefix = synthesized.prefix("prod")
    outputs = {**synthesized.template("prod", "deployment")["Outputs"], **synthesized.template("prod", "model-build")["Outputs"]}

    assert outputs["EndpointName"]["Value"] == f"{prefix}-endpoint"
    assert outputs["PipelineNames"]["Value"] == f"{prefix}-training"
    assert outputs["ModelPackageGroupName"]["Value"] == f"{prefix}-models"


def test_dashboard_url_opens_the_environments_dashboard_in_its_region(synthesized):
    config = synthesized.config("staging")
    url = synthesized.template("staging", "deployment")["Outputs"]["DashboardUrl"]["Value"]

    assert url == (
        f"https://{config.region}.console.aws.amazon.com/cloudwatch/home?region={config.region}"
        f"#dashboards/dashboard/{config.prefix}"
    )


def _deploy_stack(cloudformation, name: str, tags: dict[str, str], outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value, "Description": f"about {key}"} for key, value in outputs.items()},
    }
    cloudformation.create_stack(
        StackName=name, TemplateBody=json.dumps(template), Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )


@pytest.fixture
def dev(synthesized):
    config = synthesized.config("dev")
    with mock_aws():
        yield config, boto3.client("cloudformation", region_name=config.region)


def test_outputs_lists_the_environments_named_outputs_and_hides_cross_stack_references(dev):
    config, cloudformation = dev
    tags = {"project": config.project, "environment": config.name}
    _deploy_stack(cloudformation, "dev-storage", tags, {"ArtifactsBucketName": "bucket-1", "PublishOutputRefArtifacts1234": "bucket-1"})
    _deploy_stack(cloudformation, "dev-deployment", tags, {"EndpointName": f"{config.prefix}-endpoint", "ExportsOutputRefTopic": "arn"})

    outputs = environment_outputs(config.model_copy(update={"account": "123456789012"}), boto3.Session())

    assert [(o.stack, o.key, o.value) for o in outputs] == [
        ("dev-deployment", "EndpointName", f"{config.prefix}-endpoint"),
        ("dev-storage", "ArtifactsBucketName", "bucket-1"),
    ]


def test_outputs_leave_out_other_projects_and_environments(dev):
    config, cloudformation = dev
    _deploy_stack(cloudformation, "dev-storage", {"project": "another", "environment": config.name}, {"ArtifactsBucketName": "theirs"})
    _deploy_stack(cloudformation, "staging-storage", {"project": config.project, "environment": "staging"}, {"ArtifactsBucketName": "staging's"})
    _deploy_stack(cloudformation, "mine", {"project": config.project, "environment": config.name}, {"ArtifactsBucketName": "ours"})

    outputs = environment_outputs(config.model_copy(update={"account": "123456789012"}), boto3.Session())

    assert [o.value for o in outputs] == ["ours"]


def test_outputs_of_an_environment_not_deployed_say_how_to_deploy_it(dev):
    config, _ = dev

    with pytest.raises(OutputsError, match=r"no stacks of .* deploy it first \(make deploy ENV=dev\)"):
        environment_outputs(config.model_copy(update={"account": "123456789012"}), boto3.Session())


def test_outputs_with_another_accounts_credentials_name_both_accounts(dev):
    config, _ = dev

    # moto's credentials belong to account 123456789012.
    with pytest.raises(OutputsError, match="account 123456789012, but dev is account 999999999999"):
        environment_outputs(config.model_copy(update={"account": "999999999999"}), boto3.Session())
