"""The synthesized deployer of an environment serving serverless (dev as configured), executed by moto's
Step Functions against moto's SageMaker and CloudWatch with the endpoint shim: the same contract as on
instances, with one variant that a release replaces whole."""

from __future__ import annotations

import json

import pytest

from tests.behaviour.deployer_world import ENDPOINT, GROUP, MODEL, SERVERLESS_ENDPOINT, SERVERLESS_MODEL, DeployerWorld, deployer_world, released_world
from tests.behaviour.sfn_harness import Execution, held_before, state_clock
from tests.synth import environment_config

SERVING = environment_config("dev").deployment.serving
CAPACITY = {"MemorySizeInMB": SERVING.memory_size_mb, "MaxConcurrency": SERVING.max_concurrency}
APPROVAL = "Wait for an approver"
COUNT_INVOCATIONS = "Count the canary's invocations"


@pytest.fixture
def world(serverless_template) -> DeployerWorld:
    with deployer_world(serverless_template) as world:
        yield world


@pytest.fixture
def released(serverless_template) -> DeployerWorld:
    """Version 1 serving on blue, as the first release left it."""
    with released_world(serverless_template) as world:
        yield world


def _variant(world: DeployerWorld) -> dict:
    (variant,) = world.sagemaker.describe_endpoint(EndpointName=SERVERLESS_ENDPOINT)["ProductionVariants"]
    return variant


def _first_package(world: DeployerWorld) -> str:
    return world.sagemaker.list_model_packages(ModelPackageGroupName=GROUP, SortOrder="Ascending")["ModelPackageSummaryList"][0]["ModelPackageArn"]


def test_first_release_creates_a_serverless_endpoint_on_blue_without_autoscaling(world):
    execution = world.deploy(world.register())

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert world.live_config() == f"{SERVERLESS_ENDPOINT}-v1"
    assert world.live_models() == {"blue": f"{SERVERLESS_MODEL}-v1"}
    assert _variant(world)["CurrentServerlessConfig"] == CAPACITY
    assert world.scaled_variants() == {}
    (message,) = world.messages()
    assert message.subject == f"{SERVERLESS_ENDPOINT}: version 1 released"


def test_the_serverless_model_runs_outside_the_vpc_and_captures_nothing(world):
    world.deploy(world.register())

    model = world.sagemaker.describe_model(ModelName=f"{SERVERLESS_MODEL}-v1")
    assert not model.get("VpcConfig")
    assert world.data_capture() == {f"{SERVERLESS_ENDPOINT}-v1": {}}


def test_a_newer_version_replaces_the_variant_on_the_other_colour_after_its_bake(released):
    execution = released.deploy(released.register())

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert "Check the canary's alarms" in execution.states_entered
    assert released.update_configs() == [f"{SERVERLESS_ENDPOINT}-v2"]
    assert released.live_models() == {"green": f"{SERVERLESS_MODEL}-v2"}
    assert _variant(released)["CurrentServerlessConfig"] == CAPACITY
    assert released.messages()[-1].subject == f"{SERVERLESS_ENDPOINT}: version 2 promoted"


def test_an_alarm_during_the_bake_puts_the_live_model_back_and_ends_failed(released):
    released.set_alarm(released.alarms["green-5xx"])

    execution = released.deploy(released.register())

    assert (execution.status, execution.error) == ("FAILED", "CanaryRolledBack")
    assert released.alarms["green-5xx"] in execution.cause
    assert released.update_configs() == [f"{SERVERLESS_ENDPOINT}-v2", f"{SERVERLESS_ENDPOINT}-v2-rollback"]
    assert released.live_models() == {"blue": f"{SERVERLESS_MODEL}-v1"}
    assert _variant(released)["CurrentServerlessConfig"] == CAPACITY
    told = released.messages()[-1]
    assert told.subject == f"{SERVERLESS_ENDPOINT}: version 2 rolled back"
    assert f"Why: {execution.cause}" in told.text


