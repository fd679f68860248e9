"""moto's responses, written with the members of plain dicts picked by the names kept per member
(tests/conftest.py), are what moto's own picker writes: the same request answered both ways, on the same
state, gives the same bytes."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from moto.core import serialize

from tests.behaviour import sfn_harness

REGION = "eu-west-1"
# A history with the event kinds the deployer's have: states entered and exited, a task that failed, a Pass
# state's result, and the execution's failure with its error and cause.
DEFINITION = {
    "StartAt": "Note the input",
    "States": {
        "Note the input": {"Type": "Pass", "Result": {"noted": True}, "ResultPath": "$.noted", "Next": "Describe a missing endpoint"},
        "Describe a missing endpoint": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
            "Parameters": {"EndpointName": "missing"},
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Give up"}],
            "End": True,
        },
        "Give up": {"Type": "Fail", "Error": "DeploymentFailed", "Cause": "the endpoint is missing"},
    },
}


def _answered(client, operation: str, parameters: dict) -> bytes:
    """The body of moto's answer to `operation` with `parameters`."""
    bodies: list[bytes] = []

    def keep(http_response, **kwargs) -> None:
        bodies.append(http_response.content)

    client.meta.events.register("after-call", keep)
    try:
        getattr(client, operation)(**parameters)
    finally:
        client.meta.events.unregister("after-call", keep)
    (body,) = bodies
    return body


def _answered_by_moto_alone(monkeypatch, client, operation: str, parameters: dict) -> bytes:
    with monkeypatch.context() as patched:
        patched.setattr(serialize.XFormedAttributePicker, "get_possible_keys", serialize.XFormedAttributePicker.get_possible_keys.__wrapped__)
        patched.setattr(serialize.AttributePicker, "__call__", serialize.AttributePicker.__call__.__wrapped__)
        return _answered(client, operation, parameters)


@pytest.fixture
def world():
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), sfn_harness.parsed_once():
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn_harness.create_state_machine(sfn, DEFINITION, "members")
        execution = sfn_harness.run(sfn, machine, {"ModelPackageArn": "arn"}, "members-1")
        assert execution.status == "FAILED"
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_model_package_group(ModelPackageGroupName="models")
        sagemaker.create_model_package(
            ModelPackageGroupName="models",
            ModelApprovalStatus="Approved",
            InferenceSpecification={"Containers": [{"Image": "image", "ModelDataUrl": "s3://b/m.tar.gz"}], "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        )
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        cloudwatch.put_metric_alarm(
            AlarmName="errors", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold", Dimensions=[{"Name": "EndpointName", "Value": "e"}],
        )
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(TableName="locks", KeySchema=[{"AttributeName": "Endpoint", "KeyType": "HASH"}], AttributeDefinitions=[{"AttributeName": "Endpoint", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        dynamodb.put_item(TableName="locks", Item={"Endpoint": {"S": "e"}, "Held": {"M": {"By": {"S": "x"}, "Count": {"N": "2"}}}})
        yield {"sfn": sfn, "execution": execution.arn, "machine": machine, "sagemaker": sagemaker, "cloudwatch": cloudwatch, "dynamodb": dynamodb}


def test_the_suite_picks_members_of_plain_dicts_directly():
    assert getattr(serialize.AttributePicker.__call__, "picks_dict_members_directly", False)


def _package(world) -> str:
    return world["sagemaker"].list_model_packages(ModelPackageGroupName="models")["ModelPackageSummaryList"][0]["ModelPackageArn"]


@pytest.mark.parametrize(
    ("client", "operation", "parameters"),
    [
        pytest.param("sfn", "get_execution_history", lambda w: {"executionArn": w["execution"]}, id="a history of entered, failed and caught states"),
        pytest.param("sfn", "describe_execution", lambda w: {"executionArn": w["execution"]}, id="a failed execution"),
        pytest.param("sfn", "list_executions", lambda w: {"stateMachineArn": w["machine"]}, id="a list of executions"),
        pytest.param("sagemaker", "list_model_packages", lambda w: {"ModelPackageGroupName": "models"}, id="model packages"),
        pytest.param("sagemaker", "describe_model_package", lambda w: {"ModelPackageName": _package(w)}, id="a model package"),
        pytest.param("cloudwatch", "describe_alarms", lambda w: {"AlarmNames": ["errors"]}, id="alarms in the query protocol"),
        pytest.param("dynamodb", "get_item", lambda w: {"TableName": "locks", "Key": {"Endpoint": {"S": "e"}}}, id="an item of nested attribute values"),
    ],
)
def test_a_response_is_written_as_moto_writes_it(world, monkeypatch, client, operation, parameters):
    arguments = parameters(world)

    assert _answered(world[client], operation, arguments) == _answered_by_moto_alone(monkeypatch, world[client], operation, arguments)
