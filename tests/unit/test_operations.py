"""The operations stack: which events reach the notify function, and the optional pieces on and off.

Event patterns are checked with moto's EventBridge matcher against events shaped as SageMaker sends them
and as the deployer, as synthesized, puts them; events of other pipelines, groups and deployers must not match.
"""

from __future__ import annotations

import json
import re

import pytest
from moto.events.models import EventPattern

from config.naming import deployer_name, model_package_group_name
from mlops_constructs.canary_deployer import DEPLOYMENT_EVENT
from stacks.operations import ALARM_EVENT, PACKAGE_EVENT, PIPELINE_EVENT
from tests.behaviour.notify_function import handler
from tests.behaviour.sfn_harness import resolve, task_states
from tests.sample_events import alarm_state_change, model_package_state_change, pipeline_run_ended, workflow_run_ended
from tests.optional_pieces import DIGEST, EMAILS, SLACK
from tests.synth import Synthesized
from tests.templates import only, policy_statements, properties, resources, state_machine_definition



@pytest.fixture(scope="session")
def everything_on(optional_pieces_on: Synthesized) -> Synthesized:
    """dev with e-mail subscriptions, a Slack channel and the digest (and the other optional pieces)."""
    return optional_pieces_on


def _account(synthesized: Synthesized, environment: str) -> str:
    return synthesized.config(environment).account


def _region(synthesized: Synthesized, environment: str) -> str:
    return synthesized.config(environment).region


def _deployer_arn(synthesized: Synthesized, environment: str, stem: str | None = None) -> str:
    """The ARN of the deployer of the model whose names start with `stem` (the environment's names if not given)."""
    name = deployer_name(stem or synthesized.prefix(environment))
    return f"arn:aws:states:{_region(synthesized, environment)}:{_account(synthesized, environment)}:stateMachine:{name}"


def _rule(synthesized: Synthesized, environment: str, name: str) -> dict:
    """The rule's properties, with the deployers' ARNs (from the deployment stack) filled in."""
    operations = synthesized.template(environment, "operations")
    (rule,) = [r["Properties"] for logical_id, r in resources(operations, "AWS::Events::Rule").items() if re.fullmatch(f"Notifier{name}[0-9A-F]{{8}}", logical_id)]
    deployment = synthesized.template(environment, "deployment")
    machines = {
        logical_id: machine["Properties"]["StateMachineName"]
        for logical_id, machine in resources(deployment, "AWS::StepFunctions::StateMachine").items()
        if machine["Properties"].get("StateMachineName", "").endswith("-canary-deployer")
    }
    outputs = {
        name: _deployer_arn(synthesized, environment, machines[output["Value"]["Ref"]].removesuffix("-canary-deployer"))
        for name, output in deployment.get("Outputs", {}).items()
        if isinstance(output["Value"], dict) and output["Value"].get("Ref") in machines
    }
    return {**rule, "EventPattern": resolve(rule["EventPattern"], outputs)}


def _matches(rule: dict, event: dict) -> bool:
    return EventPattern.load(json.dumps(rule["EventPattern"])).matches_event(event)


def pipeline_event(region: str, account: str, pipeline: str, status: str) -> dict:
    pipeline_arn = f"arn:aws:sagemaker:{region}:{account}:pipeline/{pipeline}"
    return pipeline_run_ended(pipeline_arn, f"{pipeline_arn}/execution/0a1b2c3d4e5f", status)


