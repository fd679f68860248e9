"""The calls of `sdk_errors` on their own, synthesized by CDK and run in the harness: which Causes each
service's call retries, how long it waits, where it gives up, and what a call without a handler of its own
ends with.

AWS documents the error names (each service's generic name for codes its API model does not declare, such as
`SageMaker.SageMakerException`, `S3.S3Exception` or `EventBridge.AmazonEventBridgeException`) but not the exact
text of `Cause`, so every plausible shape is tried: the SDK's text ("<message> (Service: SageMaker, Status
Code: 400, Request ID: ...)", which the harness builds around the injected message), the older SDK's text with
"Error Code: ...", the code as a prefix, and the code inside JSON.
"""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from moto import mock_aws

from mlops_constructs.canary_deployer.states import RETRY
from mlops_constructs.sdk_errors import (
    BACKOFF_SECONDS,
    SERVICE_ERRORS,
    GetItemCall,
    PutEventsCall,
    RawSdkCall,
    RetriesWhatIsTransient,
    SdkCall,
    end_uncaught_sdk_errors,
)
from stacks.environment import new_app
from tests.behaviour import sfn_harness
from tests.behaviour.endpoint_shim import endpoint_shim
from tests.behaviour.sfn_harness import Fault

REGION = "eu-west-1"
CALL = "List the models"
HANDLED = "Handled"
TABLE = "calls"
NOT_AUTHORIZED = "User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized to perform: {action}"

