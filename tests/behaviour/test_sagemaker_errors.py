"""The SageMaker call of `sagemaker_errors` on its own, synthesized by CDK and run in the harness: which Causes
it retries, how long it waits, where it gives up, and what a call without a handler of its own ends with.

AWS documents the error name (`SageMaker.SageMakerException` for codes SageMaker's API model does not
declare) but not the exact text of `Cause`, so every plausible shape is tried: the SDK's text
("<message> (Service: SageMaker, Status Code: 400, Request ID: ...)", which the harness builds around the
injected message), the older SDK's text with "Error Code: ...", the code as a prefix, and the code inside JSON.
"""

from __future__ import annotations

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_stepfunctions as sfn
from moto import mock_aws

from mlops_constructs.canary_deployer.sagemaker_errors import BACKOFF_SECONDS, SageMakerCall, end_uncaught_sagemaker_errors
from mlops_constructs.canary_deployer.states import RETRY
from tests.behaviour import sfn_harness
from tests.behaviour.endpoint_shim import endpoint_shim
from tests.behaviour.sfn_harness import Fault

REGION = "eu-west-1"
CALL = "List the models"
HANDLED = "Handled"

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
    "no permission": ("AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized to perform: sagemaker:ListModels", 400),
}


def _definition(with_handler: bool) -> dict:
    """A state machine of one SageMaker call, caught (or not) by a handler of its own, as the constructs
    build it."""
    app = cdk.App()
    stack = cdk.Stack(app, "Calls", env=cdk.Environment(account="123456789012", region=REGION))
    call = SageMakerCall(stack, CALL, action="listModels", parameters={}, resources=["*"], retry=RETRY, result_path=sfn.JsonPath.DISCARD)
    if with_handler:
        call.add_catch(sfn.Succeed(stack, HANDLED), errors=["States.ALL"], result_path="$.failure")
    end_uncaught_sagemaker_errors(stack)
    sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(call.next(sfn.Succeed(stack, "Done"))))
    template = app.synth().get_stack_by_name("Calls").template
    return sfn_harness.state_machine_definition(template, {})


def _polled_definition() -> dict:
    """The call polled twice in a loop whose counter (at `$.polls`, rewritten by every poll) holds the call's
    retries, as the deployer's polls of an endpoint are built."""
    app = cdk.App()
    stack = cdk.Stack(app, "Polls", env=cdk.Environment(account="123456789012", region=REGION))
    start = sfn.Pass(stack, "Start polling", result=sfn.Result.from_object({"count": 0}), result_path="$.polls")
    call = SageMakerCall(stack, CALL, action="listModels", parameters={}, resources=["*"], retry=RETRY, result_path=sfn.JsonPath.DISCARD, retries_within="$.polls")
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


def _run(definition: dict, fault: Fault) -> tuple[sfn_harness.Execution, dict[str, list[int]]]:
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        endpoint_shim(REGION),
        sfn_harness.string_matches_as_on_aws(),
        sfn_harness.uncatchable_as_on_aws(),
        sfn_harness.retry_waits(),
        sfn_harness.state_waits() as waits,
        sfn_harness.injected_faults() as faults,
    ):
        faults[CALL] = fault
        client = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn_harness.create_state_machine(client, definition, "calls")
        return sfn_harness.run(client, arn, {}, "only"), waits


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
    call = SageMakerCall(stack, "x" * 60, action="listModels", parameters={}, resources=["*"], retry=RETRY)

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
        client = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn_harness.create_state_machine(client, from_the_decision, "decision")
        execution = sfn_harness.run(client, arn, {"failure": {"Error": "SageMaker.SageMakerException"}}, "only")

    assert (execution.status, execution.states_entered) == ("SUCCEEDED", [f"Retry {CALL}?", HANDLED])


def test_two_calls_that_would_share_a_retry_counter_are_refused():
    stack = cdk.Stack(cdk.App(), "Calls")
    for name in ("Find the model!", "Find the model?"):
        SageMakerCall(stack, name, action="listModels", parameters={}, resources=["*"], retry=RETRY)

    with pytest.raises(ValueError, match=r"'Find the model!' and 'Find the model\?' would count their retries at one path"):
        end_uncaught_sagemaker_errors(stack)
