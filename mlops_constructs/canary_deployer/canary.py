"""variants: the new model takes `weight` of the traffic on the colour not in use, and bakes while its
alarms are checked; optional guards (enough requests, a person's approval) come before the promotion."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn

from config.naming import COLOURS
from mlops_constructs.canary_deployer.states import DeployerStates
from mlops_constructs.json_paths import DISCARD, list_at, number_at, string_at

# The state that waits for a person's answer; `mlops deploy approve` reads the token from its TaskScheduled event.
APPROVAL_STATE = "Wait for an approver"


def live_variant(count_path: str = "$.live.Count", *, model: str = "$.liveConfig.Model", weight: float = 1) -> dict:
    """The live variant as it serves now: its model, instance type and current instance count."""
    return {
        "VariantName": string_at("$.live.Variant"),
        "ModelName": string_at(model),
        "InstanceType": string_at("$.liveConfig.InstanceType"),
        "InitialInstanceCount": number_at(count_path),
        "InitialVariantWeight": weight,
    }


def pick_colour(states: DeployerStates, alarm_names: dict[str, list[str]], then: sfn.IChainable) -> sfn.Choice:
    """The canary goes to the colour not in use, watched by that colour's alarms."""
    choice = sfn.Choice(states.scope, "Which colour is live?")
    colours = {
        colour: sfn.Pass(
            states.scope,
            f"Canary goes to {colour}",
            result=sfn.Result.from_object({"New": colour, "Alarms": alarm_names[colour]}),
            result_path="$.colour",
        )
        for colour in COLOURS
    }
    choice.when(sfn.Condition.string_equals("$.live.Variant", "blue"), colours["green"]).otherwise(colours["blue"])
    for colour in colours.values():
        colour.next(then)
    return choice


def canary(
    states: DeployerStates, *, weight: float, instance_type: str, bake: sfn.IChainable, nothing_changed: sfn.IChainable, rollback: sfn.IChainable
) -> sfn.IChainable:
    """Create the configs (the rollback config first, so every later failure has somewhere to go back
    to), take autoscaling off the live variant, shift the traffic and wait for it."""
    create_rollback = states.create_config("Create the rollback config", "$.release.RollbackConfig", [live_variant()])
    create_canary = states.create_config(
        "Create the canary config",
        "$.release.CanaryConfig",
        [
            live_variant(weight=round(1 - weight, 6)),
            {
                "VariantName": string_at("$.colour.New"),
                "ModelName": string_at("$.release.ModelName"),
                "InstanceType": instance_type,
                "InitialInstanceCount": 1,
                "InitialVariantWeight": weight,
            },
        ],
    )
    states.on_failure(create_rollback, nothing_changed, label="creating the rollback config")
    states.on_failure(create_canary, nothing_changed, label="creating the canary config")
    deregister, autoscaling_off = states.deregister_autoscaling("live variant", "$.live.Variant")
    states.on_failure(deregister, rollback, label="deregistering autoscaling from the live variant")
    shift = states.update_endpoint("Shift canary traffic", "$.release.CanaryConfig")
    states.on_failure(shift, rollback, label="shifting canary traffic")
    create_rollback.next(create_canary).next(deregister)
    autoscaling_off.next(shift).next(states.await_endpoint("the canary", "$.release.CanaryConfig", bake, rollback))
    return create_rollback


def bake(states: DeployerStates, alarm_arns: list[str], after: sfn.IChainable, rollback: sfn.IChainable) -> sfn.IChainable:
    """Check the new colour's alarms every `alarm_poll_seconds`, `bake_checks` times; an ALARM rolls back."""
    scope = states.scope
    start, count = states.counter("Start the bake", "Count bake checks", "$.bake")
    check = states.call(
        "Check the canary's alarms",
        "cloudwatch",
        "describeAlarms",
        {"AlarmNames": list_at("$.colour.Alarms"), "StateValue": "ALARM"},
        alarm_arns,
        # The state is checked here again rather than trusted to the request's filter alone.
        result_selector={
            "Firing": sfn.JsonPath.array_contains(list_at("$.MetricAlarms[*].StateValue"), "ALARM"),
            "Names": list_at("$.MetricAlarms[*].AlarmName"),
        },
        result_path="$.alarms",
        # Polled through the bake: every check has the whole retry bound (see sdk_errors).
        retries_within="$.bake",
    )
    states.on_failure(check, rollback, label="checking the canary alarms")
    alarm = sfn.Pass(
        scope,
        "Record the alarm",
        parameters={"reason": sfn.JsonPath.format("Canary alarm in ALARM: {}", sfn.JsonPath.json_to_string(list_at("$.alarms.Names")))},
        result_path="$.failure",
    )
    alarm.next(rollback)
    wait = sfn.Wait(scope, "Bake", time=sfn.WaitTime.duration(cdk.Duration.seconds(states.timings.alarm_poll_seconds)))
    start.next(check).next(count).next(
        sfn.Choice(scope, "Is the canary healthy?")
        .when(sfn.Condition.boolean_equals("$.alarms.Firing", True), alarm)
        .when(sfn.Condition.number_greater_than_equals("$.bake.count", states.timings.bake_checks), after)
        .otherwise(wait)
    )
    wait.next(check)
    return start