# (code, message as the service answers it, status): the message is the first part of the Cause.
TRANSIENT = {
    "throttled, as the SDK words it": ("ThrottlingException", "Rate exceeded", 400),
    "throttled, older SDK text": ("ThrottlingException", "Rate exceeded (Service: AmazonSageMaker; Status Code: 400; Error Code: ThrottlingException; Request ID: 1a2b; Proxy: null)", 400),
    "throttled, the code as a prefix": ("ThrottlingException", "ThrottlingException: Rate exceeded", 400),
    "throttled, the code inside JSON": ("ThrottlingException", '{"__type":"ThrottlingException","message":"Rate Exceeded."}', 400),
    "too many requests": ("TooManyRequestsException", "Too Many Requests", 429),
    "an internal failure": ("InternalFailure", "We encountered an internal error. Please try again.", 500),
    "unavailable": ("ServiceUnavailable", "Service Unavailable", 503),
}
PERMANENT = {
    "a bad name": ("ValidationException", "1 validation error detected: Value 'a b' at 'modelName' failed to satisfy constraint", 400),
    "a name that exists": ("ValidationException", 'Cannot create already existing model "arn:aws:sagemaker:eu-west-1:123456789012:model/m".', 400),
    "a missing endpoint": ("ValidationException", 'Could not find endpoint "mlops-dev-endpoint".', 400),
    "the code as a prefix": ("ValidationException", "ValidationException: Cannot update in-progress endpoint", 400),
    "the code inside JSON": ("ValidationException", '{"__type":"ValidationException","message":"Cannot update failed endpoint"}', 400),
    "no permission": ("AccessDeniedException", NOT_AUTHORIZED.format(action="sagemaker:ListModels"), 400),
}
# The other services' calls, by the service name of their task: the transient answers each gives under its
# generic name, and the refusals. The first transient answer is the one a throttle that never stops gives.
OTHER_TRANSIENT = {
    "cloudwatch": {
        "throttled": ("Throttling", "Rate exceeded", 400),
        "throttled, older SDK text": ("Throttling", "Rate exceeded (Service: AmazonCloudWatch; Status Code: 400; Error Code: Throttling; Request ID: 1a2b)", 400),
        "unavailable": ("ServiceUnavailable", "Service Unavailable", 503),
    },
    "applicationautoscaling": {
        "rate exceeded": ("RateExceeded", "Rate exceeded", 400),
        "rate exceeded, the code inside JSON": ("RateExceeded", '{"__type":"RateExceeded","message":"Request limit exceeded"}', 400),
        "throttled": ("ThrottlingException", "Rate exceeded", 400),
    },
    "sfn": {
        "throttled": ("ThrottlingException", "Rate exceeded", 400),
        "an internal failure": ("InternalFailure", "An internal error occurred", 500),
    },
    "s3": {
        "slow down": ("SlowDown", "Please reduce your request rate.", 503),
        "slow down, older SDK text": ("SlowDown", "Please reduce your request rate. (Service: Amazon S3; Status Code: 503; Error Code: SlowDown; Request ID: 1a2b)", 503),
        "slow down, the code inside JSON": ("SlowDown", '{"Code":"SlowDown","Message":"Please reduce your request rate."}', 400),
        "an internal error": ("InternalError", "We encountered an internal error. Please try again.", 500),
    },
    "events": {
        "an internal failure": ("InternalFailure", "An internal error occurred", 500),
        "unavailable": ("ServiceUnavailable", "Service Unavailable", 503),
    },
    "dynamodb": {
        "unavailable": ("ServiceUnavailable", "Service Unavailable", 503),
        "throttled, the code inside JSON": ("Throttled", '{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}', 400),
        # As an SDK that does not declare ThrottlingException words an on-demand table's throttle.
        "throttled on demand, older SDK text": (
            "Throttled",
            "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. "
            "(Service: dynamodb; Status Code: 400; Error Code: ThrottlingException; Request ID: 1a2b)",
            400,
        ),
        "an internal failure": ("InternalFailure", "Internal server error", 500),
    },
}
OTHER_PERMANENT = {
    "cloudwatch": {"no permission": ("AccessDenied", NOT_AUTHORIZED.format(action="cloudwatch:DescribeAlarms"), 403)},
    "applicationautoscaling": {"no permission": ("AccessDeniedException", NOT_AUTHORIZED.format(action="application-autoscaling:DescribeScalableTargets"), 400)},
    "sfn": {"no permission": ("AccessDeniedException", NOT_AUTHORIZED.format(action="states:ListStateMachines"), 400)},
    "s3": {
        "access disabled": ("AllAccessDisabled", "All access to this object has been disabled", 403),
        "a bad argument": ("InvalidArgument", "Invalid argument.", 400),
    },
    "events": {"a bad request": ("ValidationException", "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10", 400)},
    "dynamodb": {
        "no permission": ("AccessDeniedException", NOT_AUTHORIZED.format(action="dynamodb:GetItem"), 400),
        "a bad request": ("ValidationException", "One or more parameter values were invalid: Missing the key Id in the item", 400),
    },
}
# Errors the services' API models declare: named `<Service>.<Code>`, so never the generic name's decision.
DECLARED_TRANSIENT = {"events": "ThrottlingException", "dynamodb": "ProvisionedThroughputExceededException", "applicationautoscaling": "ConcurrentUpdateException"}
DECLARED_REFUSALS = {"events": "AccessDeniedException", "s3": "AccessDenied", "applicationautoscaling": "ValidationException", "sfn": "InvalidArn"}


def _other_call(stack: cdk.Stack, service: str) -> RetriesWhatIsTransient:
    """One call of `service` as the constructs make them: `aws-sdk` tasks, S3's as raw state JSON (as the deployer
    writes its release records), EventBridge and DynamoDB through their optimised integrations."""
    if service == "events":
        entry = tasks.EventBridgePutEventsEntry(source="calls", detail_type="Call", detail=sfn.TaskInput.from_object({"call": 1}))
        return PutEventsCall(stack, CALL, entries=[entry], retry=RETRY, result_path=sfn.JsonPath.DISCARD)
    if service == "dynamodb":
        table = dynamodb.Table.from_table_name(stack, "Table", TABLE)
        return GetItemCall(stack, CALL, table=table, key={"Id": tasks.DynamoAttributeValue.from_string("x")}, retry=RETRY, result_path=sfn.JsonPath.DISCARD)
    if service == "s3":
        state = {"Type": "Task", "Resource": f"arn:{stack.partition}:states:::aws-sdk:s3:listBuckets", "Parameters": {}, "ResultPath": "$.listed"}
        return RawSdkCall(stack, CALL, service="s3", state_json=state, retry=RETRY)
    action, parameters = {
        "cloudwatch": ("describeAlarms", {}),
        "applicationautoscaling": ("describeScalableTargets", {"ServiceNamespace": "sagemaker"}),
        "sfn": ("listStateMachines", {}),
    }[service]
    return SdkCall(stack, CALL, service=service, action=action, parameters=parameters, resources=["*"], retry=RETRY, result_path=sfn.JsonPath.DISCARD)


