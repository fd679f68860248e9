"""Faults in the shapes AWS gives them, not only as request errors, met by the synthesized deployer.

- PutEvents refuses entries with HTTP 200 and `FailedEntryCount` > 0, which Step Functions reports as
  `EventBridge.FailedEntry`: once, the announcement is retried and goes out; for good, it is retried as its
  Retry rule says and then caught.
- A create can succeed on the server and still answer 500: the retry then meets the name the first attempt
  created, which SageMaker refuses at once, and the release must go on with what exists.
Counts of attempts are read from the definition's own Retry rules, so a dropped error name or a changed
attempt count fails here, not only in a snapshot.
"""

from __future__ import annotations

import pytest

from mlops_constructs.sdk_errors import BACKOFF_SECONDS
from tests.behaviour import sfn_harness
from tests.behaviour.deployer_world import ENDPOINT, deployer_world, released_world
from tests.behaviour.fault_scenarios import error_caught_at
from tests.behaviour.sfn_harness import (
    Fault,
    injected_faults,
    put_events_partly_failing,
)

FAILED_ENTRY = "EventBridge.FailedEntry"


def _attempts_for(definition: dict, state: str, error: str) -> int:
    """1 + MaxAttempts of the first Retry rule of `state` that matches `error` (1 when none does)."""
    for retry in sfn_harness.task_states(definition)[state].get("Retry", []):
        if error in retry["ErrorEquals"] or "States.ALL" in retry["ErrorEquals"]:
            return 1 + retry.get("MaxAttempts", 3)
    return 1


@pytest.mark.parametrize(("state", "prepare"), [("Announce the first release", "no endpoint"), ("Announce the promotion", "released")])
def test_an_announcement_with_a_refused_entry_is_retried_and_goes_out(variants_template, state, prepare):
    world_of = deployer_world if prepare == "no endpoint" else released_world
    with world_of(variants_template) as world, put_events_partly_failing() as refused:
        told = len(world.notifications())
        refused[state] = Fault("InternalFailure", times=1)

        execution = world.deploy(world.register())
        announced = world.notifications()[told:]

    assert execution.status == "SUCCEEDED"
    assert refused[state].calls == 1
    # Only the announcements' failures: taking over the endpoint's lock from the previous release fails a write on purpose.
    assert [e["taskFailedEventDetails"]["error"] for e in execution.events("TaskFailed") if e["taskFailedEventDetails"]["resourceType"] == "events"] == [FAILED_ENTRY]
    assert len(announced) == 1, f"the announcement went out once, after its retry: {announced}"


def test_an_announcement_refused_for_good_is_retried_as_its_rule_says_then_caught(variants_template):
    state = "Announce the promotion"
    with released_world(variants_template) as world, put_events_partly_failing() as refused:
        refused[state] = Fault("InternalFailure")

        execution = world.deploy(world.register())
        serving, scaled = world.live_models(), world.scaled_variants()

    assert refused[state].calls == _attempts_for(world.definition, state, FAILED_ENTRY) > 1
    assert execution.status == "FAILED"
    assert execution.error == error_caught_at(world.definition, state)
    # The release itself went through: the new model serves on one variant, with autoscaling.
    assert list(serving.values()) == [f"{world.notify.environment['PREFIX']}-model-v2"]
    assert set(scaled) == set(serving)


def test_a_model_created_on_the_server_that_answered_500_is_used_by_the_next_attempt(variants_template):
    state = "Create the model (first release)"
    with deployer_world(variants_template) as world, injected_faults() as faults, sfn_harness.recorded_calls() as calls:
        faults[state] = Fault("InternalFailure", times=1, after_the_call=True, status=500)

        execution = world.deploy(world.register())
        models = [m["ModelName"] for m in world.sagemaker.list_models()["Models"]]
        serving, told = list(world.live_models().values()), world.notifications()

    creates = [call for call in calls if call.state == state]
    assert execution.status == "SUCCEEDED", execution.cause
    assert models == serving
    # The 500 is a fault of the service, retried after the first backoff wait; the retry meets the name the
    # first attempt created, which SageMaker refuses with a ValidationException (Step Functions' generic
    # SageMaker.SageMakerException): permanent, so it is not retried, and the state's catch uses the model.
    assert len(creates) == 2
    assert world.state_waits.get(f"Wait before retrying {state}") == [BACKOFF_SECONDS[0]]
    assert told[-1] == f"{ENDPOINT}: version 1 released"
