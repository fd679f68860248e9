"""The synthesized canary deployer, executed by moto's Step Functions against moto's SageMaker,
CloudWatch and Application Auto Scaling (with the endpoint shim for what moto lacks)."""

from __future__ import annotations

import datetime
import json

import boto3
import pytest

from tests.behaviour.deployer_world import ENDPOINT, GROUP, MODEL, REGION, DeployerWorld, deployer_world, released_world, without_attempt
from tests.behaviour.sfn_harness import (
    Execution,
    Fault,
    ended_executions_seem_running,
    held_before,
    injected_faults,
    listing_lags,
    state_clock,
    timeout_passes_at_once,
)

POLICY = "SageMakerEndpointInvocationScalingPolicy"
COUNT_INVOCATIONS = "Count the canary's invocations"
APPROVAL = "Wait for an approver"
# How long the bake seems to have lasted when the deployer counts the canary's requests.
BAKE_SECONDS = 600


@pytest.fixture
def world(variants_template) -> DeployerWorld:
    with deployer_world(variants_template) as world:
        yield world


@pytest.fixture
def released(world) -> DeployerWorld:
    """Version 1 serving on blue, as the first release left it."""
    assert world.deploy(world.register()).status == "SUCCEEDED"
    world.shim.update_calls.clear()
    return world


def test_first_release_creates_the_endpoint_on_blue_with_autoscaling(world):
    execution = world.deploy(world.register())

    assert execution.status == "SUCCEEDED"
    assert world.live_config() == f"{ENDPOINT}-v1"
    assert world.live_models() == {"blue": f"{MODEL}-v1"}
    assert world.live_variants() == {"blue": 1.0}
    assert world.scaled_variants() == {"blue": [POLICY]}
    (message,) = world.messages()
    assert message.subject == f"{ENDPOINT}: version 1 released"
    assert f"released model version 1 of {GROUP} on the new endpoint {ENDPOINT}: it serves all traffic" in message.text
    assert f"The endpoint runs SageMaker model {MODEL}-v1." in message.text
    assert f"Deployment run: https://{REGION}.console.aws.amazon.com/states/home?region={REGION}#/v2/executions/details/{execution.arn}" in message.text
    assert "No evaluation report is attached to this model version" in message.text


def test_first_release_records_the_release_with_the_time_the_record_state_was_entered(world):
    package = world.register()
    ten_years = 10 * 365 * 86400
    with state_clock() as clock:
        clock.advance(ten_years)
        execution = world.deploy(package)

    record = world.release_record(1)
    released_at = datetime.datetime.fromisoformat(record.pop("releasedAt").replace("Z", "+00:00"))
    assert record == {
        "release": "first-release",
        "endpoint": ENDPOINT,
        "modelPackageArn": package,
        "version": 1,
        "model": f"{MODEL}-v1",
        "execution": execution.arn,
    }
    assert released_at.year >= datetime.datetime.now(datetime.timezone.utc).year + 9, "the time is not the state's entered time"


def test_promotion_after_the_canary_records_a_passed_canary(released):
    execution = released.deploy(released.register())

    assert execution.status == "SUCCEEDED"
    assert released.release_record(2)["release"] == "canary-passed"
    assert released.release_record(2)["execution"] == execution.arn


def test_a_rolled_back_canary_records_nothing(released):
    released.set_alarm(released.alarms["green-5xx"])

    assert released.deploy(released.register()).error == "CanaryRolledBack"
    assert released.release_record(2) is None


def test_a_release_whose_record_cannot_be_written_stands_and_says_it_cannot_be_promoted(world):
    world.lose_release_bucket()

    execution = world.deploy(world.register())

    assert execution.status == "SUCCEEDED"
    assert world.live_models() == {"blue": f"{MODEL}-v1"}
    (message,) = world.messages()
    assert message.subject == f"{ENDPOINT}: version 1 released, but not recorded for promotion"
    assert "cannot be promoted to another environment until it is released again" in message.text
    assert "NoSuchBucket" in message.text


def test_a_record_write_throttled_twice_is_retried_and_written(world):
    with injected_faults() as faults:
        faults["Keep the release record (first release)"] = Fault("SlowDown", times=2, status=503)
        execution = world.deploy(world.register())

    assert execution.status == "SUCCEEDED"
    assert world.release_record(1)["release"] == "first-release"
    assert [message.subject for message in world.messages()] == [f"{ENDPOINT}: version 1 released"]