def package_event(region: str, account: str, group: str, status: str) -> dict:
    return model_package_state_change(f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/3", status)


def deployer_events(synthesized: Synthesized, environment: str, model: str | None = None) -> list[dict]:
    """One event per announcing state of the synthesized deployer (of `model`, the environment-named one
    if not given), as Step Functions puts it on the bus."""
    unit = synthesized.config(environment).model_units()[model] if model else None
    where = "CanaryDeployer" if unit is None or unit.environment_names else f"Model{unit.name}CanaryDeployer"
    _, definition = state_machine_definition(synthesized.template(environment, "deployment"), where)
    account, machine = _account(synthesized, environment), _deployer_arn(synthesized, environment, unit.stem if unit else None)
    found = []
    for state in task_states(definition).values():
        if ":states:::events:putEvents" not in state["Resource"]:
            continue
        (entry,) = state["Parameters"]["Entries"]
        found.append(
            {
                "version": "0",
                "id": "a1b2c3d4-0000-4000-8000-000000000001",
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": account,
                "time": "2026-11-25T07:00:00Z",
                "region": _region(synthesized, environment),
                "resources": [machine, f"{machine.replace(':stateMachine:', ':execution:')}:deploy-1"],
                "detail": {"endpoint": "e", "event": "promoted", "detail": "m", "modelPackageArn": "arn", "execution": "arn"},
            }
        )
    return found


# -- which events are written up ---------------------------------------------------------------------


@pytest.mark.parametrize("status", ["Succeeded", "Failed", "Stopped"])
def test_every_ended_run_of_the_environments_pipelines_is_written_up(synthesized: Synthesized, environment, pipeline, status):
    rule = _rule(synthesized, environment, "PipelineRuns")

    assert _matches(rule, pipeline_event(_region(synthesized, environment), _account(synthesized, environment), f"{synthesized.prefix(environment)}-{pipeline}", status))


@pytest.mark.parametrize(
    ("pipeline", "status", "account"),
    [
        ("{prefix}-training", "Executing", None),
        ("{prefix}-training", "Stopping", None),
        ("{prefix}-training-v2", "Failed", None),
        ("mlops-other-training", "Failed", None),
        ("{prefix}-training", "Failed", "999999999999"),
    ],
    ids=["running", "stopping", "similar-name", "other-environment", "other-account"],
)
def test_runs_still_going_and_other_pipelines_runs_are_not(synthesized: Synthesized, environment, pipeline, status, account):
    rule = _rule(synthesized, environment, "PipelineRuns")
    event = pipeline_event(_region(synthesized, environment), account or _account(synthesized, environment), pipeline.format(prefix=synthesized.prefix(environment)), status)

    assert not _matches(rule, event)


@pytest.mark.parametrize("status", ["PendingManualApproval", "Approved", "Rejected"])
def test_every_review_of_the_environments_models_is_written_up(synthesized: Synthesized, environment, status):
    rule = _rule(synthesized, environment, "ModelReviews")

    assert _matches(rule, package_event(_region(synthesized, environment), _account(synthesized, environment), f"{synthesized.prefix(environment)}-models", status))


@pytest.mark.parametrize("group", ["{prefix}-models-archive", "someone-elses-models", "mlops-other-models"])
def test_other_groups_reviews_are_not(synthesized: Synthesized, environment, group):
    rule = _rule(synthesized, environment, "ModelReviews")

    assert not _matches(rule, package_event(_region(synthesized, environment), _account(synthesized, environment), group.format(prefix=synthesized.prefix(environment)), "Approved"))


def test_everything_the_deployer_announces_is_written_up(synthesized: Synthesized, environment):
    rule = _rule(synthesized, environment, "Deployments")
    events = deployer_events(synthesized, environment)

    assert len(events) >= 5
    assert [event for event in events if not _matches(rule, event)] == []


def _other_model(synthesized: Synthesized, environment: str):
    (other,) = [unit for unit in synthesized.config(environment).model_units().values() if not unit.environment_names]
    return other


def test_every_review_of_the_other_models_versions_is_written_up(synthesized: Synthesized, environment):
    rule = _rule(synthesized, environment, "ModelReviews")
    group = model_package_group_name(_other_model(synthesized, environment).stem)

    assert _matches(rule, package_event(_region(synthesized, environment), _account(synthesized, environment), group, "Approved"))


def test_everything_the_other_models_deployer_announces_is_written_up_by_its_own_rule(synthesized: Synthesized, environment):
    other = _other_model(synthesized, environment)
    own, environments = _rule(synthesized, environment, f"Deployments{other.name}"), _rule(synthesized, environment, "Deployments")
    events = deployer_events(synthesized, environment, other.name)

    assert len(events) >= 5
    assert [event for event in events if not _matches(own, event)] == []
    assert [event for event in events if _matches(environments, event)] == []


def test_another_deployers_events_are_not(synthesized: Synthesized, environment):
    rule = _rule(synthesized, environment, "Deployments")
    (event, *_) = deployer_events(synthesized, environment)
    other = _deployer_arn(synthesized, environment).replace("-canary-deployer", "-other-deployer")

    assert not _matches(rule, {**event, "resources": [other, f"{other}:deploy-1"]})
    assert not _matches(rule, {**event, "source": "mlops-other-canary-deployer"})


def alarm_event(region: str, account: str, alarm: str, state: str, previous: str) -> dict:
    return alarm_state_change(
        f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm}",
        state,
        previous,
        metric={"metric": {"dimensions": {}, "name": "Invocation5XXErrors", "namespace": "AWS/SageMaker"}, "period": 60, "stat": "Sum"},
        description="d",
        threshold=0.0,
        datapoints=[3.0],
    )


