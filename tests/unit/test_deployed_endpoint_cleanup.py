"""The deployed-endpoint clean-up resource in the deployment templates: where it exists, what it may touch."""

from __future__ import annotations

import json

import pytest

from config.naming import serving_endpoint_name, serving_model_name_prefix
from tests.synth import Synthesized, environment_config
from tests.templates import policy_statements, resources, role_named

CLEANUP = "Custom::DeployedEndpointCleanup"


@pytest.fixture
def deployment(synthesized: Synthesized, environment) -> dict:
    return synthesized.template(environment, "deployment")


def _cleanup(deployment: dict) -> tuple[str, dict]:
    """The clean-up of the endpoint of the model that keeps the environment's names (at the stack's root)."""
    ((name, resource),) = [(name, resource) for name, resource in resources(deployment, CLEANUP).items() if name.startswith("EndpointCleanup")]
    return name, resource


# staging, like dev, has storage.removal: destroy; prod retains.
@pytest.mark.parametrize(("environment", "present"), [("dev", True), ("staging", True), ("prod", False)])
def test_endpoint_cleanup_exists_only_where_storage_is_destroyed_with_the_stack(synthesized: Synthesized, environment, present):
    deployment = synthesized.template(environment, "deployment")

    assert (environment_config(environment).storage.removal == "destroy") is present
    # One per model: each model's deployer creates its own endpoint.
    assert len(resources(deployment, CLEANUP)) == int(present) * len(environment_config(environment).model_units())


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_endpoint_cleanup_names_only_this_environments_endpoint_configs_and_models(deployment, environment):
    _, cleanup = _cleanup(deployment)
    endpoint, models = _served_names(environment)

    assert cleanup["Properties"]["EndpointName"] == endpoint
    assert cleanup["Properties"]["EndpointConfigPrefix"] == f"{endpoint}-"
    assert cleanup["Properties"]["ModelPrefix"] == f"{models}-"


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_endpoint_cleanup_also_names_the_other_serving_modes_endpoint(deployment, environment):
    _, cleanup = _cleanup(deployment)
    mode = environment_config(environment).deployment.serving.mode
    other = "instances" if mode == "serverless" else "serverless"

    assert cleanup["Properties"]["RetiredEndpointName"] == serving_endpoint_name(f"mlops-{environment}", other)
    assert cleanup["Properties"]["RetiredEndpointConfigPrefix"] == f"{serving_endpoint_name(f'mlops-{environment}', other)}-"
    assert cleanup["Properties"]["RetiredModelPrefix"] == f"{serving_model_name_prefix(f'mlops-{environment}', other)}-"


def _served_names(environment: str) -> tuple[str, str]:
    """The endpoint and model prefix the environment's serving mode uses (dev serves serverless)."""
    mode = environment_config(environment).deployment.serving.mode
    return serving_endpoint_name(f"mlops-{environment}", mode), serving_model_name_prefix(f"mlops-{environment}", mode)


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_endpoint_cleanup_is_deleted_before_the_deployer_it_stops(deployment, environment):
    _, cleanup = _cleanup(deployment)
    (state_machine,) = [name for name in resources(deployment, "AWS::StepFunctions::StateMachine") if name.startswith("CanaryDeployer")]

    assert cleanup["Properties"]["StateMachineArn"] == {"Ref": state_machine}
    assert state_machine in cleanup["DependsOn"]


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_endpoint_cleanup_gives_up_well_within_cloudformations_hour(deployment, environment):
    (waiter,) = [r for name, r in resources(deployment, "AWS::StepFunctions::StateMachine").items() if name.startswith("EndpointCleanupProvider")]
    # The function ARNs are tokens inside JSON strings: leaving them out keeps the JSON valid.
    definition = json.loads("".join(part for part in waiter["Properties"]["DefinitionString"]["Fn::Join"][1] if isinstance(part, str)))
    (retry,) = definition["States"]["framework-isComplete-task"]["Retry"]

    assert retry["BackoffRate"] == 1
    assert retry["IntervalSeconds"] * retry["MaxAttempts"] <= 45 * 60


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_endpoint_cleanup_deletes_only_what_carries_the_environments_prefix(deployment, environment):
    statements = policy_statements(deployment, role_named(deployment, "EndpointCleanupHandlerRole"))
    by_action = {action: statement for statement in statements for action in _list(statement["Action"])}
    config = environment_config(environment)
    arn = f"arn:aws:sagemaker:{config.region}:{config.account}"

    prefix = f"mlops-{environment}"
    # Both serving modes' names: a switch of modes may leave the other mode's endpoint to delete.
    endpoints = [f"{prefix}-endpoint", f"{prefix}-serverless"]

    assert sorted(_list(by_action["sagemaker:DeleteEndpoint"]["Resource"])) == [f"{arn}:endpoint/{name}" for name in endpoints]
    assert sorted(_list(by_action["sagemaker:DeleteEndpointConfig"]["Resource"])) == [f"{arn}:endpoint-config/{name}-*" for name in endpoints]
    assert sorted(_list(by_action["sagemaker:DeleteModel"]["Resource"])) == [f"{arn}:model/{prefix}-model-*", f"{arn}:model/{prefix}-serverless-model-*"]
    assert by_action["sagemaker:AddTags"]["Condition"] == {"ForAllValues:StringEquals": {"aws:TagKeys": ["mlops:stack-cleanup"]}}


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_endpoint_cleanup_uses_star_only_for_lists_and_scalable_targets(deployment, environment):
    statements = policy_statements(deployment, role_named(deployment, "EndpointCleanupHandlerRole"))
    on_star = {action for s in statements if s["Resource"] == "*" for action in _list(s["Action"])}

    assert on_star == {
        "sagemaker:ListEndpointConfigs",
        "sagemaker:ListModels",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DeregisterScalableTarget",
    }


def _list(value) -> list:
    return value if isinstance(value, list) else [value]