def _captures_traffic(capture: dict) -> bool:
    """A DataCaptureConfig as the dev config asks for: 20 % of requests and responses, under the capture
    prefix of the artifacts bucket, encrypted with the environment's key."""
    return (
        capture.get("EnableCapture") is True
        and capture["InitialSamplingPercentage"] == 20
        and capture["DestinationS3Uri"].startswith("s3://")
        and capture["DestinationS3Uri"].endswith("/data-capture")
        and bool(capture["KmsKeyId"])
        and sorted(o["CaptureMode"] for o in capture["CaptureOptions"]) == ["Input", "Output"]
    )


def test_first_release_captures_traffic(world):
    world.deploy(world.register())

    captures = world.data_capture()
    assert list(captures) == [f"{ENDPOINT}-v1"]
    assert all(_captures_traffic(c) for c in captures.values())


def test_canary_and_promotion_configs_capture_traffic(released):
    # The promotion deletes the canary and rollback configs, so they are read during the bake.
    with held_before("Start the bake") as hold:
        execution = released.start(released.register())
        hold.reached()
        during_bake = released.data_capture()
    released.wait(execution)

    captures = {**during_bake, **released.data_capture()}
    assert sorted(captures) == [f"{ENDPOINT}-v1", f"{ENDPOINT}-v2", f"{ENDPOINT}-v2-canary", f"{ENDPOINT}-v2-rollback"]
    assert all(_captures_traffic(c) for c in captures.values())


def test_rollback_returns_to_a_config_that_captures_traffic(released):
    released.set_alarm(released.alarms["green-5xx"])

    assert released.deploy(released.register()).error == "CanaryRolledBack"

    assert released.live_config() == f"{ENDPOINT}-v2-rollback"
    assert _captures_traffic(released.data_capture()[f"{ENDPOINT}-v2-rollback"])


def test_first_release_whose_endpoint_fails_ends_failed_with_the_reason(world):
    world.shim.next_create("fail", reason="model container did not pass the ping health check")

    execution = world.deploy(world.register())

    assert execution.status == "FAILED"
    assert execution.error == "EndpointCreationFailed"
    assert "failed while waiting for the new endpoint: endpoint Failed" in execution.cause
    assert world.scaled_variants() == {}



def test_next_approval_after_a_failed_first_release_deletes_the_failed_endpoint_and_releases_afresh(world):
    world.shim.next_create("fail", reason="model container did not pass the ping health check")
    assert world.deploy(world.register()).status == "FAILED"

    execution = world.deploy(world.register())

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert "Delete the failed endpoint" in execution.states_entered
    assert execution.states_entered[-1] == "Released on blue"
    assert world.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"
    assert world.live_variants() == {"blue": 1.0}
    assert world.scaled_variants() == {"blue": [POLICY]}


def test_next_release_waits_while_the_failed_endpoint_is_being_deleted(world):
    world.shim.next_create("fail", reason="model container did not pass the ping health check")
    assert world.deploy(world.register()).status == "FAILED"
    world.shim.reads_while_deleting = 2

    execution = world.deploy(world.register())

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.states_entered.count("Wait for the endpoint's deletion") >= 2
    assert world.live_variants() == {"blue": 1.0}


def test_next_release_gives_up_on_a_failed_endpoint_that_is_not_deleted_in_time_and_says_so(world):
    world.shim.next_create("fail", reason="model container did not pass the ping health check")
    assert world.deploy(world.register()).status == "FAILED"
    world.shim.reads_while_deleting = 100
    told = len(world.notifications())

    execution = world.deploy(world.register())

    assert (execution.status, execution.error) == ("FAILED", "DeploymentFailed")
    assert "was still Deleting after 10 polls" in execution.cause
    assert "Create the first endpoint config" not in execution.states_entered
    assert any(" failed" in subject for subject in world.notifications()[told:])

def test_canary_then_promotion_moves_all_traffic_to_the_other_colour(released):
    execution = released.deploy(released.register())

    assert execution.status == "SUCCEEDED"
    assert released.update_configs() == [f"{ENDPOINT}-v2-canary", f"{ENDPOINT}-v2"]
    assert released.live_variants() == {"green": 1.0}
    assert released.scaled_variants() == {"green": [POLICY]}
    assert execution.states_entered.count("Check the canary's alarms") == 3


