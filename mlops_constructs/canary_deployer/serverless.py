"""serverless: a serverless endpoint takes one production variant, so a release replaces it whole. The new
model goes onto the colour not in use as the endpoint's only variant, and bakes while that colour's alarms
are checked; the optional guards come after, as for instances. There is nothing to promote afterwards: the
endpoint already serves the release. An alarm puts the live model back on its own colour."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from mlops_constructs.canary_deployer.promote import clean_up_old_releases
from mlops_constructs.canary_deployer.states import DeployerStates
from mlops_constructs.json_paths import string_at


def replace_variant(states: DeployerStates, *, bake: sfn.IChainable, nothing_changed: sfn.IChainable, rollback: sfn.IChainable) -> sfn.IChainable:
    """Create the rollback config (the live variant as it serves, so every later failure has somewhere to go
    back to) and the release's config, update the endpoint to it and wait until it serves."""
    create_rollback = states.create_config(
        "Create the rollback config",
        "$.release.RollbackConfig",
        [states.serverless_variant(string_at("$.live.Variant"), string_at("$.liveConfig.Model"), sfn.JsonPath.object_at("$.liveConfig.ServerlessConfig"))],
    )
    create_release = states.create_config(
        "Create the release config", "$.release.Config", [states.serverless_variant(string_at("$.colour.New"), string_at("$.release.ModelName"))]
    )
    states.on_failure(create_rollback, nothing_changed, label="creating the rollback config")
    states.on_failure(create_release, nothing_changed, label="creating the release config")
    update = states.update_endpoint("Replace the serverless variant", "$.release.Config")
    states.on_failure(update, rollback, label="replacing the serverless variant")
    create_rollback.next(create_release).next(update).next(states.await_endpoint("the new variant", "$.release.Config", bake, rollback))
    return create_rollback


def complete(states: DeployerStates) -> sfn.IChainable:
    """The release served its bake (and passed the guards): clean up, retire the other mode's endpoint, announce."""
    scope = states.scope
    announce = states.notify("Announce the promotion", "promoted", "$.release.ModelName")
    announcement_failed = states.ending(
        sfn.Fail(scope, "Promoted, but the announcement failed", error="AnnouncementFailed", cause="The endpoint serves the release; the notification could not be sent")
    )
    announce.add_catch(announcement_failed, errors=["States.ALL"], result_path="$.notifyError")
    return (
        clean_up_old_releases(states)
        .next(states.retire_other_endpoint("promotion"))
        .next(states.record_release("promotion", "canary-passed", "promoted", announce=announce, announcement_failed=announcement_failed, done=states.ending(sfn.Succeed(scope, "Promoted"))))
    )
