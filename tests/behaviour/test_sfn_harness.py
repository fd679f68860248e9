"""The harness fails executions where AWS would, not where moto is kinder."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName

from tests.behaviour import sfn_harness

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