def test_promotion_deletes_configs_and_models_older_than_the_previous_release(released):
    released.deploy(released.register())
    released.deploy(released.register())

    models = sorted(m["ModelName"] for m in released.sagemaker.list_models()["Models"])
    assert released.config_names() == [f"{ENDPOINT}-v2", f"{ENDPOINT}-v3"]
    assert models == [f"{MODEL}-v2", f"{MODEL}-v3"]


def test_canary_gets_the_configured_share_of_traffic(released):
    with held_before("Start the bake") as hold:
        execution = released.start(released.register())
        hold.reached()
        weights = released.live_variants()
    released.wait(execution)

    assert weights == {"blue": 0.8, "green": 0.2}


def test_promotion_keeps_the_live_instance_type_and_count(released):
    released.deploy(released.register())

    (variant,) = released.config(f"{ENDPOINT}-v2")["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)


def test_alarm_during_bake_rolls_back_to_previous_config(released):
    released.set_alarm(released.alarms["green-5xx"])

    execution = released.deploy(released.register())

    assert execution.status == "FAILED"
    assert execution.error == "CanaryRolledBack"
    assert released.alarms["green-5xx"] in execution.cause
    assert released.live_models() == {"blue": f"{MODEL}-v1"}
    assert released.live_variants() == {"blue": 1.0}
    assert released.scaled_variants() == {"blue": [POLICY]}
    told = released.messages()[-1]
    assert told.subject == f"{ENDPOINT}: version 2 rolled back"
    assert "the previous model serves all traffic again" in told.text
    assert f"Why: {execution.cause}" in told.text


def test_alarm_rolls_back_at_the_next_poll(released):
    released.set_alarm(released.alarms["green-latency"])

    execution = released.deploy(released.register())

    states = execution.states_entered
    polls_before_rollback = states[: states.index("Roll back to the live config")].count("Check the canary's alarms")
    assert polls_before_rollback == 1


def test_alarm_on_the_old_colour_does_not_stop_the_canary(released):
    released.set_alarm(released.alarms["blue-5xx"])

    assert released.deploy(released.register()).status == "SUCCEEDED"


def test_update_that_fails_ends_failed_with_the_reason(released):
    released.shim.next_update("fail", reason="ping health check failed")

    execution = released.deploy(released.register())

    # SageMaker's refusal of the rollback is passed on as it came (here, the shim's, which is not SageMaker's text).
    (refusal,) = {call.error for call in released.shim.update_calls if not call.accepted}
    assert execution.status == "FAILED"
    assert execution.error == "RollbackFailed"
    assert "failed while waiting for the canary" in execution.cause and refusal in execution.cause
    assert "Start the bake" not in execution.states_entered
    told = released.messages()[-1]
    assert told.subject == f"{ENDPOINT}: rollback of version 2 failed, act now"
    assert "the endpoint needs someone to look at it now" in told.text and refusal in told.text


def test_silent_rollback_is_not_baked_and_ends_failed(released):
    released.shim.next_update("silent_rollback")

    execution = released.deploy(released.register())

    assert execution.status == "FAILED"
    assert execution.error == "CanaryRolledBack"
    assert "silently rolled back" in execution.cause
    assert "Start the bake" not in execution.states_entered
    assert released.live_models() == {"blue": f"{MODEL}-v1"}
    assert released.scaled_variants() == {"blue": [POLICY]}


def test_update_that_times_out_is_rolled_back_once_the_endpoint_leaves_updating(released):
    # 10 polls of the canary time out; the endpoint leaves Updating during the rollback's settling checks.
    released.shim.reads_while_updating = 15
    with held_before("Roll back to the live config") as hold:
        started = released.start(released.register())
        hold.reached()
        # The rollback's own update finishes as quickly as usual.
        released.shim.reads_while_updating = 1
        hold.release()
    execution = released.wait(started)

    assert execution.error == "CanaryRolledBack"
    assert execution.states_entered.count("Let the update settle") >= 4
    assert execution.cause.startswith("timed out while waiting for the canary: endpoint Updating on ")
    assert released.live_models() == {"blue": f"{MODEL}-v1"}
    assert released.notifications()[-1] == f"{ENDPOINT}: version 2 rolled back"


def test_update_still_running_after_the_settling_checks_is_reported_as_it_is_without_a_refused_rollback(released):
    released.shim.reads_while_updating = 50

    execution = released.deploy(released.register())

    assert execution.error == "RollbackFailed"
    assert execution.cause.startswith("timed out while waiting for the canary: endpoint Updating on ")
    assert f"nothing was rolled back: endpoint {ENDPOINT} was still Updating after 10 checks" in execution.cause
    assert f"if the endpoint does not serve {ENDPOINT}-v1-" in execution.cause
    assert "mlops deploy rollback --to" in execution.cause
    assert [without_attempt(call.endpoint_config_name) for call in released.shim.update_calls] == [f"{ENDPOINT}-v2-canary"], "an update SageMaker would refuse was attempted"
    assert released.notifications()[-1] == f"{ENDPOINT}: rollback of version 2 failed, act now"


@pytest.mark.parametrize(("status", "group"), [("PendingManualApproval", None), ("Rejected", None), ("Approved", "someone-elses-models")])
def test_package_not_approved_or_not_ours_fails_before_touching_the_endpoint(world, status, group):
    arn = world.register(status=status, **({"group": group} if group else {}))

    execution = world.deploy(arn)

    assert execution.status == "FAILED"
    assert execution.error == "PackageNotDeployable"
    assert world.sagemaker.list_models()["Models"] == []
    assert world.sagemaker.list_endpoints()["Endpoints"] == []


def test_duplicate_approval_event_while_deploying_is_refused(approval_world):
    package = approval_world.register()
    first = approval_world.start(package)
    approval_world.wait_for_state(first, APPROVAL)

    duplicate = approval_world.deploy(package)

    assert duplicate.error == "DeploymentInProgress"
    approval_world.sfn.send_task_success(taskToken=approval_world.task_token(first), output="{}")
    assert approval_world.wait(first).status == "SUCCEEDED"



def test_two_deliveries_of_one_approval_deploy_once_while_the_listing_lags(approval_world):
    package = approval_world.register()
    with listing_lags():
        assert approval_world.sfn.list_executions(stateMachineArn=approval_world.state_machine, statusFilter="RUNNING")["executions"] == []
        first = approval_world.start(package)
        approval_world.wait_for_state(first, APPROVAL)

        duplicate = approval_world.deploy(package)
        approval_world.sfn.send_task_success(taskToken=approval_world.task_token(first), output="{}")

        assert (duplicate.status, duplicate.error) == ("FAILED", "DeploymentInProgress")
        assert approval_world.wait(first).status == "SUCCEEDED"
    assert approval_world.update_configs() == [f"{ENDPOINT}-v2-canary", f"{ENDPOINT}-v2"]
    assert [m.subject for m in approval_world.messages()].count(f"{ENDPOINT}: version 2 promoted") == 1


def test_two_approvals_never_interleave_on_the_endpoint_while_the_listing_lags(approval_world):
    with listing_lags():
        first = approval_world.start(approval_world.register())
        approval_world.wait_for_state(first, APPROVAL)

        second = approval_world.deploy(approval_world.register())
        approval_world.sfn.send_task_success(taskToken=approval_world.task_token(first), output="{}")

        assert (second.status, second.error) == ("FAILED", "DeploymentInProgress")
        assert not any(state.startswith("Create the model") for state in second.states_entered)
        assert approval_world.wait(first).status == "SUCCEEDED"
    assert approval_world.update_configs() == [f"{ENDPOINT}-v2-canary", f"{ENDPOINT}-v2"]


def _lock_holder(world: DeployerWorld) -> str | None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    item = dynamodb.get_item(TableName=world.lock_table(), Key={"Endpoint": {"S": ENDPOINT}}, ConsistentRead=True).get("Item")
    return item["Execution"]["S"] if item else None


def test_a_release_frees_the_endpoints_lock_at_its_end(released):
    assert _lock_holder(released) is None


def test_a_rolled_back_deployment_frees_the_endpoints_lock_at_its_end(released):
    released.set_alarm(released.alarms["green-5xx"])

    assert released.deploy(released.register()).error == "CanaryRolledBack"
    assert _lock_holder(released) is None


def test_an_approval_right_after_a_deployment_ended_deploys_while_its_status_still_reads_running(released):
    first = released.deploy(released.register())
    with ended_executions_seem_running():
        assert released.sfn.describe_execution(executionArn=first.arn)["status"] == "RUNNING"

        execution = released.deploy(released.register())

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert released.live_models() == {"blue": f"{MODEL}-v3"}


def test_an_earlier_holders_release_never_frees_the_lock_a_later_holder_took(released):
    newer = released.state_machine.replace(":stateMachine:", ":execution:") + ":took-over-meanwhile"
    with held_before("Release the endpoint's lock") as hold:
        execution = released.start(released.register())
        hold.reached()
        released.leave_lock_to(newer)
        hold.release()

    assert released.wait(execution).status == "SUCCEEDED"
    assert _lock_holder(released) == newer


def test_a_lock_release_that_fails_for_good_ends_the_deployment_as_it_would_have(released):
    with injected_faults() as faults:
        faults["Release the endpoint's lock"] = Fault("AccessDeniedException")
        execution = released.deploy(released.register())

    assert execution.status == "SUCCEEDED"
    assert [m.subject for m in released.messages()][-1] == f"{ENDPOINT}: version 2 promoted"
    assert _lock_holder(released) == execution.arn


def test_the_lock_an_ended_deployment_left_behind_is_taken_over_by_the_next(released):
    # An execution that ended without reaching its end states (its own timeout, an abort) leaves its lock.
    aborted = released.start(released.register())
    released.sfn.stop_execution(executionArn=aborted)
    released.wait(aborted)
    released.leave_lock_to(aborted)

    execution = released.deploy(released.register())

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert "Take over the stale lock" in execution.states_entered


def test_a_lock_held_by_an_execution_step_functions_no_longer_knows_is_taken_over(released):
    # Step Functions forgets an execution 90 days after it ended; its lock stays in the table.
    forgotten = released.state_machine.replace(":stateMachine:", ":execution:") + ":deployed-long-ago"
    released.leave_lock_to(forgotten)

    execution = released.deploy(released.register())

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert "Take over the stale lock" in execution.states_entered
    assert released.live_models() == {"green": f"{MODEL}-v2"}


def test_endpoint_left_mid_canary_is_not_touched(released):
    # Someone (or an aborted deployment) left two variants serving.
    released.sagemaker.create_endpoint_config(
        EndpointConfigName="hand-made-split",
        ProductionVariants=[
            {"VariantName": c, "ModelName": f"{MODEL}-v1", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1, "InitialVariantWeight": w}
            for c, w in (("blue", 0.5), ("green", 0.5))
        ],
    )
    released.autoscaling.deregister_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=f"endpoint/{ENDPOINT}/variant/blue", ScalableDimension="sagemaker:variant:DesiredInstanceCount"
    )
    released.shim.reads_while_updating = 0
    released.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="hand-made-split")
    assert released.live_variants() == {"blue": 0.5, "green": 0.5}
    released.shim.update_calls.clear()

    execution = released.deploy(released.register())

    assert execution.error == "EndpointBusy"
    assert released.shim.update_calls == []
    assert released.live_config() == "hand-made-split"


