"""Putting things back: the endpoint returns to the live model at its live capacity, autoscaling returns
to the live variant, someone is told, and the execution ends FAILED with the reason."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn

from mlops_constructs.canary_deployer.states import IN_SERVICE, DeployerStates
from mlops_constructs.json_paths import string_at

_SETTLING = ("Creating", "Updating", "SystemUpdating", "RollingBack")


def nothing_changed(states: DeployerStates) -> sfn.IChainable:
    """For failures before the endpoint was touched: announce and end FAILED."""
    ended = states.ending(sfn.Fail(states.scope, "Deployment failed", error="DeploymentFailed", cause_path="$.failure.reason"))
    announce = states.notify("Announce the failed deployment", "deployment failed", "$.failure.reason")
    announce.add_catch(ended, errors=["States.ALL"], result_path="$.notifyError")
    return announce.next(ended)


def roll_back(states: DeployerStates) -> sfn.IChainable:
    """Entered with `$.failure.reason` from anywhere after autoscaling came off the live variant.

    An update in progress is let settle first (SageMaker refuses to update an updating endpoint), for as
    many checks as an update is waited for; one still in progress after that is reported as it is, with what
    to do, rather than met with an update SageMaker would refuse. Then, unless the endpoint already serves
    the live config, it is updated to the rollback config: the live model at the live instance count, so a
    scaled-out variant keeps its capacity.
    """
    scope = states.scope
    rolled_back = states.ending(sfn.Fail(scope, "Rolled back", error="CanaryRolledBack", cause_path="$.failure.reason"))
    stuck = states.ending(sfn.Fail(scope, "Rollback failed", error="RollbackFailed", cause_path="$.failure.reason"))
    announce_stuck = states.notify("Announce the failed rollback", "rollback failed", "$.failure.reason")
    announce_stuck.add_catch(stuck, errors=["States.ALL"], result_path="$.notifyError")
    announce_stuck.next(stuck)

    announce = states.notify("Announce the rollback", "rolled back", "$.failure.reason")
    announce.add_catch(rolled_back, errors=["States.ALL"], result_path="$.notifyError")
    announce.next(rolled_back)
    if states.serverless:
        # A serverless variant has no autoscaling to restore.
        restore: sfn.IChainable = announce
    else:
        register, policy = states.register_autoscaling("restored variant", "$.live.Variant")
        states.on_failure(register, announce_stuck, label="restoring autoscaling")
        states.on_failure(policy, announce_stuck, label="restoring the scaling policy")
        policy.next(announce)
        restore = register

    start, count = states.counter("Start the rollback", "Count settling polls", "$.settle")
    check = states.describe_endpoint("Check the endpoint before rolling back", "$.endpoint", retries_within="$.settle")
    states.on_failure(check, announce_stuck, label="checking the endpoint before rolling back")
    wait = sfn.Wait(scope, "Let the update settle", time=sfn.WaitTime.duration(cdk.Duration.seconds(states.timings.poll_seconds)))

    update = states.update_endpoint("Roll back to the live config", "$.release.RollbackConfig")
    refused = sfn.Pass(
        scope,
        "Record the refused rollback",
        parameters={
            "reason": sfn.JsonPath.format(
                "{}; rolling back was refused: {}", string_at("$.failure.reason"), string_at("$.rollbackError.Cause")
            )
        },
        result_path="$.failure",
    )
    update.add_catch(refused, errors=["States.ALL"], result_path="$.rollbackError")
    refused.next(announce_stuck)
    update.next(states.await_endpoint("the rollback", "$.release.RollbackConfig", restore, announce_stuck))

    settling = sfn.Condition.or_(*(sfn.Condition.string_equals("$.endpoint.Status", status) for status in _SETTLING))
    # SageMaker refuses UpdateEndpoint while an update runs: trying would only add a refusal to the reason.
    still_settling = sfn.Pass(
        scope,
        "Record the endpoint still settling",
        parameters={
            "reason": sfn.JsonPath.format(
                f"{{}}; nothing was rolled back: endpoint {states.endpoint} was still {{}} after {states.timings.max_update_polls} checks "
                f"{states.timings.poll_seconds} s apart, and SageMaker refuses an update until the one in progress ends. It ends by itself "
                "(InService or rolled back by SageMaker); then, if the endpoint does not serve {} (its config before this release), "
                "go back with mlops deploy rollback --to <the version it served>",
                string_at("$.failure.reason"),
                string_at("$.endpoint.Status"),
                string_at("$.live.ConfigName"),
            )
        },
        result_path="$.failure",
    )
    still_settling.next(announce_stuck)
    start.next(check).next(count).next(
        sfn.Choice(scope, "Does the endpoint still serve the live config?")
        .when(
            sfn.Condition.and_(
                sfn.Condition.string_equals("$.endpoint.Status", IN_SERVICE),
                sfn.Condition.string_equals_json_path("$.endpoint.ConfigName", "$.live.ConfigName"),
            ),
            restore,
        )
        .when(sfn.Condition.and_(settling, sfn.Condition.number_less_than("$.settle.count", states.timings.max_update_polls)), wait.next(check))
        .when(settling, still_settling)
        .otherwise(update)
    )
    return start
