"""The endpoint shim and the Step Functions harness behave like the AWS they stand in for."""

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.behaviour import sfn_harness
from tests.behaviour.endpoint_shim import UpdateCall, endpoint_shim

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# One session for the module: its clients skip reloading service models (moto resets the default
# session on every mock_aws()), which keeps these tests fast.
SESSION = boto3.Session(region_name=REGION)




@pytest.fixture
def shim(aws_env):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        with endpoint_shim(region=REGION) as controller:
            yield controller


@pytest.fixture
def sm(shim):
    return SESSION.client("sagemaker")


@pytest.fixture
def sfn(shim):
    return SESSION.client("stepfunctions")


def _variant(name, model, weight, instance_type="ml.m5.large", count=1):
    return {
        "VariantName": name,
        "ModelName": model,
        "InstanceType": instance_type,
        "InitialInstanceCount": count,
        "InitialVariantWeight": weight,
    }


def _read_until_settled(sm, endpoint="ep", max_reads=10):
    statuses = []
    for _ in range(max_reads):
        described = sm.describe_endpoint(EndpointName=endpoint)
        statuses.append(described["EndpointStatus"])
        if described["EndpointStatus"] not in ("Creating", "Updating"):
            return described, statuses
    raise AssertionError(f"still in progress after {max_reads} reads: {statuses}")


@pytest.fixture
def endpoint(sm):
    """"ep" InService on config "blue" (model-a); config "canary" routes 10% to model-b."""
    for model in ("model-a", "model-b"):
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})
    sm.create_endpoint_config(
        EndpointConfigName="blue", ProductionVariants=[_variant("blue", "model-a", 1.0)]
    )
    sm.create_endpoint_config(
        EndpointConfigName="canary",
        ProductionVariants=[_variant("blue", "model-a", 0.9), _variant("green", "model-b", 0.1)],
    )
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="blue")
    _read_until_settled(sm)
    return "ep"


def _error(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


# --- SageMaker endpoints ---------------------------------------------------------------------


def test_create_endpoint_is_creating_for_one_read_then_in_service(sm, endpoint):
    sm.create_endpoint(EndpointName="ep2", EndpointConfigName="blue")

    described, statuses = _read_until_settled(sm, "ep2")

    assert statuses == ["Creating", "InService"]
    assert described["ProductionVariants"] == [
        {
            "VariantName": "blue",
            "CurrentWeight": 1.0,
            "DesiredWeight": 1.0,
            "CurrentInstanceCount": 1,
            "DesiredInstanceCount": 1,
        }
    ]


def test_a_scripted_create_failure_leaves_the_endpoint_failed(shim, sm, endpoint):
    shim.next_create("fail", reason="image not found")
    sm.create_endpoint(EndpointName="ep2", EndpointConfigName="blue")

    described, _ = _read_until_settled(sm, "ep2")

    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == "image not found"
    assert "ProductionVariants" not in described


def test_delete_is_deleting_for_the_configured_reads_then_the_endpoint_is_gone(shim, sm, endpoint):
    shim.reads_while_deleting = 1
    sm.delete_endpoint(EndpointName="ep")

    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Deleting"
    with pytest.raises(ClientError) as excinfo:
        sm.describe_endpoint(EndpointName="ep")
    assert _error(excinfo) == (
        "ValidationException",
        f"Could not find endpoint 'arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/ep'.",
    )


def test_a_scripted_delete_failure_leaves_the_endpoint_failed_with_its_reason(shim, sm, endpoint):
    shim.next_delete("fail", reason="internal failure while releasing instances")
    sm.delete_endpoint(EndpointName="ep")

    described = sm.describe_endpoint(EndpointName="ep")

    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == "internal failure while releasing instances"


def test_update_goes_updating_then_in_service_on_the_new_config(shim, sm, endpoint):
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="canary")

    updating = sm.describe_endpoint(EndpointName="ep")
    described, _ = _read_until_settled(sm)

    assert updating["EndpointStatus"] == "Updating"
    assert updating["EndpointConfigName"] == "blue"
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == "canary"
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "canary"
    assert "FailureReason" not in described
    assert [(v["VariantName"], v["CurrentWeight"], v["DesiredWeight"]) for v in described[
        "ProductionVariants"
    ]] == [("blue", 0.9, 0.9), ("green", 0.1, 0.1)]
    assert shim.update_calls == [UpdateCall("ep", "canary")]


