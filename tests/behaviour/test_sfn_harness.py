"""The harness fails executions where AWS would, not where moto is kinder."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.string_operators import StringMatches

from tests.behaviour import sfn_harness
from tests.behaviour.endpoint_shim import endpoint_shim
from tests.behaviour.sfn_harness import Fault

# A selector indexing past the end of an array fails the state with States.Runtime, as the deployer's
# ResultSelectors would over an empty list.
INDEX_PAST_THE_END = {
    "StartAt": "Index past the end",
    "States": {
        "Index past the end": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sfn:listStateMachines",
            "Parameters": {},
            "ResultSelector": {"Item.$": "States.ArrayGetItem($$.Execution.Input.items, 3)"},
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Succeed"},
    },
}


def run_index_past_the_end() -> sfn_harness.Execution:
    client = boto3.client("stepfunctions", region_name="eu-west-1")
    arn = sfn_harness.create_state_machine(client, INDEX_PAST_THE_END, "index-past-the-end")
    return sfn_harness.run(client, arn, {"items": [1]}, "first")


@pytest.mark.parametrize("uncatchable_as_on_aws", [True, False], ids=["harness", "moto alone"])
def test_a_runtime_error_is_never_caught_by_states_all(uncatchable_as_on_aws: bool) -> None:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), sfn_harness.retry_waits():
        if uncatchable_as_on_aws:
            with sfn_harness.uncatchable_as_on_aws():
                execution = run_index_past_the_end()
            assert (execution.status, execution.error) == ("FAILED", "States.Runtime")
            assert "Caught" not in execution.states_entered
        else:
            # Why the harness is needed: moto alone catches it.
            assert run_index_past_the_end().status == "SUCCEEDED"


@pytest.mark.parametrize(
    ("error", "matcher", "caught"),
    [
        ("States.DataLimitExceeded", "States.ALL", False),
        ("States.DataLimitExceeded", "States.DataLimitExceeded", True),
        ("States.Runtime", "States.Runtime", False),
        ("States.TaskFailed", "States.ALL", True),
    ],
)
def test_a_matcher_catches_only_what_aws_lets_it_catch(error: str, matcher: str, caught: bool) -> None:
    env = SimpleNamespace(stack=[StatesErrorName.from_name(error)])
    with sfn_harness.uncatchable_as_on_aws():
        ErrorEqualsDecl([StatesErrorName.from_name(matcher)])._eval_body(env)

    assert env.stack == [caught]


@pytest.mark.parametrize(
    ("text", "pattern", "matches"),
    [
        ("foo23.log", "foo*.log", True),
        ("zebra.log", "*.log", True),
        ("foobar.zebra", "foo*.*", True),
        ("", "*", True),
        ("Rate exceeded (Service: SageMaker)", "*Rate exceeded*", True),
        ("Rate Exceeded.", "*Rate exceeded*", False),
        ("first line\nRate exceeded", "*Rate exceeded*", True),
        ("abc", "a?c", False),
        ("a?c", "a?c", True),
        ("abc", "a[b]c", False),
        ("a*c", "a\\*c", True),
        ("abc", "a\\*c", False),
        ("a\\c", "a\\\\c", True),
        ("log.txt", "*.log", False),
    ],
)
def test_string_matches_knows_only_the_asterisk_and_its_escapes(text: str, pattern: str, matches: bool) -> None:
    assert sfn_harness.aws_string_matches(text, pattern) is matches


def test_moto_alone_matches_a_question_mark_as_a_wildcard() -> None:
    # Why the harness is needed: moto matches with fnmatch.
    assert StringMatches._compare("abc", "a?c") is True
    with sfn_harness.string_matches_as_on_aws():
        assert StringMatches._compare("abc", "a?c") is False


# A failed call caught into $.error beside the input, a Choice on its Cause, and a wait of a computed length.
DECIDED_ON_THE_CAUSE = {
    "StartAt": "Call",
    "States": {
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sagemaker:listModels",
            "Parameters": {},
            "Catch": [{"ErrorEquals": ["SageMaker.SageMakerException"], "ResultPath": "$.error", "Next": "Throttled?"}],
            "End": True,
        },
        "Throttled?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.error.Cause", "StringMatches": "Rate exceeded (Service: SageMaker*", "Next": "Back off"}],
            "Default": "Refused",
        },
        "Back off": {"Type": "Wait", "SecondsPath": "$.seconds", "Next": "Backed off"},
        "Backed off": {"Type": "Succeed"},
        "Refused": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
    },
}


@pytest.mark.parametrize(("message", "ends"), [("Rate exceeded", "SUCCEEDED"), ("Could not find model", "FAILED")])
def test_a_caught_error_sits_beside_the_input_and_its_cause_decides_the_choice(message: str, ends: str) -> None:
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        endpoint_shim("eu-west-1"),
        sfn_harness.string_matches_as_on_aws(),
        sfn_harness.state_waits() as waits,
        sfn_harness.injected_faults() as faults,
    ):
        faults["Call"] = Fault("ValidationException" if ends == "FAILED" else "ThrottlingException", message=message)
        client = boto3.client("stepfunctions", region_name="eu-west-1")
        arn = sfn_harness.create_state_machine(client, DECIDED_ON_THE_CAUSE, "decided-on-the-cause")
        execution = sfn_harness.run(client, arn, {"seconds": 7, "kept": True}, "only")

    assert execution.status == ends
    if ends == "SUCCEEDED":
        output = execution.output
        assert (output["kept"], output["error"]["Error"], waits) == (True, "SageMaker.SageMakerException", {"Back off": [7]})
    else:
        assert (execution.error, waits) == ("SageMaker.SageMakerException", {})
        assert execution.cause.startswith("Could not find model (Service: SageMaker, Status Code: 400")
