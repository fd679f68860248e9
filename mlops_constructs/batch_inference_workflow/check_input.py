"""The execution's input: omitted keys filled from the defaults, then checked before anything runs, and the
run's job names and intermediate prefixes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops_constructs.batch_inference_workflow.jobs import STEPS
from mlops_constructs.json_paths import string_at

if TYPE_CHECKING:
    from mlops_constructs.batch_inference_workflow import JobDefaults

INVALID_INPUT = "InvalidInput"
Condition = sfn.Condition


def _s3_uri(path: str) -> sfn.Condition:
    return Condition.and_(Condition.is_string(path), Condition.string_matches(path, "s3://*"))


def _whole_number_within(path: str, low: int, high: int) -> sfn.Condition:
    return Condition.and_(
        Condition.is_numeric(path),
        Condition.number_greater_than_equals(path, low),
        Condition.number_less_than_equals(path, high),
    )


def check_input(
    scope: Construct,
    *,
    defaults: JobDefaults,
    role_arn: str,
    output_bucket_name: str,
    model_package_group_name: str,
    then: sfn.IChainable,
) -> sfn.IChainable:
    """Fill in the defaults, then fail with InvalidInput and a message saying what to fix, or go on to `then`."""
    default_values: dict = {
        "code_uri": defaults.code_uri,
        "scikit_image_uri": defaults.scikit_image_uri,
        "role": role_arn,
        "instance_type": defaults.instance_type,
        "instance_count": defaults.instance_count,
        "volume_size": defaults.volume_size_gb,
        "max_runtime": defaults.max_runtime_seconds,
    }
    if defaults.custom_image_uri:
        default_values["custom_image_uri"] = defaults.custom_image_uri
    gather = sfn.Pass(
        scope,
        "Gather the input and the defaults",
        parameters={"defaults": default_values, "given": sfn.JsonPath.object_at("$")},
    )
    merge = sfn.Pass(
        scope,
        "Fill in the omitted keys",
        parameters={"config": sfn.JsonPath.json_merge(sfn.JsonPath.object_at("$.defaults"), sfn.JsonPath.object_at("$.given"))},
    )
    package_pattern = f"arn:aws*:sagemaker:*:*:model-package/{model_package_group_name.lower()}/*"
    rules: list[tuple[str, sfn.Condition]] = [
        ("input_uri is missing: give the S3 prefix of the files to score", Condition.is_not_present("$.config.input_uri")),
        ("output_uri is missing: give the S3 prefix to write the results to", Condition.is_not_present("$.config.output_uri")),
        ("input_uri must be an s3:// URI", Condition.not_(_s3_uri("$.config.input_uri"))),
        ("output_uri must be an s3:// URI", Condition.not_(_s3_uri("$.config.output_uri"))),
        (
            f"output_uri must be under s3://{output_bucket_name}/, the only bucket the jobs may write to",
            Condition.not_(Condition.string_matches("$.config.output_uri", f"s3://{output_bucket_name}/*")),
        ),
        ("code_uri must be an s3:// URI", Condition.not_(_s3_uri("$.config.code_uri"))),
        (
            "custom_image_uri is missing and batch_inference.image_tag is not set in this environment's config: "
            "give the inference image's URI",
            Condition.is_not_present("$.config.custom_image_uri"),
        ),
        ("custom_image_uri must be an image URI (a string)", Condition.not_(Condition.is_string("$.config.custom_image_uri"))),
        ("scikit_image_uri must be an image URI (a string)", Condition.not_(Condition.is_string("$.config.scikit_image_uri"))),
        (
            "role must be this environment's batch processing role (leave it out to use it)",
            Condition.not_(Condition.and_(Condition.is_string("$.config.role"), Condition.string_equals("$.config.role", role_arn))),
        ),
        ("instance_type must be a SageMaker instance type such as ml.m5.large", Condition.not_(_instance_type("$.config.instance_type"))),
        ("instance_count must be a number from 1 to 100", Condition.not_(_whole_number_within("$.config.instance_count", 1, 100))),
        ("volume_size must be a number of GB from 1 to 16384", Condition.not_(_whole_number_within("$.config.volume_size", 1, 16384))),
        (
            f"max_runtime must be a number of seconds from 1 to {defaults.max_runtime_seconds} "
            "(batch_inference.max_runtime_seconds: the workflow's timeout is sized on it)",
            Condition.not_(_whole_number_within("$.config.max_runtime", 1, defaults.max_runtime_seconds)),
        ),
        (
            "give model_package_arn or model_uri, not both",
            Condition.and_(Condition.is_present("$.config.model_package_arn"), Condition.is_present("$.config.model_uri")),
        ),
        ("model_uri must be an s3:// URI of a model.tar.gz", Condition.and_(Condition.is_present("$.config.model_uri"), Condition.not_(_s3_uri("$.config.model_uri")))),
        (
            f"model_package_arn must be a version of this environment's model package group {model_package_group_name}",
            Condition.and_(
                Condition.is_present("$.config.model_package_arn"),
                Condition.not_(Condition.and_(Condition.is_string("$.config.model_package_arn"), Condition.string_matches("$.config.model_package_arn", package_pattern))),
            ),
        ),
    ]
    check = sfn.Choice(scope, "Check the input")
    for number, (message, condition) in enumerate(rules, 1):
        check.when(condition, sfn.Fail(scope, f"Refuse the input ({number})", error=INVALID_INPUT, cause=message))
    check.otherwise(then)
    gather.next(merge).next(check)
    return gather


def _instance_type(path: str) -> sfn.Condition:
    return Condition.and_(Condition.is_string(path), Condition.string_matches(path, "ml.*.*"))


def name_the_run(scope: Construct, job_name_prefix: str, *, then: sfn.IChainable) -> sfn.IChainable:
    """$.run: the jobs' names (the prefix, the MD5 of the execution ARN, the step) and the intermediate prefixes
    ``<output_uri>/<execution name>/preprocessed/`` and ``<output_uri>/<execution name>/predictions/``."""
    identify = sfn.Pass(
        scope,
        "Identify the run",
        parameters={"id": sfn.JsonPath.hash(sfn.JsonPath.execution_id, "MD5")},
        result_path="$.run",
    )

    def lay_out(label: str, separator: str) -> sfn.Pass:
        def under_output(folder: str) -> str:
            return sfn.JsonPath.format(
                f"{{}}{separator}{{}}/{folder}/", string_at("$.config.output_uri"), sfn.JsonPath.execution_name
            )

        return sfn.Pass(
            scope,
            f"Lay out the run ({label})",
            parameters={
                "id": string_at("$.run.id"),
                "jobs": {
                    step.suffix: sfn.JsonPath.format(f"{job_name_prefix}-{{}}-{step.suffix}", string_at("$.run.id"))
                    for step in STEPS
                },
                "preprocessed": under_output("preprocessed"),
                "predictions": under_output("predictions"),
            },
            result_path="$.run",
        )

    identify.next(
        sfn.Choice(scope, "Does output_uri end with a slash?")
        .when(Condition.string_matches("$.config.output_uri", "*/"), lay_out("output_uri ends with a slash", "").next(then))
        .otherwise(lay_out("output_uri without a slash", "/").next(then))
    )
    return identify


__all__ = ["INVALID_INPUT", "check_input", "name_the_run"]