@pytest.mark.parametrize(
    ("outcome", "status", "config"),
    [
        ("fail", "Failed", "blue"),
        ("silent_rollback", "InService", "blue"),
        ("rollback_failed", "UpdateRollbackFailed", "blue"),
    ],
)
def test_a_scripted_update_outcome_ends_the_update(shim, sm, endpoint, outcome, status, config):
    shim.next_update(outcome)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="canary")

    described, statuses = _read_until_settled(sm)

    assert statuses == ["Updating", status]
    assert described["EndpointConfigName"] == config
    assert described["FailureReason"]
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["blue"]


def test_update_is_refused_while_the_endpoint_is_updating(shim, sm, endpoint):
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="canary")

    with pytest.raises(ClientError) as excinfo:
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="blue")

    code, message = _error(excinfo)
    assert code == "ValidationException"
    assert message.startswith("Cannot update in-progress endpoint")
    assert [(c.endpoint_config_name, c.accepted) for c in shim.update_calls] == [
        ("canary", True),
        ("blue", False),
    ]


def test_update_to_an_unknown_config_is_refused(sm, endpoint):
    with pytest.raises(ClientError) as excinfo:
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="nope")

    code, message = _error(excinfo)
    assert code == "ValidationException"
    assert message.startswith("Could not find endpoint configuration")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService"


def test_update_is_refused_while_an_autoscaled_variant_would_change_instance_type(sm, endpoint):
    sm.create_endpoint_config(
        EndpointConfigName="bigger",
        ProductionVariants=[_variant("blue", "model-a", 1.0, "ml.m5.xlarge")],
    )
    SESSION.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/ep/variant/blue",
        ScalableDimension=VARIANT_DIMENSION,
        MinCapacity=1,
        MaxCapacity=2,
    )

    with pytest.raises(ClientError) as excinfo:
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="bigger")

    assert _error(excinfo)[0] == "ValidationException"


def test_weights_update_goes_updating_and_keeps_the_instance_count(sm, endpoint):
    sm.update_endpoint_weights_and_capacities(
        EndpointName="ep",
        DesiredWeightsAndCapacities=[{"VariantName": "blue", "DesiredWeight": 0.5}],
    )

    updating = sm.describe_endpoint(EndpointName="ep")
    described, _ = _read_until_settled(sm)

    assert updating["EndpointStatus"] == "Updating"
    (variant,) = updating["ProductionVariants"]
    assert (variant["CurrentWeight"], variant["DesiredWeight"]) == (1.0, 0.5)
    assert described["ProductionVariants"] == [
        {
            "VariantName": "blue",
            "CurrentWeight": 0.5,
            "DesiredWeight": 0.5,
            "CurrentInstanceCount": 1,
            "DesiredInstanceCount": 1,
        }
    ]


def test_create_model_of_an_existing_name_is_refused(sm):
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})

    with pytest.raises(ClientError) as excinfo:
        sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "other"})

    code, message = _error(excinfo)
    assert (code, message.startswith("Cannot create already existing model")) == (
        "ValidationException",
        True,
    )


def test_create_model_from_a_model_package(sm):
    package = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/canary/3"

    sm.create_model(
        ModelName="m", ExecutionRoleArn=ROLE, Containers=[{"ModelPackageName": package}]
    )

    assert sm.describe_model(ModelName="m")["Containers"] == [{"ModelPackageName": package}]


def test_list_models_filters_by_name_newest_first(sm):
    for name in ("canary-1", "other", "canary-2"):
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})

    models = sm.list_models(NameContains="canary")["Models"]

    assert [m["ModelName"] for m in models] == ["canary-2", "canary-1"]


# --- Application Auto Scaling ----------------------------------------------------------------


def test_deregistering_an_unregistered_target_is_object_not_found(shim):
    scaling = SESSION.client("application-autoscaling")

    with pytest.raises(ClientError) as excinfo:
        scaling.deregister_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId="endpoint/ep/variant/blue",
            ScalableDimension=VARIANT_DIMENSION,
        )

    assert _error(excinfo)[0] == "ObjectNotFoundException"


# --- Step Functions --------------------------------------------------------------------------