def test_the_rollback_restores_the_live_variants_own_capacity(released):
    """A variant running with other capacity than config now asks for (config changed since) gets it back."""
    live = released.shim.endpoint_config_name(SERVERLESS_ENDPOINT)
    previous = released.sagemaker.describe_endpoint_config(EndpointConfigName=live)["ProductionVariants"][0]
    bigger = {"MemorySizeInMB": 4096, "MaxConcurrency": 10}
    released.sagemaker.create_endpoint_config(EndpointConfigName=f"{SERVERLESS_ENDPOINT}-v1-bigger", ProductionVariants=[{**previous, "ServerlessConfig": bigger}])
    released.sagemaker.update_endpoint(EndpointName=SERVERLESS_ENDPOINT, EndpointConfigName=f"{SERVERLESS_ENDPOINT}-v1-bigger")
    released.settle()
    released.set_alarm(released.alarms["green-latency"])

    assert released.deploy(released.register()).error == "CanaryRolledBack"

    assert _variant(released)["CurrentServerlessConfig"] == bigger


def test_an_update_that_fails_is_reported_as_a_failed_rollback_that_needs_someone(released):
    released.shim.next_update("fail", reason="the new model did not pass the ping health check")

    execution = released.deploy(released.register())

    # The failed endpoint refuses the update back, as on instances: someone must look at it.
    assert execution.error == "RollbackFailed"
    assert "failed while waiting for the new variant" in execution.cause
    assert "Start the bake" not in execution.states_entered
    assert released.messages()[-1].subject == f"{SERVERLESS_ENDPOINT}: rollback of version 2 failed, act now"


def test_a_silent_rollback_by_sagemaker_is_not_baked_and_ends_failed(released):
    released.shim.next_update("silent_rollback")

    execution = released.deploy(released.register())

    assert execution.error == "CanaryRolledBack"
    assert "silently rolled back" in execution.cause and "Start the bake" not in execution.states_entered
    assert released.live_models() == {"blue": f"{SERVERLESS_MODEL}-v1"}


def test_an_approval_event_of_an_older_version_changes_nothing(released):
    first = _first_package(released)
    assert released.deploy(released.register()).status == "SUCCEEDED"
    released.shim.update_calls.clear()

    execution = released.deploy(first)

    assert execution.status == "SUCCEEDED"
    output = execution.output if isinstance(execution.output, dict) else json.loads(execution.output)
    assert "Version 1 is not newer than version 2" in output["Reason"]
    assert released.shim.update_calls == []
    assert released.live_models() == {"green": f"{SERVERLESS_MODEL}-v2"}


def test_an_explicit_rollback_release_serves_the_older_version(released):
    first = _first_package(released)
    released.deploy(released.register())

    execution = released.roll_back_to(first)

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert released.live_models() == {"blue": f"{SERVERLESS_MODEL}-v1"}


def test_promotion_deletes_configs_and_models_older_than_the_previous_release(released):
    released.deploy(released.register())
    released.deploy(released.register())

    assert released.config_names() == [f"{SERVERLESS_ENDPOINT}-v2", f"{SERVERLESS_ENDPOINT}-v3"]
    assert sorted(m["ModelName"] for m in released.sagemaker.list_models()["Models"]) == [f"{SERVERLESS_MODEL}-v2", f"{SERVERLESS_MODEL}-v3"]


def test_a_second_release_while_one_bakes_is_refused_by_the_lock(released):
    with held_before("Check the canary's alarms") as hold:
        first = released.start(released.register())
        hold.reached()
        second = released.deploy(released.register())
        hold.release()

    assert (second.status, second.error) == ("FAILED", "DeploymentInProgress")
    assert released.wait(first).status == "SUCCEEDED"
    assert released.update_configs() == [f"{SERVERLESS_ENDPOINT}-v2"]


# -- the guards after the bake ----------------------------------------------------------------------


@pytest.fixture
def guarded(guarded_serverless_template) -> DeployerWorld:
    with released_world(guarded_serverless_template) as world:
        yield world


def _deploy_serving(world: DeployerWorld, invocations: int, answer=None) -> Execution:
    """Release a version whose bake serves `invocations` requests on the new colour, and `answer` the
    approval (SendTaskSuccess or SendTaskFailure with the token) if it is asked for. The deployer is held
    before it counts the requests, and its clock moved past the bake, as in the instance tests."""
    with held_before(COUNT_INVOCATIONS) as hold, state_clock() as clock:
        execution = world.start(world.register())
        hold.reached()
        if invocations:
            world.serve("green", invocations)
        clock.advance(600)
        hold.release()
        if answer:
            world.wait_for_state(execution, APPROVAL)
            answer(world.task_token(execution))
        return world.wait(execution)


