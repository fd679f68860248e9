"""No endpoint yet: create it on blue, wait until it serves, register autoscaling (instances), and retire the
other serving mode's endpoint."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from mlops_constructs.canary_deployer.states import DeployerStates
from mlops_constructs.json_paths import DISCARD, string_at


def first_release(states: DeployerStates, instance_type: str, instance_count: int) -> sfn.IChainable:
    scope = states.scope
    ended = states.ending(sfn.Fail(scope, "First release failed", error="EndpointCreationFailed", cause_path="$.failure.reason"))
    announce_failure = states.notify("Announce the failed first release", "first release failed", "$.failure.reason")
    announce_failure.add_catch(ended, errors=["States.ALL"], result_path="$.notifyError")
    failed = announce_failure.next(ended)

    variant = (
        states.serverless_variant("blue", string_at("$.release.ModelName"))
        if states.serverless
        else {
            "VariantName": "blue",
            "ModelName": string_at("$.release.ModelName"),
            "InstanceType": instance_type,
            "InitialInstanceCount": instance_count,
            "InitialVariantWeight": 1,
        }
    )
    create_config = states.create_config("Create the first endpoint config", "$.release.Config", [variant])
    create_endpoint = states.sagemaker(
        "Create the endpoint",
        "createEndpoint",
        {"EndpointName": states.endpoint, "EndpointConfigName": string_at("$.release.Config")},
        [*states.endpoint_arns, *states.config_arns],
        result_path=DISCARD,
    )
    announce = states.notify("Announce the first release", "released", "$.release.ModelName")
    for task, label in ((create_config, "creating the first endpoint config"), (create_endpoint, "creating the endpoint")):
        states.on_failure(task, failed, label=label)
    announcement_failed = states.ending(
        sfn.Fail(scope, "Released, but the announcement failed", error="AnnouncementFailed", cause="The endpoint serves the release; the notification could not be sent")
    )
    announce.add_catch(announcement_failed, errors=["States.ALL"], result_path="$.notifyError")
    served = states.retire_other_endpoint("first release")
    served.next(
        states.record_release(
            "first release", "first-release", "released", announce=announce, announcement_failed=announcement_failed, done=states.ending(sfn.Succeed(scope, "Released on blue"))
        )
    )
    if states.serverless:
        # Serverless capacity follows the requests; there is no scalable target to register.
        in_service: sfn.IChainable = served
    else:
        register, policy = states.register_autoscaling("first release", "blue")
        for task, label in ((register, "registering autoscaling for the first release"), (policy, "putting the scaling policy for the first release")):
            states.on_failure(task, failed, label=label)
        policy.next(served)
        in_service = register
    return create_config.next(create_endpoint).next(states.await_endpoint("the new endpoint", "$.release.Config", in_service, failed))
