"""Which errors each task state of each state machine retries, as a table to read: a dropped error name, a
state that stops retrying, or a call that retries its service's generic error whatever the Cause fails here
with the state's name, not only in a template snapshot.

A call retries the throttling and fault errors its service declares with a Retry rule, and the service's
generic error (`SageMaker.SageMakerException`, `S3.S3Exception`, `DynamoDB.AmazonDynamoDBException`, ...)
only through the decision of `sdk_errors` (a Catch of that name before any Catch that covers it, a Choice on
the Cause, a counted Wait and back to the call): `by_cause`. No state retries a generic name with a Retry
rule, which cannot tell a throttle from a refusal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mlops_constructs.sdk_errors import MAX_RETRIES, SERVICE_ERRORS
from tests.behaviour.batch_world import batch_world
from tests.behaviour.deployer_world import deployer_world

GENERIC_ERRORS = {errors.generic for errors in SERVICE_ERRORS.values()}


@dataclass(frozen=True)
class Retries:
    named: frozenset[str]
    # The generic error name the state retries when its Cause says the failure is transient.
    by_cause: str | None = None


def retries(*names: str, by_cause: str | None = None) -> Retries:
    return Retries(frozenset(names), by_cause)


SAGEMAKER = retries("SageMaker.ThrottlingException", "SageMaker.InternalFailureException", by_cause="SageMaker.SageMakerException")
AUTOSCALING = retries(
    "ApplicationAutoScaling.ConcurrentUpdateException",
    "ApplicationAutoScaling.InternalServiceException",
    by_cause="ApplicationAutoScaling.ApplicationAutoScalingException",
)
CLOUDWATCH = retries("CloudWatch.InternalServiceFaultException", by_cause="CloudWatch.CloudWatchException")
DYNAMODB = retries(
    "DynamoDB.ThrottlingException",
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.RequestLimitExceededException",
    "DynamoDB.InternalServerError",
    "DynamoDB.InternalServerErrorException",
    by_cause="DynamoDB.AmazonDynamoDBException",
)
EVENTS = retries("EventBridge.FailedEntry", "EventBridge.ThrottlingException", "EventBridge.InternalException", by_cause="EventBridge.AmazonEventBridgeException")
SFN = retries("Sfn.KmsThrottlingException", by_cause="Sfn.SfnException")
S3 = retries(by_cause="S3.S3Exception")
# A .sync job state: a retry would create the job again under the same name, so a failure looks it up instead.
NOTHING = retries()

# The task states every deployer has, whichever way it releases.
EVERY_DEPLOYER = {
    "Describe the model package": SAGEMAKER,
    "Take the endpoint's lock": DYNAMODB,
    "Read the lock's holder": DYNAMODB,
    "Check whether the lock's holder runs": SFN,
    "Take over the stale lock": DYNAMODB,
    "Find the endpoint": SAGEMAKER,
    "Describe the endpoint": SAGEMAKER,
    "Delete the failed endpoint": SAGEMAKER,
    "Create the model (first release)": SAGEMAKER,
    "Use the existing model (first release)": SAGEMAKER,
    "Create the first endpoint config": SAGEMAKER,
    "Create the endpoint": SAGEMAKER,
    "Check the new endpoint": SAGEMAKER,
    "Look for the other mode's endpoint (first release)": SAGEMAKER,
    "Retire the other mode's endpoint (first release)": SAGEMAKER,
    "Announce the endpoint left to retire (first release)": EVENTS,
    "Keep the release record (first release)": S3,
    "Announce the first release": EVENTS,
    "Announce the unrecorded release (first release)": EVENTS,
    "Announce the failed first release": EVENTS,
    "Remember the live config": SAGEMAKER,
    "Create the model (later release)": SAGEMAKER,
    "Use the existing model (later release)": SAGEMAKER,
    "Look for the other mode's endpoint (promotion)": SAGEMAKER,
    "Retire the other mode's endpoint (promotion)": SAGEMAKER,
    "Announce the endpoint left to retire (promotion)": EVENTS,
    "Check the endpoint before rolling back": SAGEMAKER,
    "Roll back to the live config": SAGEMAKER,
    "Check the rollback": SAGEMAKER,
    "Announce the rollback": EVENTS,
    "Announce the failed rollback": EVENTS,
    "Announce the failed deployment": EVENTS,
    "Release the endpoint's lock": DYNAMODB,
}
CLEAN_UP = {
    "List old endpoint configs": SAGEMAKER,
    "Delete an old endpoint config": SAGEMAKER,
    "List old models": SAGEMAKER,
    "Delete an old model": SAGEMAKER,
}
PROMOTION_RECORD = {
    "Keep the release record (promotion)": S3,
    "Announce the promotion": EVENTS,
    "Announce the unrecorded release (promotion)": EVENTS,
}
# The deployer on instances (the variants strategy), and on a serverless endpoint.
EXPECTED_VARIANTS = {
    **EVERY_DEPLOYER,
    "Register autoscaling (first release)": AUTOSCALING,
    "Put the scaling policy (first release)": AUTOSCALING,
    "Create the canary config": SAGEMAKER,
    "Shift canary traffic": SAGEMAKER,
    "Check the canary": SAGEMAKER,
    "Check the canary's alarms": CLOUDWATCH,
    "Create the promoted config": SAGEMAKER,
    "Deregister autoscaling (live variant)": AUTOSCALING,
    "Promote the canary": SAGEMAKER,
    "Check the promotion": SAGEMAKER,
    "Register autoscaling (promoted colour)": AUTOSCALING,
    "Put the scaling policy (promoted colour)": AUTOSCALING,
    **CLEAN_UP,
    **PROMOTION_RECORD,
    "Create the rollback config": SAGEMAKER,
    "Register autoscaling (restored variant)": AUTOSCALING,
    "Put the scaling policy (restored variant)": AUTOSCALING,
}
EXPECTED_SERVERLESS = {
    **EVERY_DEPLOYER,
    "Create the release config": SAGEMAKER,
    "Replace the serverless variant": SAGEMAKER,
    "Check the new variant": SAGEMAKER,
    "Check the canary's alarms": CLOUDWATCH,
    **CLEAN_UP,
    **PROMOTION_RECORD,
    "Create the rollback config": SAGEMAKER,
}
EXPECTED = {
    "variants_template": EXPECTED_VARIANTS,
    "serverless_template": EXPECTED_SERVERLESS,
    "guardrails_template": {
        **EVERY_DEPLOYER,
        "Register autoscaling (first release)": AUTOSCALING,
        "Put the scaling policy (first release)": AUTOSCALING,
        "Create the new config": SAGEMAKER,
        "Deregister autoscaling (guarded variant)": AUTOSCALING,
        "Deploy with SageMaker guardrails": SAGEMAKER,
        "Check the guarded release": SAGEMAKER,
        "Register autoscaling (guarded variant)": AUTOSCALING,
        "Put the scaling policy (guarded variant)": AUTOSCALING,
        "Keep the release record (guarded release)": S3,
        "Announce the guarded release": EVENTS,
        "Announce the unrecorded release (guarded release)": EVENTS,
        "Create the rollback config (guardrails)": SAGEMAKER,
        "Register autoscaling (restored variant)": AUTOSCALING,
        "Put the scaling policy (restored variant)": AUTOSCALING,
    },
    "approval_template": {
        **EXPECTED_VARIANTS,
        "Announce the approval request": EVENTS,
        "Wait for an approver": SFN,
    },
    "traffic_guard_template": {**EXPECTED_VARIANTS, "Count the canary's invocations": CLOUDWATCH},
    "guarded_serverless_template": {
        **EXPECTED_SERVERLESS,
        "Count the canary's invocations": CLOUDWATCH,
        "Announce the approval request": EVENTS,
        "Wait for an approver": SFN,
    },
    "batch_template": {
        "Find the latest approved model package": SAGEMAKER,
        "Describe the model package": SAGEMAKER,
        "Preprocess": NOTHING,
        "Look up the Preprocess job": SAGEMAKER,
        "Inference": NOTHING,
        "Look up the Inference job": SAGEMAKER,
        "Postprocess": NOTHING,
        "Look up the Postprocess job": SAGEMAKER,
    },
}


def _task_states(states: dict) -> Iterator[tuple[dict, str, dict]]:
    """Every Task state with the States it belongs to (a Parallel branch or a Map processor has its own)."""
    for name, state in states.items():
        if state["Type"] == "Task":
            yield states, name, state
        for inner in (*state.get("Branches", []), state.get("ItemProcessor"), state.get("Iterator")):
            if inner:
                yield from _task_states(inner["States"])


def _variables(rule: dict) -> Iterator[str]:
    """The paths a Choice rule reads, inside And, Or and Not too."""
    if "Variable" in rule:
        yield rule["Variable"]
    for inner in (*rule.get("And", []), *rule.get("Or", []), *([rule["Not"]] if "Not" in rule else [])):
        yield from _variables(inner)


def _retried_by_cause(states: dict, name: str, state: dict) -> str | None:
    """The generic name the state's Catches take, before any Catch that covers it, to a Choice that reads the
    Cause and has a way, bounded by MAX_RETRIES, through a Wait back to the state."""
    for catch in state.get("Catch", []):
        errors = set(catch["ErrorEquals"])
        generic = errors & GENERIC_ERRORS
        if errors & {"States.ALL", "States.TaskFailed"} and not generic:
            return None
        if not generic:
            continue
        decision = states[catch["Next"]]
        choices = decision.get("Choices", [])
        reads_cause = f"{catch['ResultPath']}.Cause" in {variable for choice in choices for variable in _variables(choice)}
        bounded = any(choice.get("NumericLessThan") == MAX_RETRIES for choice in choices)
        back = set()
        for choice in choices:
            counted = states[choice["Next"]]
            if counted["Type"] == "Pass" and "Next" in counted and states[counted["Next"]]["Type"] == "Wait":
                back.add(states[counted["Next"]]["Next"])
        (only,) = generic
        return only if errors == generic and reads_cause and bounded and back == {name} else None
    return None


def _retried(definition: dict) -> dict[str, Retries]:
    found = {}
    for states, name, state in _task_states(definition["States"]):
        named = frozenset(error for rule in state.get("Retry", []) for error in rule["ErrorEquals"])
        assert named & GENERIC_ERRORS == set(), f"{name} retries {named & GENERIC_ERRORS} whatever the cause"
        found[name] = Retries(named, _retried_by_cause(states, name, state))
    return found


@pytest.mark.parametrize("template", sorted(EXPECTED))
def test_each_task_state_retries_what_its_row_says(request, template):
    world_of = batch_world if template == "batch_template" else deployer_world
    with world_of(request.getfixturevalue(template)) as world:
        retried = _retried(world.definition)

    assert set(retried) == set(EXPECTED[template]), "a task state was added or removed: give it a row"
    assert {name: how for name, how in retried.items() if how != EXPECTED[template][name]} == {}


def _state_names(states: dict) -> Iterator[str]:
    for name, state in states.items():
        yield name
        for inner in (*state.get("Branches", []), state.get("ItemProcessor"), state.get("Iterator")):
            if inner:
                yield from _state_names(inner["States"])


# Step Functions' quotas: a state name of at most 80 characters, a definition of at most 1,048,576 bytes.
MAX_STATE_NAME = 80
MAX_DEFINITION_BYTES = 1_048_576


@pytest.mark.parametrize("template", sorted(EXPECTED))
def test_the_retry_states_keep_names_and_the_definition_within_step_functions_quotas(request, template):
    world_of = batch_world if template == "batch_template" else deployer_world
    with world_of(request.getfixturevalue(template)) as world:
        definition = world.definition

    assert [name for name in _state_names(definition["States"]) if len(name) > MAX_STATE_NAME] == []
    assert len(json.dumps(definition).encode()) <= MAX_DEFINITION_BYTES


# The deployer's calls polled in a loop, and the loop counter each counts its retries in: the loop's
# counting state rewrites the counter at every poll, so every poll has the whole retry bound (as a Retry rule
# gives every attempt), not one bound for the whole execution.
POLLED = {
    "Find the endpoint": "$.deletion",
    "Describe the endpoint": "$.deletion",
    "Check the endpoint before rolling back": "$.settle",
    "Check the canary's alarms": "$.bake",
}


@pytest.mark.parametrize("template", sorted(set(EXPECTED) - {"batch_template"}))
def test_a_polled_call_counts_its_retries_in_the_counter_its_loop_rewrites(request, template):
    with deployer_world(request.getfixturevalue(template)) as world:
        states = world.definition["States"]
    calls = {name for name, state in states.items() if state["Type"] == "Task" and f"Count the first retry of {name}" in states}
    # The polls of an endpoint until it is in service: "Check the new endpoint", "Check the rollback", ...
    polled = {name: POLLED.get(name, "$.polls") for name in calls if name in POLLED or name.startswith("Check the ")}
    counted = {name: states[f"Count the first retry of {name}"]["ResultPath"] for name in polled}
    rewritten = {state["ResultPath"] for state in states.values() if state["Type"] == "Pass" and "ResultPath" in state}

    assert polled, "no polled call found"
    assert {name: path for name, path in counted.items() if not path.startswith(f"{polled[name]}.retries.")} == {}
    assert set(polled.values()) <= rewritten