@pytest.fixture(scope="module")
def other_services() -> dict[str, dict]:
    """Each other service's call, caught by a handler of its own, in one state machine each of one app."""
    app = new_app()
    stacks = {service: cdk.Stack(app, f"Calls{index}", env=cdk.Environment(account="123456789012", region=REGION)) for index, service in enumerate(OTHER_TRANSIENT)}
    for service, stack in stacks.items():
        call = _other_call(stack, service)
        call.add_catch(sfn.Succeed(stack, HANDLED), errors=["States.ALL"], result_path="$.failure")
        end_uncaught_sdk_errors(stack)
        sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(call.next(sfn.Succeed(stack, "Done"))))
    assembly = app.synth()
    return {service: sfn_harness.state_machine_definition(assembly.get_stack_by_name(stack.stack_name).template, {}) for service, stack in stacks.items()}


def _definition(with_handler: bool) -> dict:
    """A state machine of one SageMaker call, caught (or not) by a handler of its own, as the constructs
    build it."""
    app = new_app()
    stack = cdk.Stack(app, "Calls", env=cdk.Environment(account="123456789012", region=REGION))
    call = SdkCall(stack, CALL, service="sagemaker", action="listModels", parameters={}, resources=["*"], retry=RETRY, result_path=sfn.JsonPath.DISCARD)
    if with_handler:
        call.add_catch(sfn.Succeed(stack, HANDLED), errors=["States.ALL"], result_path="$.failure")
    end_uncaught_sdk_errors(stack)
    sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(call.next(sfn.Succeed(stack, "Done"))))
    template = app.synth().get_stack_by_name("Calls").template
    return sfn_harness.state_machine_definition(template, {})


def _polled_definition() -> dict:
    """The call polled twice in a loop whose counter (at `$.polls`, rewritten by every poll) holds the call's
    retries, as the deployer's polls of an endpoint are built."""
    app = new_app()
    stack = cdk.Stack(app, "Polls", env=cdk.Environment(account="123456789012", region=REGION))
    start = sfn.Pass(stack, "Start polling", result=sfn.Result.from_object({"count": 0}), result_path="$.polls")
    call = SdkCall(stack, CALL, service="sagemaker", action="listModels", parameters={}, resources=["*"], retry=RETRY, result_path=sfn.JsonPath.DISCARD, retries_within="$.polls")
    call.add_catch(sfn.Succeed(stack, HANDLED), errors=["States.ALL"], result_path="$.failure")
    count = sfn.Pass(stack, "Count a poll", parameters={"count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.polls.count"), 1)}, result_path="$.polls")
    polled = sfn.Choice(stack, "Polled twice?").when(sfn.Condition.number_greater_than_equals("$.polls.count", 2), sfn.Succeed(stack, "Done")).otherwise(call)
    sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(start.next(call).next(count).next(polled)))
    return sfn_harness.state_machine_definition(app.synth().get_stack_by_name("Polls").template, {})


@pytest.fixture(scope="module")
def handled() -> dict:
    return _definition(with_handler=True)


@pytest.fixture(scope="module")
def unhandled() -> dict:
    return _definition(with_handler=False)


def _run(definition: dict, fault: Fault, retry_waits: list[float] | None = None) -> tuple[sfn_harness.Execution, dict[str, list[int]]]:
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        endpoint_shim(REGION),
        sfn_harness.string_matches_as_on_aws(),
        sfn_harness.uncatchable_as_on_aws(),
        sfn_harness.eventbridge_errors_named(),
        sfn_harness.dynamodb_errors_named(),
        sfn_harness.parsed_once(),
        sfn_harness.retry_waits() as retried,
        sfn_harness.state_waits() as waits,
        sfn_harness.injected_faults() as faults,
    ):
        sfn_harness.world_client("dynamodb", REGION).create_table(
            TableName=TABLE, KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}], AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST"
        )
        faults[CALL] = fault
        client = sfn_harness.world_client("stepfunctions", REGION)
        arn = sfn_harness.create_state_machine(client, definition, "calls")
        execution = sfn_harness.run(client, arn, {}, "only")
        if retry_waits is not None:
            retry_waits.extend(retried)
        return execution, waits