def test_duplicate_approval_event_after_the_release_changes_nothing(released):
    package = released.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"][0]["ModelPackageArn"]

    execution = released.deploy(package)

    assert execution.status == "SUCCEEDED"
    assert "Already serving this release" in execution.states_entered
    assert released.shim.update_calls == []


@pytest.fixture
def traffic_world(traffic_guard_template) -> DeployerWorld:
    with released_world(traffic_guard_template) as world:
        yield world


def deploy_serving(world: DeployerWorld, traffic: dict[str, list[int]]) -> Execution:
    """Deploy a new version whose bake serves `traffic`. The deployer is held just before it counts the
    requests; the test serves them, then moves the deployer's clock past the bake, so the requests are
    in CloudWatch inside the counted window however slowly the machine runs."""
    with held_before(COUNT_INVOCATIONS) as hold, state_clock() as clock:
        execution = world.start(world.register())
        hold.reached()
        for variant, batches in traffic.items():
            for invocations in batches:
                world.serve(variant, invocations)
        clock.advance(BAKE_SECONDS)
        hold.release()
        return world.wait(execution)


def test_canary_with_enough_requests_is_promoted(traffic_world):
    result = deploy_serving(traffic_world, {"green": [60, 70]})

    assert result.status == "SUCCEEDED"
    assert traffic_world.live_variants() == {"green": 1.0}


