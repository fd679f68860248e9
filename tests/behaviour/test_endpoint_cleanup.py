"""Behaviour of the deployed-endpoint clean-up custom resource, driven through CloudFormation's sequences.

CloudFormation sends a custom resource sequences of events, not single ones; the stack's status at the time
of a Delete is what tells a stack deletion from a replacement's clean-up or a rollback. moto cannot hold
a stack in an in-progress status, so `_stack_is_now` sets the status on moto's stack, as CloudFormation
would report it while it sends the event.
"""

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore import xform_name
from moto import mock_aws
from moto.cloudformation.models import cloudformation_backends
from moto.core import DEFAULT_ACCOUNT_ID

from tests.behaviour import iam_calls
from tests.behaviour.endpoint_shim import SAGEMAKER_VARIANT_DIMENSION, endpoint_shim
from tests.behaviour.iam_calls import WorldNames
from tests.behaviour.sfn_harness import Call
from tests.permissions import EnvironmentPolicies

REGION = "eu-west-1"
ACCOUNT = DEFAULT_ACCOUNT_ID
ROLE = f"arn:aws:iam::{ACCOUNT}:role/model"
MAX_POLLS = 20
OURS = "mlops-dev"
OTHERS = "mlops-staging"
OUR_ENDPOINT = f"{OURS}-endpoint"
OUR_CONFIGS = [f"{OUR_ENDPOINT}-v1-blue", f"{OUR_ENDPOINT}-v2-canary", f"{OUR_ENDPOINT}-v2"]
OUR_MODELS = [f"{OURS}-model-v1", f"{OURS}-model-v2"]
# Another environment's release, and names that merely contain our prefix.
OTHER_CONFIGS = [f"{OTHERS}-endpoint-v1-blue", f"team-{OUR_ENDPOINT}-v1"]
OTHER_MODELS = [f"{OTHERS}-model-v1", f"team-{OURS}-model-v1"]
OTHER_ENDPOINT = f"{OTHERS}-endpoint"
WRITES = {
    "states:StopExecution",
    "application-autoscaling:DeregisterScalableTarget",
    "sagemaker:AddTags",
    "sagemaker:DeleteEndpoint",
    "sagemaker:DeleteEndpointConfig",
    "sagemaker:DeleteModel",
}

_HANDLER_PATH = Path(__file__).parents[2] / "functions" / "endpoint_cleanup" / "handler.py"
_spec = importlib.util.spec_from_file_location("endpoint_cleanup_handler", _HANDLER_PATH)
handler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handler)
# Each test in a container of its own: the function keeps its clients for a container's life.
pytestmark = pytest.mark.usefixtures("new_container")


@pytest.fixture
def shim(aws_env):
    with mock_aws(), endpoint_shim(region=REGION, reads_while_creating=0, reads_while_deleting=1) as controller:
        yield controller


@pytest.fixture
def calls(shim, monkeypatch):
    """Every AWS operation the handler calls, in order, named as IAM actions (`states:StopExecution`)."""
    session = boto3.Session(region_name=REGION)
    made = []
    session.events.register("before-call", lambda model, **_: made.append(f"{model.service_model.signing_name}:{model.name}"))
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=session.client))
    return made


@pytest.fixture
def sm(shim):
    return boto3.client("sagemaker", region_name=REGION)


@pytest.fixture
def scaling(shim):
    return boto3.client("application-autoscaling", region_name=REGION)


@pytest.fixture
def stepfunctions(shim):
    return boto3.client("stepfunctions", region_name=REGION)


@pytest.fixture
def stack_id(shim):
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    template = {"Resources": {"Notifications": {"Type": "AWS::SNS::Topic"}}}
    return cloudformation.create_stack(StackName="dev-deployment", TemplateBody=json.dumps(template))["StackId"]


def _stack_is_now(stack_id, status):
    cloudformation_backends[ACCOUNT][REGION].stacks[stack_id].status = status


@pytest.fixture
def deployer(stepfunctions):
    """The deployer's state machine with one deployment running (moto does not execute it: it stays RUNNING)."""
    arn = stepfunctions.create_state_machine(
        name=f"{OURS}-canary-deployer",
        definition=json.dumps({"StartAt": "Bake", "States": {"Bake": {"Type": "Wait", "Seconds": 600, "End": True}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/deployer",
    )["stateMachineArn"]
    stepfunctions.start_execution(stateMachineArn=arn, name="release-v2", input="{}")
    return arn


def _release(sm, scaling, endpoint, configs, models):
    """What the deployer leaves behind: models, configs, the endpoint on the first config, autoscaling on blue."""
    for model in models:
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "inference"})
    for config in configs:
        sm.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {"VariantName": "blue", "ModelName": models[0], "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
            ],
        )
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=configs[0])
    resource_id = f"endpoint/{endpoint}/variant/blue"
    scaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension=SAGEMAKER_VARIANT_DIMENSION,
        MinCapacity=1,
        MaxCapacity=2,
    )
    scaling.put_scaling_policy(
        PolicyName="SageMakerEndpointInvocationScalingPolicy",
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension=SAGEMAKER_VARIANT_DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 100.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
    )