def _alarm_names(synthesized: Synthesized, environment: str) -> list[str]:
    """Every alarm of the environment, whichever stack holds it."""
    return [
        a["Properties"]["AlarmName"]
        for stack in ("deployment", "model-build", "operations")
        for a in resources(synthesized.template(environment, stack), "AWS::CloudWatch::Alarm").values()
    ]


@pytest.mark.parametrize(("state", "previous"), [("ALARM", "OK"), ("ALARM", "INSUFFICIENT_DATA"), ("OK", "ALARM"), ("INSUFFICIENT_DATA", "ALARM")])
def test_every_alarm_of_the_environment_going_into_or_out_of_alarm_is_written_up(synthesized: Synthesized, environment, state, previous):
    rule = _rule(synthesized, environment, "Alarms")
    names = _alarm_names(synthesized, environment)

    prefix = synthesized.prefix(environment)
    models = len(synthesized.config(environment).model_units())
    # Per model: six endpoint alarms and its approval rule's dead letters; the pipelines' and notifications' dead letters.
    assert len(names) == 7 * models + 2
    assert {f"{prefix}-{queue}-dead-letters" for queue in ("approval", "pipeline-start", "notification")} <= set(names)
    assert [n for n in names if not _matches(rule, alarm_event(_region(synthesized, environment), _account(synthesized, environment), n, state, previous))] == []


@pytest.mark.parametrize(
    ("alarm", "state", "previous", "account"),
    [
        ("{prefix}-endpoint-green-5xx", "OK", "INSUFFICIENT_DATA", None),
        ("{prefix}-endpoint-green-5xx", "INSUFFICIENT_DATA", "OK", None),
        ("mlops-other-endpoint-green-5xx", "ALARM", "OK", None),
        ("{prefix}-endpoint-green-5xx-copy", "ALARM", "OK", None),
        ("{prefix}-endpoint-green-5xx", "ALARM", "OK", "999999999999"),
    ],
    ids=["new-alarm-settling", "no-data", "other-environment", "similar-name", "other-account"],
)
def test_alarms_settling_and_other_alarms_are_not(synthesized: Synthesized, environment, alarm, state, previous, account):
    rule = _rule(synthesized, environment, "Alarms")
    event = alarm_event(_region(synthesized, environment), account or _account(synthesized, environment), alarm.format(prefix=synthesized.prefix(environment)), state, previous)

    assert not _matches(rule, event)


def test_no_alarm_publishes_to_the_topic_itself(synthesized: Synthesized, environment):
    alarms = properties(synthesized.template(environment, "deployment"), "AWS::CloudWatch::Alarm")

    assert alarms and [a for a in alarms if a.get("AlarmActions") or a.get("OKActions") or a.get("InsufficientDataActions")] == []


def test_the_notify_function_writes_up_exactly_these_event_types():
    assert (handler.PIPELINE_EVENT, handler.PACKAGE_EVENT, handler.DEPLOYER_EVENT, handler.ALARM_EVENT) == (
        PIPELINE_EVENT,
        PACKAGE_EVENT,
        DEPLOYMENT_EVENT,
        ALARM_EVENT,
    )


def test_every_rule_hands_its_events_to_the_notify_function_with_retries_and_a_dead_letter_queue(synthesized: Synthesized, environment):
    operations = synthesized.template(environment, "operations")
    (function,) = resources(operations, "AWS::Lambda::Function")
    rules = properties(operations, "AWS::Events::Rule")

    # Pipeline runs, reviews, alarms, batch runs, and one per model's deployer (each announces on its own bus).
    assert len(rules) == 4 + len(synthesized.config(environment).model_units())
    for rule in rules:
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert "DeadLetterConfig" in target


def test_failed_invocations_of_the_notify_function_are_retried_then_dead_lettered(synthesized: Synthesized, environment):
    operations = synthesized.template(environment, "operations")
    _, function = only(operations, "AWS::Lambda::Function")
    _, invoke = only(operations, "AWS::Lambda::EventInvokeConfig")

    assert "TargetArn" in function["DeadLetterConfig"]
    assert invoke["MaximumRetryAttempts"] == 2


# -- the optional pieces -----------------------------------------------------------------------------


def test_environments_subscribe_exactly_their_configured_addresses_and_post_to_no_unconfigured_chat(synthesized: Synthesized, environment):
    operations = synthesized.template(environment, "operations")
    notifications = synthesized.config(environment).notifications

    assert sorted(s["Endpoint"] for s in properties(operations, "AWS::SNS::Subscription")) == sorted(notifications.emails)
    assert len(resources(operations, "AWS::Chatbot::SlackChannelConfiguration")) == (1 if notifications.slack else 0)


