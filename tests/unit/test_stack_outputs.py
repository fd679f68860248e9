"""Named outputs: where people find the buckets, upload prefixes, endpoint, state machines, dashboard and
Studio of an environment (`mlops outputs` reads them back: tests/cli/test_outputs.py)."""

from __future__ import annotations

import pytest

from config import ENVIRONMENTS
from pipeline_code import render
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
    assert outputs["PipelineNames"]["Value"] == ",".join(f"{prefix}-{folder}" for folder in render.pipeline_names())
    assert outputs["ModelPackageGroupName"]["Value"] == f"{prefix}-models"


def test_dashboard_url_opens_the_environments_dashboard_in_its_region(synthesized):
    config = synthesized.config("staging")
    url = synthesized.template("staging", "deployment")["Outputs"]["DashboardUrl"]["Value"]

    assert url == (
        f"https://{config.region}.console.aws.amazon.com/cloudwatch/home?region={config.region}"
        f"#dashboards/dashboard/{config.prefix}"
    )