def test_a_release_with_enough_requests_waits_for_an_approver_and_is_promoted_when_approved(guarded):
    result = _deploy_serving(guarded, 500, lambda token: guarded.sfn.send_task_success(taskToken=token, output="{}"))

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert guarded.live_models() == {"green": f"{SERVERLESS_MODEL}-v2"}


def test_a_release_with_too_few_requests_is_rolled_back(guarded):
    result = _deploy_serving(guarded, 0)

    assert result.error == "CanaryRolledBack" and "too few requests" in result.cause
    assert guarded.live_models() == {"blue": f"{SERVERLESS_MODEL}-v1"}


def test_a_rejected_release_is_rolled_back(guarded):
    reject = lambda token: guarded.sfn.send_task_failure(taskToken=token, error="Rejected", cause="cold starts too slow")  # noqa: E731

    result = _deploy_serving(guarded, 500, reject)

    assert result.error == "CanaryRolledBack" and "cold starts too slow" in result.cause
    assert guarded.live_models() == {"blue": f"{SERVERLESS_MODEL}-v1"}


# -- switching the serving mode ---------------------------------------------------------------------


def _settle(world: DeployerWorld, endpoint: str) -> None:
    """Read `endpoint` until an operation started by hand has ended, as a poller would."""
    for _ in range(100):
        if world.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] not in ("Creating", "Updating"):
            return
    raise AssertionError(f"{endpoint} never settled")


def _endpoints(world: DeployerWorld) -> list[str]:
    return sorted(e["EndpointName"] for e in world.sagemaker.list_endpoints()["Endpoints"])


def test_switching_to_serverless_releases_to_the_new_endpoint_then_retires_the_instance_endpoint(world):
    world.other_mode_serving()

    with held_before("Look for the other mode's endpoint (first release)") as hold:
        execution = world.start(world.register())
        hold.reached()
        # The old endpoint serves until the new one does.
        serving = {name: world.shim.status(name) for name in (ENDPOINT, SERVERLESS_ENDPOINT)}
        hold.release()

    assert world.wait(execution).status == "SUCCEEDED"
    assert serving == {ENDPOINT: "InService", SERVERLESS_ENDPOINT: "InService"}
    assert _endpoints(world) == [SERVERLESS_ENDPOINT]
    assert world.live_models() == {"blue": f"{SERVERLESS_MODEL}-v1"}


def test_the_instance_endpoint_keeps_serving_when_the_first_serverless_release_fails(world):
    world.other_mode_serving()
    world.shim.next_create("fail", reason="the model did not start")

    assert world.deploy(world.register()).error == "EndpointCreationFailed"

    assert world.shim.status(ENDPOINT) == "InService"


def test_an_instance_endpoint_that_cannot_be_retired_is_reported_and_retried_by_the_next_release(world):
    world.other_mode_serving()
    world.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=f"{ENDPOINT}-v1-1a2b3c4d")  # Updating: deletion refused

    first = world.deploy(world.register())
    _settle(world, ENDPOINT)
    second = world.deploy(world.register())

    assert first.status == "SUCCEEDED"
    assert f"{SERVERLESS_ENDPOINT}: version 1 serves, but the old endpoint is still there" in world.notifications()
    assert second.status == "SUCCEEDED"
    assert _endpoints(world) == [SERVERLESS_ENDPOINT]


def test_switching_back_to_instances_retires_the_serverless_endpoint(variants_template):
    with deployer_world(variants_template) as world:
        world.other_mode_serving()

        execution = world.deploy(world.register())

        assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
        assert _endpoints(world) == [ENDPOINT]
        assert world.live_models() == {"blue": f"{MODEL}-v1"}


def test_a_serverless_first_release_records_a_first_release(world):
    world.deploy(world.register())

    assert world.release_record(1)["release"] == "first-release"
    assert world.release_record(1)["endpoint"] == SERVERLESS_ENDPOINT


def test_a_serverless_release_that_served_its_bake_records_a_passed_canary(released):
    execution = released.deploy(released.register())

    assert execution.status == "SUCCEEDED"
    assert released.release_record(2)["release"] == "canary-passed"


def test_a_serverless_release_rolled_back_on_an_alarm_records_nothing(released):
    colour = "green" if "blue" in released.live_variants() else "blue"
    released.set_alarm(released.alarms[f"{colour}-5xx"])

    assert released.deploy(released.register()).error == "CanaryRolledBack"
    assert released.release_record(2) is None
