"""Before anything changes: check the package, take the endpoint's lock, name the release,
create its model and find the endpoint. A failure here leaves the endpoint as it was."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as dynamodb_tasks

from mlops_constructs.canary_deployer.states import RETRY, DeployerStates
from mlops_constructs.json_paths import DISCARD, EXECUTION_ID, list_at, number_at, string_at
from mlops_constructs.sdk_errors import GetItemCall, PutItemCall

# SageMaker's endpoint config names: 63 characters at most.
MAX_CONFIG_NAME = 63
# "-v<version>-<attempt>-canary": a version of up to six digits and an eight-character attempt id.
CONFIG_SUFFIX = len("-v999999-12345678-canary")


# The one input that deploys a version without it being newer than the one serving: a deliberate act
# (``mlops deploy rollback --to VERSION``), never an approval event, whose input carries no ``Release``.
ROLLBACK = "rollback"


def read_request(states: DeployerStates, then: sfn.IChainable) -> sfn.IChainable:
    """``{"ModelPackageArn": ...}`` comes from an approval event; ``"Release": "rollback"`` added to it
    deploys the version even if it is not newer than the one serving. Any other ``Release`` is refused."""
    scope = states.scope
    rollback = sfn.Pass(scope, "A deliberate rollback", result=sfn.Result.from_object({"Rollback": True}), result_path="$.request")
    approval = sfn.Pass(scope, "An approval", result=sfn.Result.from_object({"Rollback": False}), result_path="$.request")
    unknown = sfn.Fail(
        scope,
        "Unknown kind of release",
        error="InvalidInput",
        cause=f'The only Release the deployer accepts is "{ROLLBACK}"; an approval event carries no Release',
    )
    rollback.next(then)
    approval.next(then)
    return (
        sfn.Choice(scope, "Is this a deliberate rollback?")
        .when(
            sfn.Condition.is_present("$.Release"),
            sfn.Choice(scope, "Is the kind of release known?").when(sfn.Condition.string_equals("$.Release", ROLLBACK), rollback).otherwise(unknown),
        )
        .otherwise(approval)
    )


def only_newer_versions(states: DeployerStates, go_ahead: sfn.IChainable, failed: sfn.IChainable) -> sfn.IChainable:
    """An approval deploys only a version newer than the one serving: SageMaker sends the approval's event
    again for any later edit of a package (description, metadata, stage), so an event of an older version
    is no request to go back. Such an execution changes nothing and ends SUCCEEDED, its output saying why:
    these events are routine, not failures. The serving version is read from the live model's name, which
    the deployer derives from the package version (``<prefix>-v<version>``); a live model the deployer did
    not create leaves the serving version unknown, and only a deliberate rollback replaces it."""
    scope = states.scope
    model_pattern = f"{states.model_prefix}-v*"
    # "<prefix>-v<version>": split on "v", the version is the last piece.
    pieces = sfn.JsonPath.string_split(string_at("$.liveConfig.Model"), "v")
    read = sfn.Pass(
        scope,
        "Read the serving version",
        parameters={
            "Version": sfn.JsonPath.string_to_json(
                sfn.JsonPath.array_get_item(pieces, cdk.Token.as_number(sfn.JsonPath.math_add(cdk.Token.as_number(sfn.JsonPath.array_length(pieces)), -1)))
            ),
            "Model": string_at("$.liveConfig.Model"),
        },
        result_path="$.serving",
    )
    not_newer = sfn.Pass(
        scope,
        "Record why nothing changes",
        parameters={
            "Outcome": "NotNewer",
            "ModelPackageArn": string_at("$.ModelPackageArn"),
            "Reason": sfn.JsonPath.format(
                f"Version {{}} is not newer than version {{}}, which endpoint {states.endpoint} serves: an approval event deploys newer versions only, "
                f'so nothing changed. To go back to version {{}}, start the deployer with "Release": "{ROLLBACK}" (mlops deploy rollback --to {{}}).',
                sfn.JsonPath.json_to_string(number_at("$.package.Version")),
                sfn.JsonPath.json_to_string(number_at("$.serving.Version")),
                sfn.JsonPath.json_to_string(number_at("$.package.Version")),
                sfn.JsonPath.json_to_string(number_at("$.package.Version")),
            ),
        },
    )
    not_newer.next(states.ending(sfn.Succeed(scope, "Not newer than the serving version")))
    unknown = sfn.Pass(
        scope,
        "Record the unknown serving version",
        parameters={
            "reason": sfn.JsonPath.format(
                f"Endpoint {states.endpoint} serves model {{}}, which the deployer did not create, so whether version {{}} is newer is unknown; "
                f'to replace it deliberately, start the deployer with "Release": "{ROLLBACK}"',
                string_at("$.liveConfig.Model"),
                sfn.JsonPath.json_to_string(number_at("$.package.Version")),
            )
        },
        result_path="$.failure",
    )
    unknown.next(failed)
    read.next(
        sfn.Choice(scope, "Is the version newer than the serving one?")
        .when(sfn.Condition.number_greater_than_json_path("$.package.Version", "$.serving.Version"), go_ahead)
        .otherwise(not_newer)
    )
    return (
        sfn.Choice(scope, "Is this a deliberate rollback or an approval?")
        .when(sfn.Condition.boolean_equals("$.request.Rollback", True), go_ahead)
        .when(sfn.Condition.string_matches("$.liveConfig.Model", model_pattern), read)
        .otherwise(unknown)
    )


def check_package(states: DeployerStates, group_name: str, package_arns: list[str], failed: sfn.IChainable) -> tuple[sfn.IChainable, sfn.Choice]:
    """Describe the package; returns the first state and the choice whose `afterwards()` goes on."""
    describe = states.sagemaker(
        "Describe the model package",
        "describeModelPackage",
        {"ModelPackageName": string_at("$.ModelPackageArn")},
        package_arns,
        result_selector={
            "Status": string_at("$.ModelApprovalStatus"),
            "Group": string_at("$.ModelPackageGroupName"),
            "Version": number_at("$.ModelPackageVersion"),
        },
        result_path="$.package",
    )
    states.on_failure(describe, failed, label="reading the model package")
    not_deployable = sfn.Fail(
        states.scope,
        "Package is not an approved package of our group",
        error="PackageNotDeployable",
        cause=f"Only Approved packages of {group_name} are deployed",
    )
    approved = sfn.Choice(states.scope, "Is the package approved and ours?").otherwise(not_deployable)
    describe.next(approved)
    return describe, approved


def one_deployment_at_a_time(states: DeployerStates, lock: dynamodb.ITable, execution_arns: str, failed: sfn.IChainable) -> sfn.Chain:
    """Only the execution holding the endpoint's lock deploys; any other (a duplicate approval event, or
    the next approval arriving early) is refused before it touches the endpoint. The lock is a conditional
    write, which DynamoDB decides strongly consistently; ListExecutions is eventually consistent and may not
    show an execution that has just started. Every end of the execution releases the lock
    (`DeployerStates.release_lock_at_every_end`), but an execution can end without reaching one (its own
    timeout, an abort): a lock is also stale as soon as its holder no longer runs, and the next execution
    takes it over."""
    scope = states.scope
    me = dynamodb_tasks.DynamoAttributeValue.from_string(EXECUTION_ID)
    endpoint_key = {"Endpoint": dynamodb_tasks.DynamoAttributeValue.from_string(states.endpoint)}
    take = PutItemCall(
        scope,
        "Take the endpoint's lock",
        table=lock,
        item={**endpoint_key, "Execution": me},
        # The holder may take it again: a retry after a write that succeeded but answered an error.
        condition_expression="attribute_not_exists(Endpoint) OR Execution = :me",
        expression_attribute_values={":me": me},
        result_path=DISCARD,
        retry=RETRY,
    )
    read = GetItemCall(scope, "Read the lock's holder", table=lock, key=endpoint_key, consistent_read=True, result_path="$.lock", retry=RETRY)
    holder = states.call(
        "Check whether the lock's holder runs",
        "sfn",
        "describeExecution",
        {"ExecutionArn": string_at("$.lock.Item.Execution.S")},
        [execution_arns],
        iam_action="states:DescribeExecution",
        result_selector={"Status": string_at("$.Status")},
        result_path="$.holder",
    )
    take_over = PutItemCall(
        scope,
        "Take over the stale lock",
        table=lock,
        item={**endpoint_key, "Execution": me},
        # Only from the holder that has ended: if another execution took it meanwhile, that one deploys.
        condition_expression="Execution = :holder",
        expression_attribute_values={":holder": dynamodb_tasks.DynamoAttributeValue.from_string(string_at("$.lock.Item.Execution.S"))},
        result_path=DISCARD,
        retry=RETRY,
    )
    go_ahead = sfn.Pass(scope, "Go ahead")
    refused = sfn.Fail(
        scope,
        "Another deployment is running",
        error="DeploymentInProgress",
        cause="An earlier execution is still deploying to this endpoint; approve again once it has finished",
    )
    held = ["DynamoDB.ConditionalCheckFailedException"]
    take.add_catch(read, errors=held, result_path=DISCARD)
    take_over.add_catch(refused, errors=held, result_path=DISCARD)
    # Step Functions keeps an execution's record for 90 days after it ends: a holder it no longer knows has ended.
    holder.add_catch(take_over, errors=["Sfn.ExecutionDoesNotExistException"], result_path=DISCARD)
    # Labels go into States.Format, where an apostrophe would have to be escaped.
    for task, label in ((take, "taking the endpoint lock"), (read, "reading who holds the endpoint lock"), (holder, "checking whether the lock holder runs"), (take_over, "taking over the stale lock")):
        states.on_failure(task, failed, label=label)
    take.next(go_ahead)
    take_over.next(go_ahead)
    read.next(
        # Read only when present: a path that is absent is a States.Runtime error, which no Catch can handle.
        sfn.Choice(scope, "Is the lock still held?")
        .when(sfn.Condition.is_present("$.lock.Item.Execution.S"), holder)
        # Released between the write and the read: nobody holds it, so take it.
        .otherwise(take)
    )
    holder.next(
        sfn.Choice(scope, "Does the lock's holder still run?").when(sfn.Condition.string_equals("$.holder.Status", "RUNNING"), refused).otherwise(take_over)
    )
    return sfn.Chain.custom(take, [go_ahead], go_ahead)


def name_the_release(states: DeployerStates) -> sfn.Pass:
    """The model is named after the package version, so the same package reuses its model. Endpoint
    configs also carry an attempt id: approving a version again after a rollback creates new configs."""
    if len(states.endpoint) + CONFIG_SUFFIX > MAX_CONFIG_NAME:
        raise ValueError(
            f"endpoint name {states.endpoint!r} is too long: endpoint config names '<endpoint>-v<version>-<attempt>-canary' "
            f"must fit SageMaker's {MAX_CONFIG_NAME} characters, so the endpoint name may have {MAX_CONFIG_NAME - CONFIG_SUFFIX} at most"
        )
    version = string_at("$.package.Version")
    attempt = string_at("$.release.Attempt")
    pick_attempt = sfn.Pass(
        states.scope,
        "Pick an attempt id",
        parameters={"Attempt": sfn.JsonPath.array_get_item(sfn.JsonPath.string_split(sfn.JsonPath.uuid(), "-"), 0)},
        result_path="$.release",
    )
    name = sfn.Pass(
        states.scope,
        "Name the release",
        parameters={
            "Attempt": attempt,
            "ModelName": sfn.JsonPath.format(f"{states.model_prefix}-v{{}}", version),
            "Config": sfn.JsonPath.format(f"{states.endpoint}-v{{}}-{{}}", version, attempt),
            "CanaryConfig": sfn.JsonPath.format(f"{states.endpoint}-v{{}}-{{}}-canary", version, attempt),
            "RollbackConfig": sfn.JsonPath.format(f"{states.endpoint}-v{{}}-{{}}-rollback", version, attempt),
        },
        result_path="$.release",
    )
    pick_attempt.next(name)
    return sfn.Chain.custom(pick_attempt, [name], name)


def create_model(states: DeployerStates, model_role_arn: str, vpc_config: dict, failed: sfn.IChainable, *, label: str) -> sfn.Chain:
    """Create the release's model; if the package was deployed before, its model already exists."""
    create = states.sagemaker(
        f"Create the model ({label})",
        "createModel",
        {
            "ModelName": string_at("$.release.ModelName"),
            "ExecutionRoleArn": model_role_arn,
            "Containers": [{"ModelPackageName": string_at("$.ModelPackageArn")}],
            **vpc_config,
        },
        states.model_arns,
        result_path=DISCARD,
    )
    exists = states.sagemaker(
        f"Use the existing model ({label})",
        "describeModel",
        {"ModelName": string_at("$.release.ModelName")},
        states.model_arns,
        result_path=DISCARD,
    )
    create.add_catch(exists, errors=["States.TaskFailed"], result_path="$.error")
    states.on_failure(exists, failed, label=f"creating the model ({label})")
    ready = sfn.Pass(states.scope, f"The model is ready ({label})")
    create.next(ready)
    exists.next(ready)
    return sfn.Chain.custom(create, [ready], ready)