@pytest.fixture
def deployed(sm, scaling, deployer):
    """Our environment's releases and another environment's, in one account and region."""
    _release(sm, scaling, OUR_ENDPOINT, OUR_CONFIGS, OUR_MODELS)
    _release(sm, scaling, OTHER_ENDPOINT, OTHER_CONFIGS, OTHER_MODELS)


def _props(endpoint_name=OUR_ENDPOINT, prefix=OURS):
    return {
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:provider",
        "EndpointName": endpoint_name,
        "EndpointConfigPrefix": f"{endpoint_name}-",
        "ModelPrefix": f"{prefix}-model-",
        "StateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{prefix}-canary-deployer",
        "DeleteRequestedTag": "mlops:stack-cleanup",
    }


def _event(request_type, stack_id, physical_id=OUR_ENDPOINT, props=None, old_props=None):
    event = {
        "RequestType": request_type,
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:provider",
        "ResourceType": "Custom::DeployedEndpointCleanup",
        "LogicalResourceId": "EndpointCleanup",
        "RequestId": f"{request_type}-request",
        "StackId": stack_id,
        "ResourceProperties": props or _props(),
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = physical_id
    if old_props is not None:
        event["OldResourceProperties"] = old_props
    return event


def _run(event, between_polls=None):
    """Call on_event, then is_complete until it reports completion, as the Provider framework does.

    Returns on_event's answer and is_complete's answers. `between_polls` runs before each poll.
    """
    result = handler.on_event(event)
    event = {**event, **result}
    answers = []
    for _ in range(MAX_POLLS):
        if between_polls:
            between_polls()
        answers.append(handler.is_complete(event)["IsComplete"])
        if answers[-1]:
            return result, answers
    pytest.fail(f"not complete after {MAX_POLLS} polls")


def _endpoints(sm):
    return sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"])


def _configs(sm):
    return sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"])


def _models(sm):
    return sorted(m["ModelName"] for m in sm.list_models()["Models"])


def _targets(scaling):
    return sorted(t["ResourceId"] for t in scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"])


def _policies(scaling):
    return sorted(p["ResourceId"] for p in scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"])


def _running(stepfunctions, deployer):
    return [e["name"] for e in stepfunctions.list_executions(stateMachineArn=deployer, statusFilter="RUNNING")["executions"]]


def _everything(sm, scaling, stepfunctions, deployer):
    return {
        "endpoints": _endpoints(sm),
        "configs": _configs(sm),
        "models": _models(sm),
        "targets": _targets(scaling),
        "policies": _policies(scaling),
        "running": _running(stepfunctions, deployer),
    }


# --- the stack is deleted --------------------------------------------------------------------


def test_stack_delete_removes_our_endpoint_configs_models_and_autoscaling(sm, scaling, stack_id, deployed):
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")

    _run(_event("Delete", stack_id))

    assert OUR_ENDPOINT not in _endpoints(sm)
    assert not set(OUR_CONFIGS) & set(_configs(sm))
    assert not set(OUR_MODELS) & set(_models(sm))
    assert f"endpoint/{OUR_ENDPOINT}/variant/blue" not in _targets(scaling) + _policies(scaling)


def test_stack_delete_also_removes_the_endpoint_a_switch_of_serving_modes_left(sm, scaling, stack_id, deployed):
    """The environment serves serverless now; its endpoint on instances was never retired by a release."""
    serverless = f"{OURS}-serverless"
    serverless_configs, serverless_models = [f"{serverless}-v3-1a2b3c4d"], [f"{OURS}-serverless-model-v3"]
    for model in serverless_models:
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "inference"})
    sm.create_endpoint_config(
        EndpointConfigName=serverless_configs[0],
        ProductionVariants=[{"VariantName": "blue", "ModelName": serverless_models[0], "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}],
    )
    sm.create_endpoint(EndpointName=serverless, EndpointConfigName=serverless_configs[0])
    props = {
        **_props(serverless),
        "ModelPrefix": f"{OURS}-serverless-model-",
        "RetiredEndpointName": OUR_ENDPOINT,
        "RetiredEndpointConfigPrefix": f"{OUR_ENDPOINT}-",
        "RetiredModelPrefix": f"{OURS}-model-",
    }
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")

    _run(_event("Delete", stack_id, physical_id=serverless, props=props))

    assert _endpoints(sm) == [OTHER_ENDPOINT]
    assert _configs(sm) == sorted(OTHER_CONFIGS)
    assert _models(sm) == sorted(OTHER_MODELS)
    assert f"endpoint/{OUR_ENDPOINT}/variant/blue" not in _targets(scaling) + _policies(scaling)


def test_stack_delete_leaves_other_environments_and_other_names_alone(sm, scaling, stack_id, deployed):
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")

    _run(_event("Delete", stack_id))

    assert _endpoints(sm) == [OTHER_ENDPOINT]
    assert _configs(sm) == sorted(OTHER_CONFIGS)
    assert _models(sm) == sorted(OTHER_MODELS)
    assert _targets(scaling) == _policies(scaling) == [f"endpoint/{OTHER_ENDPOINT}/variant/blue"]


def test_stack_delete_stops_deployments_deregisters_then_deletes_endpoint_before_configs_and_models(
    stepfunctions, deployer, stack_id, deployed, calls
):
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")

    _run(_event("Delete", stack_id))

    writes = [call for call in calls if call in WRITES]
    first = {call.split(":")[1]: writes.index(call) for call in reversed(writes)}
    assert first["StopExecution"] < first["DeregisterScalableTarget"] < first["DeleteEndpoint"]
    assert first["DeleteEndpoint"] < first["DeleteEndpointConfig"] < first["DeleteModel"]
    assert _running(stepfunctions, deployer) == []


def test_stack_delete_waits_until_the_endpoint_is_gone_before_deleting_configs(sm, shim, stack_id, deployed):
    shim.reads_while_deleting = 3
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")
    configs_while_deleting = []

    _, answers = _run(
        _event("Delete", stack_id),
        between_polls=lambda: configs_while_deleting.append(set(OUR_CONFIGS) <= set(_configs(sm))),
    )

    assert answers == [False, False, False, True]
    assert all(configs_while_deleting)


def test_stack_delete_mid_canary_waits_for_the_update_then_deletes_the_endpoint(
    sm, shim, stack_id, deployed
):
    shim.reads_while_updating = 2
    sm.update_endpoint(EndpointName=OUR_ENDPOINT, EndpointConfigName=f"{OUR_ENDPOINT}-v2-canary")
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")

    _run(_event("Delete", stack_id))  # the shim refuses DeleteEndpoint while the endpoint is Updating

    assert OUR_ENDPOINT not in _endpoints(sm)


def test_an_endpoint_whose_first_release_fails_during_the_delete_is_deleted_not_reported(
    sm, shim, scaling, stack_id, deployer
):
    shim.reads_while_creating = 2
    shim.next_create("fail", reason="The primary container did not pass the ping health check.")
    _release(sm, scaling, OUR_ENDPOINT, OUR_CONFIGS, OUR_MODELS)
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")

    _run(_event("Delete", stack_id))

    assert _endpoints(sm) == []


def test_an_endpoint_already_gone_is_fine_and_configs_and_models_still_go(sm, shim, stack_id, deployed):
    shim.reads_while_deleting = 0
    sm.delete_endpoint(EndpointName=OUR_ENDPOINT)
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")

    _run(_event("Delete", stack_id))

    assert _endpoints(sm) == [OTHER_ENDPOINT]
    assert _configs(sm) == sorted(OTHER_CONFIGS)


def test_a_delete_repeated_after_success_finds_nothing_to_do(sm, stack_id, deployed, calls):
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")
    _run(_event("Delete", stack_id))
    calls.clear()

    _, answers = _run(_event("Delete", stack_id))

    assert answers == [True]
    assert not WRITES & set(calls)


def test_a_failing_endpoint_delete_fails_with_sagemakers_reason(shim, stack_id, deployed):
    shim.next_delete("fail", reason="Failed to release the endpoint's network interfaces.")
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")

    with pytest.raises(handler.EndpointCleanupError) as failure:
        _run(_event("Delete", stack_id))

    assert str(failure.value) == (
        f"SageMaker could not delete endpoint {OUR_ENDPOINT}: Failed to release the endpoint's network interfaces."
    )


def test_a_stack_delete_retried_after_a_failed_endpoint_delete_deletes_it_again(sm, shim, stack_id, deployed):
    shim.next_delete("fail")
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")
    with pytest.raises(handler.EndpointCleanupError):
        _run(_event("Delete", stack_id))

    _run(_event("Delete", stack_id))

    assert _endpoints(sm) == [OTHER_ENDPOINT]


def test_every_call_of_a_stack_delete_is_allowed_to_the_synthesized_role_on_the_resource_it_names(
    variants_synthesized, shim, stack_id, deployed, monkeypatch
):
    # dev on instances: the endpoint these tests release has instances and autoscaling to remove.
    synthesized = variants_synthesized
    session = boto3.Session(region_name=REGION)
    calls: list[Call] = []
    session.events.register(
        "before-parameter-build",
        lambda params, model, **_: calls.append(Call("endpoint clean-up", model.service_model.service_name, xform_name(model.name), dict(params))),
    )
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=session.client))
    shim.next_delete("fail")  # the failure path also reads the endpoint's tags
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")
    with pytest.raises(handler.EndpointCleanupError):
        _run(_event("Delete", stack_id))
    _run(_event("Delete", stack_id))
    policies = EnvironmentPolicies(synthesized, "dev")
    (role_id,) = [
        logical_id
        for logical_id, r in policies.templates["deployment"]["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and logical_id.startswith("EndpointCleanupHandlerRole")
    ]
    names = WorldNames(policies, "deployment", REGION, {stack_id: policies.resolve("deployment", {"Ref": "AWS::StackId"})})
    caller = policies.arn("deployment", role_id)

    decided = policies.decide([r for call in calls for r in iam_calls.requests(call, caller, names)])

    assert {call.operation for call in calls} >= {"describe_stacks", "list_executions", "stop_execution", "deregister_scalable_target", "delete_endpoint"}
    assert [d.explain() for d in decided if not d.allowed] == []


# --- the stack stays -------------------------------------------------------------------------


def test_create_and_update_make_no_aws_calls(stack_id, deployed, calls):
    _stack_is_now(stack_id, "UPDATE_IN_PROGRESS")

    created = _run(_event("Create", stack_id))
    updated = _run(_event("Update", stack_id, old_props=_props()))

    assert created == updated == ({"PhysicalResourceId": OUR_ENDPOINT}, [True])
    assert calls == []


def _replace_by_update(stack_id):
    renamed = _props(endpoint_name=f"{OURS}-endpoint-2")
    result, _ = _run(_event("Update", stack_id, props=renamed, old_props=_props()))
    assert result["PhysicalResourceId"] != OUR_ENDPOINT  # a new physical id: CloudFormation deletes the old one


def _replace_by_new_logical_id(stack_id):
    # The construct moved or was renamed: a Create of the new resource, with the same properties.
    _run({**_event("Create", stack_id), "LogicalResourceId": "MovedEndpointCleanup"})


@pytest.mark.parametrize("replace", [_replace_by_update, _replace_by_new_logical_id], ids=["new-physical-id", "new-logical-id"])
def test_delete_of_the_old_resource_after_a_replacement_leaves_everything(
    sm, scaling, stepfunctions, deployer, stack_id, deployed, replace
):
    before = _everything(sm, scaling, stepfunctions, deployer)
    _stack_is_now(stack_id, "UPDATE_IN_PROGRESS")
    replace(stack_id)

    _stack_is_now(stack_id, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
    _run(_event("Delete", stack_id, physical_id=OUR_ENDPOINT))

    assert _everything(sm, scaling, stepfunctions, deployer) == before


@pytest.mark.parametrize(
    "rollback",
    ["UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"],
)
def test_delete_in_the_rollback_of_a_failed_stack_operation_leaves_everything(
    sm, scaling, stepfunctions, deployer, stack_id, deployed, rollback
):
    before = _everything(sm, scaling, stepfunctions, deployer)
    _stack_is_now(stack_id, "UPDATE_IN_PROGRESS" if rollback.startswith("UPDATE") else "CREATE_IN_PROGRESS")
    _run(_event("Create", stack_id))

    _stack_is_now(stack_id, rollback)
    _run(_event("Delete", stack_id))

    assert _everything(sm, scaling, stepfunctions, deployer) == before


def test_delete_keeps_the_physical_resource_id(stack_id, deployed):
    # The Provider framework rejects a Delete whose answer changes the physical id.
    _stack_is_now(stack_id, "DELETE_IN_PROGRESS")

    result, _ = _run(_event("Delete", stack_id, physical_id="an-earlier-id"))

    assert result == {"PhysicalResourceId": "an-earlier-id"}
