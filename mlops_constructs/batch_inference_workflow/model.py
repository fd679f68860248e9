"""Which model the inference job loads: a model artifact named in the input, a model package named in the
input, or the newest Approved package of the chosen model's group (`$.group`, which `check_input` records).
Recorded in `$.model` and the output."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops_constructs.canary_deployer.states import aws_call
from mlops_constructs.json_paths import list_at, string_at

NO_APPROVED_MODEL = "NoApprovedModel"
MODEL_NOT_APPROVED = "ModelNotApproved"
MODEL_LOOKUP_FAILED = "ModelLookupFailed"


def resolve_model(scope: Construct, package_arns: list[str], *, allow_unapproved: bool, then: sfn.IChainable) -> sfn.IChainable:
    """The states that record the model in `$.model`, then go on to `then`. Unless `allow_unapproved`, a
    named package that is not Approved fails the execution with ModelNotApproved before any job starts."""
    lookup_failed = sfn.Fail(scope, "Model lookup failed", error=MODEL_LOOKUP_FAILED, cause_path="$.failure.reason")
    record = sfn.Pass(
        scope,
        "Record why the model lookup failed",
        parameters={
            "reason": sfn.JsonPath.format(
                "finding the model failed: {}: {}", string_at("$.error.Error"), string_at("$.error.Cause")
            )
        },
        result_path="$.failure",
    )
    record.next(lookup_failed)

    given_artifact = sfn.Pass(
        scope,
        "Use the given model artifact",
        parameters={"model_data_url": string_at("$.config.model_uri"), "source": "model_uri"},
        result_path="$.model",
    )
    describe = aws_call(
        scope,
        "Describe the model package",
        "sagemaker",
        "describeModelPackage",
        {"ModelPackageName": string_at("$.package.arn")},
        package_arns,
        result_selector={
            "package_arn": string_at("$.ModelPackageArn"),
            "approval_status": string_at("$.ModelApprovalStatus"),
            "model_data_url": sfn.JsonPath.array_get_item(list_at("$.InferenceSpecification.Containers[*].ModelDataUrl"), 0),
        },
        result_path="$.model",
    )
    describe.add_catch(record, errors=["States.ALL"], result_path="$.error")
    if allow_unapproved:
        describe.next(then)
    else:
        not_approved = sfn.Pass(
            scope,
            "Say the model package is not approved",
            parameters={
                "reason": sfn.JsonPath.format(
                    "model package {} is {}, not Approved: approve it, or name an Approved version of {} "
                    "(batch_inference.allow_unapproved_models is off in this environment)",
                    string_at("$.model.package_arn"),
                    string_at("$.model.approval_status"),
                    string_at("$.group.name"),
                )
            },
            result_path="$.failure",
        ).next(sfn.Fail(scope, "Model not approved", error=MODEL_NOT_APPROVED, cause_path="$.failure.reason"))
        describe.next(
            sfn.Choice(scope, "Is the model package approved?")
            .when(sfn.Condition.string_equals("$.model.approval_status", "Approved"), then)
            .otherwise(not_approved)
        )
    given_package = sfn.Pass(
        scope, "Use the given model package", parameters={"arn": string_at("$.config.model_package_arn")}, result_path="$.package"
    )
    given_package.next(describe)

    find_latest = aws_call(
        scope,
        "Find the latest approved model package",
        "sagemaker",
        "listModelPackages",
        {
            "ModelPackageGroupName": string_at("$.group.name"),
            "ModelApprovalStatus": "Approved",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 1,
        },
        ["*"],
        iam_action="sagemaker:ListModelPackages",
        result_selector={
            "count": sfn.JsonPath.array_length(list_at("$.ModelPackageSummaryList")),
            "arns": list_at("$.ModelPackageSummaryList[*].ModelPackageArn"),
        },
        result_path="$.latest",
    )
    find_latest.add_catch(record, errors=["States.ALL"], result_path="$.error")
    no_model = sfn.Pass(
        scope,
        "Say no model package is approved",
        parameters={
            "reason": sfn.JsonPath.format(
                "no model package of {} (model {}) is Approved: approve one, or give model_package_arn or model_uri",
                string_at("$.group.name"),
                string_at("$.group.model"),
            )
        },
        result_path="$.failure",
    ).next(sfn.Fail(scope, "No approved model", error=NO_APPROVED_MODEL, cause_path="$.failure.reason"))
    take_latest = sfn.Pass(
        scope,
        "Use the latest approved model package",
        parameters={"arn": sfn.JsonPath.array_get_item(list_at("$.latest.arns"), 0)},
        result_path="$.package",
    )
    take_latest.next(describe)
    find_latest.next(
        sfn.Choice(scope, "Is any model package approved?")
        .when(sfn.Condition.number_equals("$.latest.count", 0), no_model)
        .otherwise(take_latest)
    )
    return (
        sfn.Choice(scope, "Which model?")
        .when(sfn.Condition.is_present("$.config.model_uri"), given_artifact.next(then))
        .when(sfn.Condition.is_present("$.config.model_package_arn"), given_package)
        .otherwise(find_latest)
    )