def test_canary_with_too_few_requests_rolls_back(traffic_world):
    result = deploy_serving(traffic_world, {"green": [40], "blue": [500]})

    assert result.error == "CanaryRolledBack"
    assert "too few requests" in result.cause and "40" in result.cause
    assert traffic_world.live_models() == {"blue": f"{MODEL}-v1"}


def test_canary_without_any_request_rolls_back(traffic_world):
    result = deploy_serving(traffic_world, {})

    assert result.error == "CanaryRolledBack"
    assert "too few requests" in result.cause


@pytest.fixture
def approval_world(approval_template) -> DeployerWorld:
    with released_world(approval_template) as world:
        yield world


def test_manual_approval_promotes_when_approved(approval_world):
    execution = approval_world.start(approval_world.register())
    approval_world.wait_for_state(execution, APPROVAL)
    token = approval_world.task_token(execution)

    request = approval_world.messages()[-1]
    approval_world.sfn.send_task_success(taskToken=token, output="{}")

    assert request.subject == f"{ENDPOINT}: approve version 2?"
    assert "To approve: mlops deploy approve --env dev --model tabular" in request.text
    assert f"Without an answer within {approval_world.approval_timeout_minutes} minutes, it is rolled back." in request.text
    assert approval_world.wait(execution).status == "SUCCEEDED"
    assert approval_world.live_variants() == {"green": 1.0}
    assert approval_world.messages()[-1].subject == f"{ENDPOINT}: version 2 promoted"