def test_each_configured_address_subscribes_to_the_deployment_topic(everything_on: Synthesized):
    subscriptions = properties(everything_on.template("dev", "operations"), "AWS::SNS::Subscription")

    assert sorted(s["Endpoint"] for s in subscriptions) == sorted(EMAILS)
    assert {s["Protocol"] for s in subscriptions} == {"email"}
    assert all("Fn::GetStackOutput" in s["TopicArn"] for s in subscriptions)


def test_slack_channel_gets_the_topic_and_may_do_nothing_but_read_the_environments_alarms(everything_on: Synthesized):
    operations = everything_on.template("dev", "operations")
    _, channel = only(operations, "AWS::Chatbot::SlackChannelConfiguration")
    (guardrail_id, guardrail), = resources(operations, "AWS::IAM::ManagedPolicy").items()
    actions = {a for s in guardrail["Properties"]["PolicyDocument"]["Statement"] for a in [s["Action"]] if s["Effect"] == "Allow"}

    assert (channel["SlackWorkspaceId"], channel["SlackChannelId"]) == (SLACK["workspace_id"], SLACK["channel_id"])
    assert channel["ConfigurationName"] == "mlops-dev-notifications"
    assert len(channel["SnsTopicArns"]) == 1
    assert channel["GuardrailPolicies"] == [{"Ref": guardrail_id}]
    assert actions == {"cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData"}
    role = channel["IamRoleArn"]["Fn::GetAtt"][0]
    assert {a for s in policy_statements(operations, role) for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])} == actions


def test_digest_is_off_unless_configured(synthesized: Synthesized):
    assert resources(synthesized.template("dev", "operations"), "AWS::Scheduler::Schedule") == {}


def test_digest_asks_the_notify_function_for_a_digest_on_the_configured_schedule(everything_on: Synthesized):
    operations = everything_on.template("dev", "operations")
    (function,) = resources(operations, "AWS::Lambda::Function")
    _, schedule = only(operations, "AWS::Scheduler::Schedule")

    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == (DIGEST, "UTC")
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    assert json.loads(schedule["Target"]["Input"]) == {"digest": True}
    assert "DeadLetterConfig" in schedule["Target"]


# -- batch runs and dead letters reach people ---------------------------------------------------------


def _batch_rule(synthesized: Synthesized, environment: str) -> dict:
    config = synthesized.config(environment)
    rule = _rule(synthesized, environment, "BatchRuns")
    return {**rule, "EventPattern": resolve(rule["EventPattern"], {"AWS::Partition": "aws", "AWS::Region": config.region, "AWS::AccountId": config.account})}


def _batch_arn(synthesized: Synthesized, environment: str, name: str = "batch-inference") -> str:
    config = synthesized.config(environment)
    return f"arn:aws:states:{config.region}:{config.account}:stateMachine:{config.prefix}-{name}"


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_batch_run_that_did_not_succeed_is_written_up(synthesized: Synthesized, environment, status):
    event = workflow_run_ended(_batch_arn(synthesized, environment), "nightly", status, input={})

    assert _matches(_batch_rule(synthesized, environment), event)


@pytest.mark.parametrize(("status", "name"), [("SUCCEEDED", "batch-inference"), ("RUNNING", "batch-inference"), ("FAILED", "canary-deployer")], ids=["succeeded", "running", "other-workflow"])
def test_successful_batch_runs_and_other_workflows_are_not(synthesized: Synthesized, environment, status, name):
    event = workflow_run_ended(_batch_arn(synthesized, environment, name), "nightly", status, input={})

    assert not _matches(_batch_rule(synthesized, environment), event)


def test_every_dead_letter_queue_has_an_alarm_on_its_visible_messages(synthesized: Synthesized, environment):
    unwatched = []
    for stack in ("deployment", "model-build", "operations", "batch-inference"):
        template = synthesized.template(environment, stack)
        watched = {
            json.dumps(d["Value"])
            for alarm in properties(template, "AWS::CloudWatch::Alarm")
            if alarm.get("Namespace") == "AWS/SQS" and alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 0
            for d in alarm["Dimensions"]
            if d["Name"] == "QueueName"
        }
        unwatched += [f"{stack}/{queue}" for queue in resources(template, "AWS::SQS::Queue") if json.dumps({"Fn::GetAtt": [queue, "QueueName"]}) not in watched]

    assert unwatched == []