@pytest.mark.parametrize("shape", TRANSIENT, ids=str)
def test_a_transient_cause_is_retried_after_a_wait(handled, shape):
    code, message, status = TRANSIENT[shape]
    fault = Fault(code, times=2, message=message, status=status)

    execution, waits = _run(handled, fault)

    assert execution.status == "SUCCEEDED"
    assert "Done" in execution.states_entered and HANDLED not in execution.states_entered
    assert (fault.calls, waits) == (2, {f"Wait before retrying {CALL}": list(BACKOFF_SECONDS[:2])})


@pytest.mark.parametrize("shape", PERMANENT, ids=str)
def test_a_permanent_cause_goes_to_the_handler_at_once(handled, shape):
    code, message, status = PERMANENT[shape]
    fault = Fault(code, message=message, status=status)

    execution, waits = _run(handled, fault)

    assert execution.states_entered[-1] == HANDLED
    assert (fault.calls, waits) == (1, {})
    assert execution.output["failure"]["Error"] == "SageMaker.SageMakerException"


def test_a_throttle_that_never_stops_goes_to_the_handler_after_the_bound(handled):
    fault = Fault("ThrottlingException", message="Rate exceeded")

    execution, waits = _run(handled, fault)

    assert execution.states_entered[-1] == HANDLED
    assert execution.output["failure"]["Cause"].startswith("Rate exceeded")
    # Seven attempts, about two minutes of waiting: the backoff of the other services' Retry rules.
    assert (fault.calls, waits) == (7, {f"Wait before retrying {CALL}": [2, 4, 8, 16, 32, 60]})


def test_a_polled_call_has_the_whole_bound_again_at_every_poll():
    # Each poll is throttled as often as the bound allows, and goes through at its last attempt.
    fault = Fault("ThrottlingException", message="Rate exceeded", passes=(7, 14))

    execution, waits = _run(_polled_definition(), fault)

    assert execution.states_entered[-1] == "Done"
    assert (fault.calls, waits) == (12, {f"Wait before retrying {CALL}": [*BACKOFF_SECONDS, *BACKOFF_SECONDS]})


def test_a_call_without_a_handler_fails_the_execution_with_the_error_it_met(unhandled):
    fault = Fault("ValidationException", message="1 validation error detected")

    execution, waits = _run(unhandled, fault)

    assert (execution.status, execution.error, fault.calls, waits) == ("FAILED", "SageMaker.SageMakerException", 1, {})
    assert execution.cause.startswith("1 validation error detected (Service: SageMaker")


def test_a_call_without_a_handler_still_retries_a_throttle(unhandled):
    fault = Fault("ThrottlingException", times=1, message="Rate exceeded")

    execution, waits = _run(unhandled, fault)

    assert (execution.status, fault.calls, waits) == ("SUCCEEDED", 1, {f"Wait before retrying {CALL}": [BACKOFF_SECONDS[0]]})


def test_a_task_name_too_long_for_its_retry_states_is_refused():
    stack = cdk.Stack(cdk.App(), "Calls")
    call = SdkCall(stack, "x" * 60, service="sagemaker", action="listModels", parameters={}, resources=["*"], retry=RETRY)

    with pytest.raises(ValueError, match="longer than Step Functions' 80 characters"):
        call.add_catch(sfn.Succeed(stack, HANDLED))


def test_an_error_without_a_cause_goes_to_the_handler_without_a_runtime_error(handled):
    # Entered at the decision, with the error as the Catch would put it had the error come without a Cause:
    # reading the absent Cause in a comparison would be a States.Runtime error, which no Catch handles.
    from_the_decision = {**handled, "StartAt": f"Retry {CALL}?"}
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        sfn_harness.string_matches_as_on_aws(),
        sfn_harness.uncatchable_as_on_aws(),
    ):
        client = sfn_harness.world_client("stepfunctions", REGION)
        arn = sfn_harness.create_state_machine(client, from_the_decision, "decision")
        execution = sfn_harness.run(client, arn, {"failure": {"Error": "SageMaker.SageMakerException"}}, "only")

    assert (execution.status, execution.states_entered) == ("SUCCEEDED", [f"Retry {CALL}?", HANDLED])