def test_applicationautoscaling_sdk_tasks_reach_application_auto_scaling(sfn):
    definition = {
        "StartAt": "Register",
        "States": {
            "Register": {
                "Type": "Task",
                "Resource": (
                    "arn:aws:states:::aws-sdk:applicationautoscaling:registerScalableTarget"
                ),
                "Parameters": {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": "endpoint/ep/variant/blue",
                    "ScalableDimension": VARIANT_DIMENSION,
                    "MinCapacity": 1,
                    "MaxCapacity": 2,
                },
                "End": True,
            }
        },
    }
    arn = sfn_harness.create_state_machine(sfn, definition, "register")

    execution = sfn_harness.run(sfn, arn, {}, name="register-1", timeout_s=10)

    assert execution.status == "SUCCEEDED", execution.cause
    targets = SESSION.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker"
    )["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [
        ("endpoint/ep/variant/blue", 1, 2)
    ]


UPDATE_AND_WAIT = {
    "StartAt": "Update",
    "States": {
        "Update": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sagemaker:updateEndpoint",
            "Parameters": {"EndpointName.$": "$.endpoint", "EndpointConfigName.$": "$.config"},
            "ResultPath": None,
            "Next": "Describe",
        },
        "Describe": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
            "Parameters": {"EndpointName.$": "$.endpoint"},
            "ResultSelector": {
                "Status.$": "$.EndpointStatus",
                "Config.$": "$.EndpointConfigName",
            },
            "ResultPath": "$.described",
            "Next": "InService?",
        },
        "InService?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.described.Status", "StringEquals": "InService", "Next": "Done"},
                {"Variable": "$.described.Status", "StringEquals": "Updating", "Next": "Wait"},
            ],
            "Default": "Broken",
        },
        "Wait": {"Type": "Wait", "Seconds": 0, "Next": "Describe"},
        "Broken": {"Type": "Fail", "Error": "EndpointBroken"},
        "Done": {"Type": "Succeed"},
    },
}


def test_a_state_machine_updates_and_waits_for_the_endpoint(shim, sfn, endpoint):
    shim.reads_while_updating = 2
    arn = sfn_harness.create_state_machine(sfn, UPDATE_AND_WAIT, "update-and-wait")

    execution = sfn_harness.run(sfn, arn, {"endpoint": "ep", "config": "canary"}, name="deploy-1")

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["described"] == {"Status": "InService", "Config": "canary"}
    assert execution.states_entered == [
        "Update", "Describe", "InService?", "Wait", "Describe", "InService?", "Wait", "Describe",
        "InService?", "Done",
    ]
    assert shim.update_calls == [UpdateCall("ep", "canary")]


def test_a_refused_update_fails_the_sdk_task_with_a_sagemaker_error(sfn, endpoint):
    arn = sfn_harness.create_state_machine(sfn, UPDATE_AND_WAIT, "update-and-wait")

    execution = sfn_harness.run(sfn, arn, {"endpoint": "ep", "config": "nope"}, name="deploy-1")

    assert execution.status == "FAILED"
    assert execution.error.startswith("SageMaker.")
    assert "Could not find endpoint configuration" in execution.cause


def test_list_executions_from_a_state_machine_is_most_recent_first(sfn):
    slow = sfn_harness.create_state_machine(
        sfn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 0, "End": True}}}, "noop"
    )
    for i in range(3):
        sfn_harness.run(sfn, slow, {}, name=f"run-{i}", timeout_s=10)
    lister = sfn_harness.create_state_machine(
        sfn,
        {
            "StartAt": "List",
            "States": {
                "List": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:sfn:listExecutions",
                    "Parameters": {"StateMachineArn": slow, "StatusFilter": "SUCCEEDED"},
                    "ResultSelector": {"Names.$": "$.Executions[*].Name"},
                    "End": True,
                }
            },
        },
        "lister",
    )

    execution = sfn_harness.run(sfn, lister, {}, name="list-1", timeout_s=10)

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output == {"Names": ["run-2", "run-1", "run-0"]}


def test_list_executions_orders_finished_executions_by_stop_date(sfn):
    machine = sfn_harness.create_state_machine(
        sfn,
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": True}}},
        "waiter",
    )
    first = sfn_harness.start(sfn, machine, {"s": 1}, name="started-first")
    second = sfn_harness.start(sfn, machine, {"s": 0}, name="started-second")
    for execution_arn in (second, first):
        sfn_harness.wait(sfn, execution_arn, timeout_s=10)

    names = [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]

    assert names == ["started-first", "started-second"]