def test_manual_approval_rolls_back_when_rejected(approval_world):
    execution = approval_world.start(approval_world.register())
    approval_world.wait_for_state(execution, APPROVAL)

    approval_world.sfn.send_task_failure(taskToken=approval_world.task_token(execution), error="Rejected", cause="latency looks odd")

    result = approval_world.wait(execution)
    assert result.error == "CanaryRolledBack"
    assert "latency looks odd" in result.cause
    assert "Why: Promotion not approved: Rejected latency looks odd" in approval_world.messages()[-1].text
    assert approval_world.live_models() == {"blue": f"{MODEL}-v1"}


def test_second_approval_during_a_deployment_is_refused_and_the_first_completes(approval_world):
    first = approval_world.start(approval_world.register())
    approval_world.wait_for_state(first, APPROVAL)

    second = approval_world.deploy(approval_world.register())
    approval_world.sfn.send_task_success(taskToken=approval_world.task_token(first), output="{}")

    assert second.status == "FAILED"
    assert second.error == "DeploymentInProgress"
    assert not any(state.startswith("Create the model") for state in second.states_entered)
    assert approval_world.wait(first).status == "SUCCEEDED"
    assert approval_world.update_configs() == [f"{ENDPOINT}-v2-canary", f"{ENDPOINT}-v2"]


@pytest.fixture
def guardrails_world(guardrails_template) -> DeployerWorld:
    with released_world(guardrails_template) as world:
        yield world


def test_guardrails_promotes_with_one_update_carrying_the_deployment_config(guardrails_world):
    execution = guardrails_world.deploy(guardrails_world.register())

    assert execution.status == "SUCCEEDED"
    (call,) = guardrails_world.shim.accepted_update_calls
    policy = call.deployment_config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert policy["Type"] == "CANARY" and policy["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 20}
    alarms = {a["AlarmName"] for a in call.deployment_config["AutoRollbackConfiguration"]["Alarms"]}
    assert alarms == {guardrails_world.alarms[f"blue-{m}"] for m in ("5xx", "4xx", "latency")}
    assert guardrails_world.live_models() == {"blue": f"{MODEL}-v2"}
    assert guardrails_world.scaled_variants() == {"blue": [POLICY]}


def test_a_release_sagemaker_guarded_records_a_passed_canary(guardrails_world):
    execution = guardrails_world.deploy(guardrails_world.register())

    assert guardrails_world.release_record(2)["release"] == "canary-passed"
    assert guardrails_world.release_record(2)["execution"] == execution.arn


def test_guardrails_configs_capture_traffic(guardrails_world):
    guardrails_world.deploy(guardrails_world.register())

    captures = guardrails_world.data_capture()
    assert sorted(captures) == [f"{ENDPOINT}-v1", f"{ENDPOINT}-v2", f"{ENDPOINT}-v2-rollback"]
    assert all(_captures_traffic(c) for c in captures.values())


def test_guardrails_rollback_by_sagemaker_ends_failed(guardrails_world):
    guardrails_world.shim.next_update("silent_rollback")

    execution = guardrails_world.deploy(guardrails_world.register())

    assert execution.status == "FAILED"
    assert execution.error == "CanaryRolledBack"
    assert guardrails_world.live_models() == {"blue": f"{MODEL}-v1"}
    assert guardrails_world.scaled_variants() == {"blue": [POLICY]}


def test_approving_a_version_again_after_its_rollback_deploys_it(released):
    package = released.register()
    released.set_alarm(released.alarms["green-5xx"])
    assert released.deploy(package).error == "CanaryRolledBack"
    released.set_alarm(released.alarms["green-5xx"], "OK")

    execution = released.deploy(package)

    assert execution.status == "SUCCEEDED"
    assert released.live_models() == {"green": f"{MODEL}-v2"}


def test_rollback_keeps_a_scaled_out_variant_at_its_capacity(released):
    released.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "blue", "DesiredInstanceCount": 3}]
    )
    released.settle()
    released.set_alarm(released.alarms["green-5xx"])

    execution = released.deploy(released.register())

    assert execution.error == "CanaryRolledBack"
    assert released.instance_counts() == {"blue": 3}
    assert released.scaled_variants() == {"blue": [POLICY]}


