"""variants: the new colour takes all traffic at the live capacity, gets autoscaling, releases older than
the previous one are deleted, and the other serving mode's endpoint is retired."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from mlops_constructs.canary_deployer.states import DeployerStates
from mlops_constructs.json_paths import DISCARD, list_at, number_at, string_at


def promote(states: DeployerStates, rollback: sfn.IChainable) -> sfn.IChainable:
    scope = states.scope
    create_config = states.create_config(
        "Create the promoted config",
        "$.release.Config",
        [
            {
                "VariantName": string_at("$.colour.New"),
                "ModelName": string_at("$.release.ModelName"),
                "InstanceType": string_at("$.liveConfig.InstanceType"),
                "InitialInstanceCount": number_at("$.live.Count"),
                "InitialVariantWeight": 1,
            }
        ],
    )
    update = states.update_endpoint("Promote the canary", "$.release.Config")
    register, policy = states.register_autoscaling("promoted colour", "$.colour.New")
    for task, label in ((create_config, "creating the promoted config"), (update, "promoting the canary"), (register, "registering autoscaling for the promoted colour"), (policy, "putting the scaling policy for the promoted colour")):
        states.on_failure(task, rollback, label=label)
    announce = states.notify("Announce the promotion", "promoted", "$.release.ModelName")
    announcement_failed = states.ending(
        sfn.Fail(scope, "Promoted, but the announcement failed", error="AnnouncementFailed", cause="The endpoint serves the release; the notification could not be sent")
    )
    announce.add_catch(announcement_failed, errors=["States.ALL"], result_path="$.notifyError")
    policy.next(clean_up_old_releases(states)).next(states.retire_other_endpoint("promotion")).next(
        states.record_release("promotion", "canary-passed", "promoted", announce=announce, announcement_failed=announcement_failed, done=states.ending(sfn.Succeed(scope, "Promoted")))
    )
    return create_config.next(update).next(states.await_endpoint("the promotion", "$.release.Config", register, rollback))


def clean_up_old_releases(states: DeployerStates) -> sfn.IChainable:
    """Delete endpoint configs and models other than this release's and the previous one's, which a
    manual rollback may still need. A failed clean-up does not fail the release."""
    scope = states.scope
    keep_configs = ["$.release.Config", "$.live.ConfigName"]
    keep_models = ["$.release.ModelName", "$.liveConfig.Model"]
    steps = []
    for kind, list_action, key, name_key, delete_action, prefix, keep, arns in (
        ("endpoint configs", "listEndpointConfigs", "EndpointConfigs", "EndpointConfigName", "deleteEndpointConfig", states.endpoint, keep_configs, states.config_arns),
        ("models", "listModels", "Models", "ModelName", "deleteModel", states.model_prefix, keep_models, states.model_arns),
    ):
        listed = states.sagemaker(
            f"List old {kind}",
            list_action,
            {"NameContains": prefix, "MaxResults": 100},
            ["*"],
            result_selector={"Names": list_at(f"$.{key}[*].{name_key}")},
            result_path="$.cleanup",
        )
        delete = states.sagemaker(f"Delete an old {kind[:-1]}", delete_action, {name_key: string_at("$.name")}, arns, result_path=DISCARD)
        each = sfn.Map(
            scope,
            f"Delete old {kind}",
            items_path="$.cleanup.Names",
            item_selector={"name": string_at("$$.Map.Item.Value"), **{f"keep{i}": string_at(path) for i, path in enumerate(keep)}},
            max_concurrency=1,
            result_path=DISCARD,
        )
        each.item_processor(
            sfn.Choice(scope, f"Is it an old {kind[:-1]}?")
            .when(
                sfn.Condition.or_(*(sfn.Condition.string_equals_json_path("$.name", f"$.keep{i}") for i in range(len(keep)))),
                sfn.Succeed(scope, f"Keep the {kind[:-1]}"),
            )
            .otherwise(delete)
        )
        steps.append(listed.next(each))
    clean_up = sfn.Parallel(scope, "Clean up old releases", result_path=DISCARD)
    clean_up.branch(sfn.Chain.start(steps[0]).next(steps[1]))
    failed = sfn.Pass(scope, "Clean-up failed; the release stands")
    clean_up.add_catch(failed, errors=["States.ALL"], result_path="$.cleanupError")
    complete = sfn.Pass(scope, "Release complete")
    clean_up.next(complete)
    failed.next(complete)
    return sfn.Chain.custom(clean_up, [complete], complete)