def find_endpoint(states: DeployerStates, first_release: sfn.IChainable, later_release: sfn.IChainable, failed: sfn.IChainable) -> sfn.IChainable:
    """List endpoints by name, so that only the endpoint's absence means a first release: a throttle or
    a refused call is a failure, not a reason to create the endpoint. An endpoint that Failed (a first
    release whose endpoint never served) is deleted, and the release starts afresh as a first release."""
    scope = states.scope
    start_polls, count_poll = states.counter("Start counting deletion polls", "Count a deletion poll", "$.deletion")
    listed = states.sagemaker(
        "Find the endpoint",
        "listEndpoints",
        {"NameContains": states.endpoint, "MaxResults": 100},
        ["*"],
        # The list itself, always present: a wildcard over an empty list may match nothing, a States.Runtime error.
        result_selector={"Endpoints": list_at("$.Endpoints")},
        result_path="$.endpoints",
        retries_within="$.deletion",
    )
    states.on_failure(listed, failed, label="finding the endpoint")
    exists = sfn.Pass(
        scope,
        "Is the endpoint among them",
        parameters={"Exists": sfn.JsonPath.array_contains(list_at("$.endpoints.Endpoints[*].EndpointName"), states.endpoint)},
        result_path="$.endpoints",
    )
    # The whole description: a Failed or Creating endpoint has no ProductionVariants, and selecting a field
    # that is absent is a States.Runtime error, which no Catch can handle. The variants are read after a Choice.
    describe = states.describe_endpoint("Describe the endpoint", "$.live", retries_within="$.deletion", Endpoint=sfn.JsonPath.entire_payload)
    # A serverless variant has no instances, so no CurrentInstanceCount to read.
    count = {} if states.serverless else {"Count": sfn.JsonPath.array_get_item(list_at("$.live.Endpoint.ProductionVariants[*].CurrentInstanceCount"), 0)}
    variants = sfn.Pass(
        scope,
        "Read the live variants",
        parameters={
            "Status": string_at("$.live.Status"),
            "ConfigName": string_at("$.live.ConfigName"),
            "Variant": sfn.JsonPath.array_get_item(list_at("$.live.Endpoint.ProductionVariants[*].VariantName"), 0),
            **count,
            "Variants": sfn.JsonPath.array_length(list_at("$.live.Endpoint.ProductionVariants")),
        },
        result_path="$.live",
    )
    no_variants = sfn.Pass(
        scope,
        "Note the endpoint serves no variant",
        parameters={"Status": string_at("$.live.Status"), "ConfigName": string_at("$.live.ConfigName"), "Variants": 0},
        result_path="$.live",
    )
    variants.next(later_release)
    no_variants.next(later_release)
    delete = states.sagemaker(
        "Delete the failed endpoint",
        "deleteEndpoint",
        {"EndpointName": states.endpoint},
        states.endpoint_arns,
        result_path=DISCARD,
    )
    states.on_failure(delete, failed, label="deleting the failed endpoint")
    wait = sfn.Wait(scope, "Wait for the endpoint's deletion", time=sfn.WaitTime.duration(cdk.Duration.seconds(states.timings.poll_seconds)))
    not_deleted = sfn.Pass(
        scope,
        "Record the endpoint not deleted in time",
        parameters={"reason": sfn.JsonPath.format(f"endpoint {states.endpoint} was still {{}} after {states.timings.max_update_polls} polls", string_at("$.live.Status"))},
        result_path="$.failure",
    )
    not_deleted.next(failed)
    deleting = (
        sfn.Choice(scope, "Has the deletion taken too long?")
        .when(sfn.Condition.number_greater_than_equals("$.deletion.count", states.timings.max_update_polls), not_deleted)
        .otherwise(count_poll)
    )
    delete.next(deleting)
    # Listed while Deleting and gone by the time it is described: SageMaker's ValidationException, which its API
    # model does not declare, so only the cause tells it from other failures.
    describe_failed = sfn.Pass(
        scope,
        "Record the failure (describing the endpoint, not deleted meanwhile)",
        parameters={"reason": sfn.JsonPath.format("describing the endpoint failed: {}: {}", string_at("$.error.Error"), string_at("$.error.Cause"))},
        result_path="$.failure",
    )
    describe_failed.next(failed)
    describe.add_catch(
        sfn.Choice(scope, "Was the endpoint deleted meanwhile?")
        .when(sfn.Condition.string_matches("$.error.Cause", "*Could not find endpoint*"), deleting)
        .otherwise(describe_failed),
        errors=["SageMaker.SageMakerException"],
        result_path="$.error",
    )
    states.on_failure(describe, failed, label="describing the endpoint")
    count_poll.next(wait).next(listed)
    describe.next(
        sfn.Choice(scope, "Does the endpoint serve?")
        .when(sfn.Condition.string_equals("$.live.Status", "Failed"), delete)
        .when(sfn.Condition.string_equals("$.live.Status", "Deleting"), deleting)
        .when(sfn.Condition.is_present("$.live.Endpoint.ProductionVariants[0]"), variants)
        .otherwise(no_variants)
    )
    exists.next(sfn.Choice(scope, "Does the endpoint exist?").when(sfn.Condition.boolean_equals("$.endpoints.Exists", True), describe).otherwise(first_release))
    return start_polls.next(listed).next(
        sfn.Choice(scope, "Are any endpoints listed?").when(sfn.Condition.is_present("$.endpoints.Endpoints[0]"), exists).otherwise(first_release)
    )