def test_canary_keeps_the_live_variant_at_its_scaled_out_capacity(released):
    released.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "blue", "DesiredInstanceCount": 3}]
    )
    released.settle()

    with held_before("Start the bake") as hold:
        execution = released.start(released.register())
        hold.reached()
        canary = released.instance_counts()
    released.wait(execution)

    assert canary == {"blue": 3, "green": 1}
    assert released.instance_counts() == {"green": 3}


def test_manual_approval_without_an_answer_rolls_back_when_the_wait_runs_out(approval_world):
    with timeout_passes_at_once(APPROVAL):
        result = approval_world.deploy(approval_world.register())

    assert result.error == "CanaryRolledBack"
    assert "States.Timeout" in result.cause
    assert approval_world.live_models() == {"blue": f"{MODEL}-v1"}
    assert approval_world.scaled_variants() == {"blue": [POLICY]}


def test_lookup_of_the_endpoint_that_is_refused_creates_nothing(world):
    with injected_faults() as faults:
        faults["Find the endpoint"] = Fault("AccessDeniedException")
        execution = world.deploy(world.register())

    assert execution.error == "DeploymentFailed"
    assert "AccessDeniedException" in execution.cause
    assert world.sagemaker.list_endpoints()["Endpoints"] == []
    (told,) = world.messages()
    assert told.subject == f"{ENDPOINT}: deployment of version 1 failed"
    assert "nothing on the endpoint changed" in told.text and f"Why: {execution.cause}" in told.text


def test_guardrails_with_green_live_watches_greens_alarms(guardrails_world):
    guardrails_world.sagemaker.create_endpoint_config(
        EndpointConfigName="green-by-hand",
        ProductionVariants=[{"VariantName": "green", "ModelName": f"{MODEL}-v1", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
    )
    guardrails_world.autoscaling.deregister_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=f"endpoint/{ENDPOINT}/variant/blue", ScalableDimension="sagemaker:variant:DesiredInstanceCount"
    )
    guardrails_world.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="green-by-hand")
    guardrails_world.settle()
    guardrails_world.shim.update_calls.clear()

    execution = guardrails_world.deploy(guardrails_world.register())

    assert execution.status == "SUCCEEDED"
    (call,) = guardrails_world.shim.accepted_update_calls
    alarms = {a["AlarmName"] for a in call.deployment_config["AutoRollbackConfiguration"]["Alarms"]}
    assert alarms == {guardrails_world.alarms[f"green-{m}"] for m in ("5xx", "4xx", "latency")}
    assert guardrails_world.live_models() == {"green": f"{MODEL}-v2"}


# -- which version an execution may deploy ------------------------------------------------------


def test_approval_event_of_an_older_version_leaves_the_endpoint_untouched(released):
    first = released.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"][0]["ModelPackageArn"]
    assert released.deploy(released.register()).status == "SUCCEEDED"
    released.shim.update_calls.clear()
    told = len(released.messages())

    # SageMaker sends the Approved event again when someone edits version 1's description.
    execution = released.deploy(first)

    assert execution.status == "SUCCEEDED"
    assert "Not newer than the serving version" in execution.states_entered
    output = execution.output if isinstance(execution.output, dict) else json.loads(execution.output)
    assert "Version 1 is not newer than version 2" in output["Reason"]
    assert released.shim.update_calls == []
    assert released.live_models() == {"green": f"{MODEL}-v2"}
    assert len(released.messages()) == told


