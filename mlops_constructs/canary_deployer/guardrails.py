"""guardrails: one UpdateEndpoint with SageMaker's blue/green deployment; SageMaker shifts the traffic and
rolls back on the updated variant's alarms itself."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from config.naming import COLOURS
from mlops_constructs.canary_deployer.canary import live_variant
from mlops_constructs.canary_deployer.states import DeployerStates
from mlops_constructs.json_paths import list_at


def guardrails(
    states: DeployerStates,
    *,
    weight: float,
    traffic_routing: str,
    alarm_names: dict[str, list[str]],
    nothing_changed: sfn.IChainable,
    rollback: sfn.IChainable,
) -> sfn.IChainable:
    scope = states.scope
    watch = sfn.Choice(scope, "Which variant does SageMaker update?")
    colours = {
        colour: sfn.Pass(
            scope,
            f"Guard with {colour}'s alarms",
            result=sfn.Result.from_object({"New": colour, "RollbackAlarms": [{"AlarmName": name} for name in alarm_names[colour]]}),
            result_path="$.colour",
        )
        for colour in COLOURS
    }
    watch.when(sfn.Condition.string_equals("$.live.Variant", "green"), colours["green"]).otherwise(colours["blue"])

    create_rollback = states.create_config("Create the rollback config (guardrails)", "$.release.RollbackConfig", [live_variant()])
    create_config = states.create_config(
        "Create the new config", "$.release.Config", [live_variant(model="$.release.ModelName")]
    )
    states.on_failure(create_rollback, nothing_changed, label="creating the rollback config (guardrails)")
    states.on_failure(create_config, nothing_changed, label="creating the new config")
    deregister, autoscaling_off = states.deregister_autoscaling("guarded variant", "$.live.Variant")
    states.on_failure(deregister, rollback, label="deregistering autoscaling from the guarded variant")

    bake_seconds = states.timings.bake_seconds
    routing = {"Type": traffic_routing, "WaitIntervalInSeconds": bake_seconds}
    routing["CanarySize" if traffic_routing == "CANARY" else "LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": round(weight * 100)}
    update = states.update_endpoint(
        "Deploy with SageMaker guardrails",
        "$.release.Config",
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": min(states.timings.poll_seconds, 3600),
                "MaximumExecutionTimeoutInSeconds": max(600, min(28800, 2 * bake_seconds + 600)),
            },
            "AutoRollbackConfiguration": {"Alarms": list_at("$.colour.RollbackAlarms")},
        },
    )
    states.on_failure(update, rollback, label="deploying with SageMaker guardrails")

    register, policy = states.register_autoscaling("guarded variant", "$.live.Variant")
    states.on_failure(register, rollback, label="registering autoscaling for the guarded variant")
    states.on_failure(policy, rollback, label="putting the scaling policy for the guarded variant")
    announce = states.notify("Announce the guarded release", "promoted", "$.release.ModelName")
    announcement_failed = states.ending(
        sfn.Fail(scope, "Promoted by SageMaker, but the announcement failed", error="AnnouncementFailed", cause="The endpoint serves the release; the notification could not be sent")
    )
    announce.add_catch(announcement_failed, errors=["States.ALL"], result_path="$.notifyError")
    policy.next(states.retire_other_endpoint("promotion")).next(
        states.record_release(
            "guarded release", "canary-passed", "promoted", announce=announce, announcement_failed=announcement_failed, done=states.ending(sfn.Succeed(scope, "Promoted by SageMaker"))
        )
    )

    for colour in colours.values():
        colour.next(create_rollback)
    create_rollback.next(create_config).next(deregister)
    autoscaling_off.next(update).next(states.await_endpoint("the guarded release", "$.release.Config", register, rollback))
    return watch
