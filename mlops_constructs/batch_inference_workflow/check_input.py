"""The execution's input: unknown keys refused by name, omitted keys filled from the defaults, the rest
checked before anything runs; then the run's job names and its work prefix.

What a caller chooses: the data (`input_uri`), where the result goes (`output_uri`, under the output prefix),
the model (one of the environment's models, by name, and a version of its model package group, or, where
config allows, a model artifact),
the inference image's tag in this environment's repository, and the jobs' instances and runtime. The code,
the pre/postprocessing image and the role are the environment's own and not part of the input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops_constructs.batch_inference_workflow.jobs import STEPS
from mlops_constructs.json_paths import string_at

if TYPE_CHECKING:
    from mlops_constructs.batch_inference_workflow import JobDefaults

INVALID_INPUT = "InvalidInput"
# Every key an execution's input may hold.
INPUT_KEYS = (
    "input_uri",
    "output_uri",
    "model",
    "model_package_arn",
    "model_uri",
    "custom_image_uri",
    "instance_type",
    "instance_count",
    "volume_size",
    "max_runtime",
)
Condition = sfn.Condition


def _s3_uri(path: str) -> sfn.Condition:
    return Condition.and_(Condition.is_string(path), Condition.string_matches(path, "s3://*"))


def _whole_number_within(path: str, low: int, high: int) -> sfn.Condition:
    return Condition.and_(
        Condition.is_numeric(path),
        Condition.number_greater_than_equals(path, low),
        Condition.number_less_than_equals(path, high),
    )


def refuse_unknown_keys(scope: Construct, *, then: sfn.IChainable) -> sfn.IChainable:
    """Fail with InvalidInput naming the first key of the input that is not in INPUT_KEYS, or go on to `then`.

    ASL has no function that lists an object's keys, so the check works on text. Merging the input into an
    object of every known key set to 0, and the known keys back over the result, leaves the known keys at 0,
    first and in INPUT_KEYS' order (States.JsonMerge keeps the first object's keys in place and appends the
    second's new ones, as its documentation's example shows), with any unknown key after them. Its JSON
    splits at commas into exactly len(INPUT_KEYS) pieces unless an unknown key adds at least one more; the
    first piece after the known ones starts with the first unknown key's quoted name.
    """
    known = len(INPUT_KEYS)
    placeholders = {key: 0 for key in INPUT_KEYS}
    gather = sfn.Pass(scope, "Gather the input and its known keys", parameters={"known": placeholders, "given": sfn.JsonPath.object_at("$")})
    masked = "States.JsonToString(States.JsonMerge(States.JsonMerge($.known, $.given, false), $.known, false))"
    split = sfn.Pass(
        scope,
        "Split the input at its keys",
        parameters={"given": sfn.JsonPath.object_at("$.given"), "pieces.$": f"States.StringSplit({masked}, ',')"},
    )
    count = sfn.Pass(
        scope,
        "Count the input's pieces",
        parameters={"given": sfn.JsonPath.object_at("$.given"), "pieces": sfn.JsonPath.list_at("$.pieces"), "count": sfn.JsonPath.array_length(sfn.JsonPath.list_at("$.pieces"))},
    )
    name_it = sfn.Pass(
        scope,
        "Name the first unknown input key",
        parameters={
            "reason.$": (
                f"States.Format('input key {{}} is not one this workflow takes; it takes {', '.join(INPUT_KEYS)}', "
                f"States.ArrayGetItem(States.StringSplit(States.ArrayGetItem($.pieces, {known}), ':'), 0))"
            )
        },
    ).next(sfn.Fail(scope, "Refuse the unknown input key", error=INVALID_INPUT, cause_path="$.reason"))
    keep_input = sfn.Pass(scope, "Keep the input", input_path="$.given")
    keep_input.next(then)
    gather.next(split).next(count).next(
        sfn.Choice(scope, "Are all input keys known?").when(Condition.number_greater_than("$.count", known), name_it).otherwise(keep_input)
    )
    return gather


def check_input(
    scope: Construct,
    *,
    defaults: JobDefaults,
    role_arn: str,
    output_uri_prefix: str,
    image_repository_uri: str,
    model_package_group_names: dict[str, str],
    allow_unapproved_models: bool,
    then: sfn.IChainable,
) -> sfn.IChainable:
    """Fill in the defaults, then fail with InvalidInput and a message saying what to fix, or record the
    model's group in `$.group` and go on to `then`. `model_package_group_names`: each model's group by the
    model's name, the default model first."""
    # code_uri, scikit_image_uri and role are not input keys: the defaults are what every run uses.
    models = list(model_package_group_names)
    default_values: dict = {
        "model": models[0],
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
    package_arn = "$.config.model_package_arn"
    groups = list(model_package_group_names.values())
    image = "$.config.custom_image_uri"
    rules: list[tuple[str, sfn.Condition]] = [
        ("input_uri is missing: give the S3 prefix of the files to score", Condition.is_not_present("$.config.input_uri")),
        ("output_uri is missing: give the S3 prefix to write the results to", Condition.is_not_present("$.config.output_uri")),
        ("input_uri must be an s3:// URI", Condition.not_(_s3_uri("$.config.input_uri"))),
        ("output_uri must be an s3:// URI", Condition.not_(_s3_uri("$.config.output_uri"))),
        (
            f"output_uri must be under {output_uri_prefix}, the only place batch jobs may write their results",
            Condition.not_(Condition.string_matches("$.config.output_uri", f"{output_uri_prefix}*")),
        ),
        (
            "custom_image_uri is missing and batch_inference.image_tag is not set in this environment's config: "
            f"give the inference image's URI, {image_repository_uri}:<tag>",
            Condition.is_not_present(image),
        ),
        (
            f"custom_image_uri must be an image of this environment's batch inference repository, {image_repository_uri}:<tag> or @sha256:<digest>",
            Condition.not_(
                Condition.and_(
                    Condition.is_string(image),
                    Condition.or_(
                        Condition.string_matches(image, f"{image_repository_uri}:*"),
                        Condition.string_matches(image, f"{image_repository_uri}@sha256:*"),
                    ),
                )
            ),
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
        *(
            [("model_uri must be an s3:// URI of a model.tar.gz", Condition.and_(Condition.is_present("$.config.model_uri"), Condition.not_(_s3_uri("$.config.model_uri"))))]
            if allow_unapproved_models
            else [
                (
                    "model_uri is not accepted in this environment (batch_inference.allow_unapproved_models is off): "
                    "name an Approved version of the model package group as model_package_arn",
                    Condition.is_present("$.config.model_uri"),
                )
            ]
        ),
        (
            f"model must be the name of one of this environment's models: {', '.join(models)}",
            Condition.not_(Condition.and_(Condition.is_string("$.config.model"), _any(Condition.string_equals("$.config.model", name) for name in models))),
        ),
        (
            f"model_package_arn must be a version of a model package group of this environment: {', '.join(groups)}",
            Condition.and_(
                Condition.is_present(package_arn),
                Condition.not_(
                    Condition.and_(
                        Condition.is_string(package_arn),
                        _any(Condition.string_matches(package_arn, f"arn:aws*:sagemaker:*:*:model-package/{group.lower()}/*") for group in groups),
                    )
                ),
            ),
        ),
    ]
    check = sfn.Choice(scope, "Check the input")
    for number, (message, condition) in enumerate(rules, 1):
        check.when(condition, sfn.Fail(scope, f"Refuse the input ({number})", error=INVALID_INPUT, cause=message))
    check.otherwise(_pick_the_models_group(scope, model_package_group_names, then=then))
    gather.next(merge).next(check)
    return refuse_unknown_keys(scope, then=gather)


def _any(conditions) -> sfn.Condition:
    conditions = list(conditions)
    return conditions[0] if len(conditions) == 1 else Condition.or_(*conditions)


def _pick_the_models_group(scope: Construct, model_package_group_names: dict[str, str], *, then: sfn.IChainable) -> sfn.IChainable:
    """$.group: the model's name and its group's name; a named package of another of the environment's
    groups fails with InvalidInput naming both groups."""
    # The ARN holds the group's name lowercased: model-package/<group>/<version>.
    read_package_group = sfn.Pass(
        scope,
        "Read the named package's group",
        parameters={"name.$": "States.ArrayGetItem(States.StringSplit($.config.model_package_arn, '/'), 1)"},
        result_path="$.named_group",
    )
    refuse = sfn.Pass(
        scope,
        "Say the package belongs to another model",
        parameters={
            "reason": sfn.JsonPath.format(
                "model_package_arn {} is a version of {}, not of {}, the group of model {}: give the model that package belongs to as model, "
                "or give a version of {}",
                string_at("$.config.model_package_arn"),
                string_at("$.named_group.name"),
                string_at("$.group.name"),
                string_at("$.config.model"),
                string_at("$.group.name"),
            )
        },
        result_path="$.failure",
    ).next(sfn.Fail(scope, "Refuse the package of another model", error=INVALID_INPUT, cause_path="$.failure.reason"))
    read_package_group.next(
        sfn.Choice(scope, "Is the package of the model's group?")
        .when(Condition.string_equals_json_path("$.named_group.name", "$.group.arn_name"), then)
        .otherwise(refuse)
    )
    is_package_named = (
        sfn.Choice(scope, "Is a model package named?")
        .when(Condition.is_present("$.config.model_package_arn"), read_package_group)
        .otherwise(then)
    )
    which = sfn.Choice(scope, "Which model's group?")
    for model, group in model_package_group_names.items():
        which.when(
            Condition.string_equals("$.config.model", model),
            sfn.Pass(
                scope,
                f"Use the group of model {model}",
                parameters={"model": model, "name": group, "arn_name": group.lower()},
                result_path="$.group",
            ).next(is_package_named),
        )
    return which


def _instance_type(path: str) -> sfn.Condition:
    return Condition.and_(Condition.is_string(path), Condition.string_matches(path, "ml.*.*"))


def name_the_run(scope: Construct, job_name_prefix: str, work_uri_prefix: str, *, then: sfn.IChainable) -> sfn.IChainable:
    """$.run: the run's id (the MD5 of the execution ARN), the jobs' names (the prefix, the id, the step), the
    intermediate prefixes ``<work prefix><id>/preprocessed/`` and ``<work prefix><id>/predictions/``, and how often each
    job has been created."""
    identify = sfn.Pass(
        scope,
        "Identify the run",
        parameters={"id": sfn.JsonPath.hash(sfn.JsonPath.execution_id, "MD5")},
        result_path="$.run",
    )
    lay_out = sfn.Pass(
        scope,
        "Lay out the run",
        parameters={
            "id": string_at("$.run.id"),
            "jobs": {step.suffix: sfn.JsonPath.format(f"{job_name_prefix}-{{}}-{step.suffix}", string_at("$.run.id")) for step in STEPS},
            "preprocessed": sfn.JsonPath.format(f"{work_uri_prefix}{{}}/preprocessed/", string_at("$.run.id")),
            "predictions": sfn.JsonPath.format(f"{work_uri_prefix}{{}}/predictions/", string_at("$.run.id")),
            "attempts": {step.suffix: {"made": 1} for step in STEPS},
        },
        result_path="$.run",
    )
    identify.next(lay_out).next(then)
    return identify


__all__ = ["INPUT_KEYS", "INVALID_INPUT", "check_input", "name_the_run"]