def test_run_reads_the_history_when_moto_cannot_describe_the_execution(sfn, endpoint):
    # describeEndpoint's raw timestamps make moto's DescribeExecution fail to serialise.
    definition = {
        "StartAt": "Describe",
        "States": {
            "Describe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
                "Parameters": {"EndpointName": "ep"},
                "End": True,
            }
        },
    }
    arn = sfn_harness.create_state_machine(sfn, definition, "describe")

    execution = sfn_harness.run(sfn, arn, {}, name="describe-1", timeout_s=10)

    assert execution.status == "SUCCEEDED"
    assert execution.output["EndpointStatus"] == "InService"


def test_the_shim_is_undone_on_exit(aws_env):
    with mock_aws():
        sm = SESSION.client("sagemaker")
        with endpoint_shim(region=REGION):
            pass

        with pytest.raises(NotImplementedError):
            sm.update_endpoint(EndpointName="ep", EndpointConfigName="blue")


# --- resolve() -------------------------------------------------------------------------------


def test_resolve_joins_refs_attributes_and_pseudo_parameters():
    value = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":sns:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":",
                {"Ref": "Topic"},
                "/",
                {"Fn::GetAtt": ["Role", "Arn"]},
            ],
        ]
    }
    refs = {"Topic": "alerts", "Role": {"Arn": "role-arn"}}

    assert sfn_harness.resolve(value, refs) == "arn:aws:sns:eu-west-1:123456789012:alerts/role-arn"


def test_resolve_names_an_unknown_reference():
    with pytest.raises(KeyError, match="Missing"):
        sfn_harness.resolve({"Fn::Join": ["", [{"Ref": "Missing"}]]}, {})


def test_state_machine_definition_parses_the_resolved_definition_string():
    template = {
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": {
                        "Fn::Join": [
                            "",
                            [
                                '{"StartAt":"P","States":{"P":{"Type":"Pass","Result":"',
                                {"Ref": "T"},
                                '","End":true}}}',
                            ],
                        ]
                    }
                },
            }
        }
    }

    definition = sfn_harness.state_machine_definition(template, {"T": "topic"})

    assert definition["States"]["P"]["Result"] == "topic"


# -- serverless variants -----------------------------------------------------------------------

SERVERLESS = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}


def _serverless(name, model):
    return {"VariantName": name, "ModelName": model, "ServerlessConfig": SERVERLESS}


@pytest.fixture
def serverless_models(sm):
    sm.create_model(ModelName="plain", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})
    sm.create_model(
        ModelName="in-a-vpc", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"}, VpcConfig={"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
    )


def test_a_serverless_endpoint_reports_its_serverless_config_and_no_instances(sm, serverless_models):
    sm.create_endpoint_config(EndpointConfigName="sl", ProductionVariants=[_serverless("blue", "plain")])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="sl")

    described, _ = _read_until_settled(sm)

    (variant,) = described["ProductionVariants"]
    assert variant["CurrentServerlessConfig"] == SERVERLESS and "CurrentInstanceCount" not in variant


@pytest.mark.parametrize(
    "variants, extra",
    [
        ([_serverless("blue", "plain"), _serverless("green", "plain")], {}),
        ([_serverless("blue", "plain")], {"DataCaptureConfig": {"EnableCapture": True, "InitialSamplingPercentage": 20, "DestinationS3Uri": "s3://b/c", "CaptureOptions": [{"CaptureMode": "Input"}]}}),
        ([{**_serverless("blue", "plain"), "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}], {}),
        ([_serverless("blue", "in-a-vpc")], {}),
    ],
    ids=["two variants", "data capture", "instance settings", "model in a VPC"],
)
def test_a_serverless_endpoint_config_refuses_what_serverless_endpoints_do_not_support(sm, serverless_models, variants, extra):
    with pytest.raises(ClientError) as error:
        sm.create_endpoint_config(EndpointConfigName="sl", ProductionVariants=variants, **extra)

    assert error.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize("start, then", [("instances", "serverless"), ("serverless", "instances")])
def test_an_endpoint_cannot_be_updated_between_instances_and_serverless(sm, serverless_models, start, then):
    configs = {"instances": [_variant("blue", "plain", 1.0)], "serverless": [_serverless("blue", "plain")]}
    for name, variants in configs.items():
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName=start)
    _read_until_settled(sm)

    with pytest.raises(ClientError) as error:
        sm.update_endpoint(EndpointName="ep", EndpointConfigName=then)

    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert sm.describe_endpoint(EndpointName="ep")["EndpointConfigName"] == start