def enough_traffic(states: DeployerStates, min_invocations: int, promote: sfn.IChainable, rollback: sfn.IChainable) -> sfn.IChainable:
    """Roll back a canary that served fewer than `min_invocations` requests: no alarm is no evidence."""
    scope = states.scope
    window = states.timings.longest_path_seconds()
    count = states.call(
        "Count the canary's invocations",
        "cloudwatch",
        "getMetricData",
        {
            "StartTime": string_at("$$.Execution.StartTime"),
            "EndTime": string_at("$$.State.EnteredTime"),
            "MetricDataQueries": [
                {
                    "Id": "invocations",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SageMaker",
                            "MetricName": "Invocations",
                            "Dimensions": [
                                {"Name": "EndpointName", "Value": states.endpoint},
                                {"Name": "VariantName", "Value": string_at("$.colour.New")},
                            ],
                        },
                        # One period longer than the whole execution: a single sum from its start.
                        "Period": 60 * (window // 60 + 60),
                        "Stat": "Sum",
                    },
                }
            ],
        },
        ["*"],
        iam_action="cloudwatch:GetMetricData",
        result_selector={"Values": list_at("$.MetricDataResults[*].Values")},
        result_path="$.traffic",
    )
    states.on_failure(count, rollback, label="counting canary invocations")
    unwrap = sfn.Pass(
        scope,
        "Unwrap the invocation values",
        parameters={"Values": sfn.JsonPath.array_get_item(list_at("$.traffic.Values"), 0)},
        result_path="$.traffic",
    )
    too_few = sfn.Pass(
        scope,
        "Record too little traffic",
        parameters={
            "reason": sfn.JsonPath.format(
                f"The canary served too few requests to judge: {{}} invocations, at least {min_invocations} needed",
                sfn.JsonPath.json_to_string(list_at("$.traffic.Values")),
            )
        },
        result_path="$.failure",
    )
    too_few.next(rollback)
    first = sfn.Pass(
        scope,
        "Take the invocation count",
        parameters={"Sum": sfn.JsonPath.array_get_item(list_at("$.traffic.Values"), 0), "Values": list_at("$.traffic.Values")},
        result_path="$.traffic",
    )
    first.next(
        sfn.Choice(scope, "Did the canary serve enough requests?")
        .when(sfn.Condition.number_greater_than_equals("$.traffic.Sum", min_invocations), promote)
        .otherwise(too_few)
    )
    # Indexed only once present: an index past the end is a States.Runtime error, which no Catch can handle.
    unwrap.next(sfn.Choice(scope, "Did the canary get any traffic?").when(sfn.Condition.is_present("$.traffic.Values[0]"), first).otherwise(too_few))
    return count.next(
        sfn.Choice(scope, "Was the invocation metric returned?").when(sfn.Condition.is_present("$.traffic.Values[0]"), unwrap).otherwise(too_few)
    )


def approval(states: DeployerStates, timeout: cdk.Duration, promote: sfn.IChainable, rollback: sfn.IChainable) -> sfn.IChainable:
    """Announce that the canary awaits approval, then wait for an answer: SendTaskSuccess promotes;
    SendTaskFailure, or no answer within `timeout`, rolls back.

    The task token never leaves Step Functions. The waiting state's only call is a heartbeat of its own
    token to Step Functions itself, so the token is in this execution's history (the state's TaskScheduled
    parameters, ``{"TaskToken": ...}``) and nowhere else: not in the announcement, not in the logs (which
    leave out execution data). Answering takes reading that history, which the approver's policy allows.
    """
    scope = states.scope
    ask = states.announce("Announce the approval request", {"event": "approval requested", "detail": f"{int(timeout.to_minutes())}"})
    unasked = sfn.Pass(
        scope,
        "Record the unsent approval request",
        parameters={"reason": sfn.JsonPath.format("Promotion not approved: nobody could be asked: {} {}", string_at("$.approval.Error"), string_at("$.approval.Cause"))},
        result_path="$.failure",
    )
    ask.add_catch(unasked, errors=["States.ALL"], result_path="$.approval")
    unasked.next(rollback)
    wait = states.call(
        APPROVAL_STATE,
        "sfn",
        "sendTaskHeartbeat",
        {"TaskToken": sfn.JsonPath.task_token},
        ["*"],
        iam_action="states:SendTaskHeartbeat",
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        task_timeout=sfn.Timeout.duration(timeout),
        result_path=DISCARD,
    )
    refused = sfn.Pass(
        scope,
        "Record the refusal",
        parameters={"reason": sfn.JsonPath.format("Promotion not approved: {} {}", string_at("$.approval.Error"), string_at("$.approval.Cause"))},
        result_path="$.failure",
    )
    refused.next(rollback)
    wait.add_catch(refused, errors=["States.ALL"], result_path="$.approval")
    return ask.next(wait).next(promote)