def test_older_version_creates_no_model_and_no_config(released):
    older = released.register()
    released.deploy(released.register())
    configs = released.config_names()
    models = sorted(m["ModelName"] for m in released.sagemaker.list_models()["Models"])

    assert released.deploy(older).status == "SUCCEEDED"

    assert released.config_names() == configs
    assert sorted(m["ModelName"] for m in released.sagemaker.list_models()["Models"]) == models


def test_explicit_rollback_input_deploys_the_older_version(released):
    first = released.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"][0]["ModelPackageArn"]
    released.deploy(released.register())
    released.deploy(released.register())

    execution = released.roll_back_to(first)

    assert execution.status == "SUCCEEDED"
    assert released.live_models() == {"green": f"{MODEL}-v1"}
    assert released.messages()[-1].subject == f"{ENDPOINT}: version 1 promoted"


def test_rollback_to_a_version_that_is_not_approved_is_refused(released):
    rejected = released.register(status="Rejected")

    execution = released.roll_back_to(rejected)

    assert execution.error == "PackageNotDeployable"
    assert released.shim.update_calls == []


def test_unknown_kind_of_release_is_refused_before_anything_is_read(released):
    execution = released.roll_back_to(released.register(), Release="forward")

    assert execution.error == "InvalidInput"
    assert "Describe the model package" not in execution.states_entered


def _serve_a_hand_made_model(world: DeployerWorld) -> None:
    """Someone puts a model of their own on the endpoint, outside the deployer."""
    world.sagemaker.create_model(ModelName="hand-made-model", ExecutionRoleArn="arn:aws:iam::123456789012:role/r", Containers=[{"Image": "image"}])
    world.sagemaker.create_endpoint_config(
        EndpointConfigName="hand-made",
        ProductionVariants=[{"VariantName": "blue", "ModelName": "hand-made-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
    )
    world.shim.reads_while_updating = 0
    world.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="hand-made")


def test_approval_event_over_a_model_the_deployer_did_not_create_changes_nothing(released):
    _serve_a_hand_made_model(released)
    released.shim.update_calls.clear()

    execution = released.deploy(released.register())

    assert execution.error == "DeploymentFailed"
    assert "hand-made-model, which the deployer did not create" in execution.cause
    assert released.shim.update_calls == []


def test_explicit_rollback_replaces_a_model_the_deployer_did_not_create(released):
    _serve_a_hand_made_model(released)
    first = released.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"][0]["ModelPackageArn"]

    execution = released.roll_back_to(first)

    assert execution.status == "SUCCEEDED"
    assert released.live_models() == {"green": f"{MODEL}-v1"}


def test_approval_request_never_carries_the_task_token(approval_world):
    execution = approval_world.start(approval_world.register())
    approval_world.wait_for_state(execution, APPROVAL)
    token = approval_world.task_token(execution)

    request = approval_world.messages()[-1]
    announced = approval_world.announcements()
    approval_world.sfn.send_task_success(taskToken=token, output="{}")
    approval_world.wait(execution)

    assert request.subject == f"{ENDPOINT}: approve version 2?"
    assert token not in request.text and token not in json.dumps(request.chat)
    assert all(token not in json.dumps(detail) for detail in announced)
    assert any(detail["event"] == "approval requested" for detail in announced)


def test_a_request_nobody_could_be_told_about_rolls_back(approval_world):
    with injected_faults() as faults:
        faults["Announce the approval request"] = Fault("AccessDeniedException")
        execution = approval_world.deploy(approval_world.register())

    assert execution.error == "CanaryRolledBack"
    assert "nobody could be asked" in execution.cause
    assert APPROVAL not in execution.states_entered
    assert approval_world.live_models() == {"blue": f"{MODEL}-v1"}


def test_guardrails_approval_event_of_an_older_version_changes_nothing(guardrails_world):
    first = guardrails_world.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"][0]["ModelPackageArn"]
    guardrails_world.deploy(guardrails_world.register())
    guardrails_world.shim.update_calls.clear()

    execution = guardrails_world.deploy(first)

    assert execution.status == "SUCCEEDED"
    assert "Not newer than the serving version" in execution.states_entered
    assert guardrails_world.shim.update_calls == []
    assert guardrails_world.live_models() == {"blue": f"{MODEL}-v2"}