def test_two_calls_that_would_share_a_retry_counter_are_refused():
    stack = cdk.Stack(cdk.App(), "Calls")
    for name in ("Find the model!", "Find the model?"):
        SdkCall(stack, name, service="sagemaker", action="listModels", parameters={}, resources=["*"], retry=RETRY)

    with pytest.raises(ValueError, match=r"calls 'Find the model!' and 'Find the model\?' would count their retries at one path"):
        end_uncaught_sdk_errors(stack)


def _shapes(table: dict[str, dict[str, tuple[str, str, int]]]) -> list[tuple[str, str]]:
    return [(service, shape) for service, shapes in table.items() for shape in shapes]


@pytest.mark.parametrize(("service", "shape"), _shapes(OTHER_TRANSIENT), ids=str)
def test_each_service_retries_a_transient_cause_of_its_generic_error_after_a_wait(other_services, service, shape):
    code, message, status = OTHER_TRANSIENT[service][shape]
    fault = Fault(code, times=2, message=message, status=status)

    execution, waits = _run(other_services[service], fault)

    assert execution.states_entered[-1] == "Done"
    assert (fault.calls, waits) == (2, {f"Wait before retrying {CALL}": list(BACKOFF_SECONDS[:2])})


@pytest.mark.parametrize(("service", "shape"), _shapes(OTHER_PERMANENT), ids=str)
def test_each_service_sends_a_refusal_under_its_generic_error_to_the_handler_at_once(other_services, service, shape):
    code, message, status = OTHER_PERMANENT[service][shape]
    fault = Fault(code, message=message, status=status)

    execution, waits = _run(other_services[service], fault)

    assert execution.states_entered[-1] == HANDLED
    assert (execution.output["failure"]["Error"], fault.calls, waits) == (SERVICE_ERRORS[service].generic, 1, {})


@pytest.mark.parametrize("service", OTHER_TRANSIENT, ids=str)
def test_each_service_sends_a_transient_cause_that_never_stops_to_the_handler_after_the_bound(other_services, service):
    code, message, status = next(iter(OTHER_TRANSIENT[service].values()))
    fault = Fault(code, message=message, status=status)

    execution, waits = _run(other_services[service], fault)

    assert execution.states_entered[-1] == HANDLED
    assert (execution.output["failure"]["Error"], fault.calls, waits) == (SERVICE_ERRORS[service].generic, 7, {f"Wait before retrying {CALL}": list(BACKOFF_SECONDS)})


@pytest.mark.parametrize("service", DECLARED_TRANSIENT, ids=str)
def test_a_transient_error_the_service_declares_is_retried_by_the_retry_rule(other_services, service):
    fault = Fault(DECLARED_TRANSIENT[service], times=1, message="Rate exceeded")
    retry_waits: list[float] = []

    execution, waits = _run(other_services[service], fault, retry_waits)

    assert execution.states_entered[-1] == "Done"
    assert (fault.calls, len(retry_waits), waits) == (1, 1, {})


@pytest.mark.parametrize("service", DECLARED_REFUSALS, ids=str)
def test_a_refusal_the_service_declares_goes_to_the_handler_at_once(other_services, service):
    fault = Fault(DECLARED_REFUSALS[service], message="refused")

    execution, waits = _run(other_services[service], fault)

    assert execution.states_entered[-1] == HANDLED
    assert execution.output["failure"]["Error"] != SERVICE_ERRORS[service].generic
    assert (fault.calls, waits) == (1, {})


def test_a_task_class_that_names_no_service_errors_is_refused():
    class UnnamedServiceCall(RetriesWhatIsTransient, sfn.Pass):
        pass

    with pytest.raises(TypeError, match="UnnamedServiceCall names no service errors"):
        UnnamedServiceCall(cdk.Stack(cdk.App(), "Calls"), "Find the model", retry=RETRY)
