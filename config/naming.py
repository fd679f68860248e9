"""The physical names other systems find things by, derived from ``<project>-<env>`` in one place.

The stacks name their resources with these functions and the ``mlops`` command finds them with the same
ones, so no name is typed twice. Plain Python: importing this loads no aws-cdk-lib.
"""

from __future__ import annotations

import re

from pipeline_code import render
from pipeline_code.settings import ARTIFACTS_PREFIX

# The endpoint's two production variants: a release goes to the colour not in use, so the alarms on
# (endpoint, blue) and (endpoint, green) never go stale.
COLOURS = ("blue", "green")
# Where the deployer writes its release records in the artifacts bucket (see `release_record_key`).
RELEASE_RECORDS_PREFIX = "releases/"
# The alarms each colour has, by the suffix of their names.
VARIANT_ALARM_SUFFIXES = ("5xx", "4xx", "latency")

# SageMaker's limits, as botocore's service model states them (a unit test compares): PipelineName, and
# ExperimentEntityName, which binds too because every execution is tracked in an experiment named after
# its pipeline.
PIPELINE_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}"
PIPELINE_NAME_MAX_LENGTH = 256
EXPERIMENT_NAME_MAX_LENGTH = 120


# Draft pipelines are named <prefix>-draft-<user>-<folder>: no deployed pipeline may share that namespace.
DRAFT_FOLDER = "draft"
# Promoted versions' artifacts sit beside the pipelines' outputs, as if from a pipeline of this name.
PROMOTED_FOLDER = "promoted"
# The environments where Studio users may run the working tree as their own draft pipelines
# (`mlops pipeline run --draft`): dev only, where a draft costs nothing but its runs.
DRAFT_ENVIRONMENTS = ("dev",)


class PipelineFolderError(ValueError):
    """A pipeline_code/ folder cannot become a SageMaker pipeline; the message names the folder and the rule."""


# The endpoint's configs are named <endpoint>-v<version>-<attempt>-canary (a version of up to six digits
# and an eight-character attempt id), and SageMaker allows 63 characters.
ENDPOINT_CONFIG_SUFFIX = "-v999999-12345678-canary"
SAGEMAKER_NAME_MAX_LENGTH = 63
STATE_MACHINE_NAME_MAX_LENGTH = 80
ALARM_NAME_MAX_LENGTH = 255
EVENT_RULE_NAME_MAX_LENGTH = 64


def model_stem(prefix: str, model: str, environment_names: bool) -> str:
    """What every physical name of a model starts with: the environment's prefix for the one model that
    keeps the environment's names, ``<prefix>-<model>`` for every other."""
    return prefix if environment_names else f"{prefix}-{model}"


def model_name_lengths(prefix: str, model: str) -> list[tuple[str, int, int]]:
    """(what, its length, AWS's limit) of every physical name derived from model `model`'s stem."""
    stem = model_stem(prefix, model, environment_names=False)
    longest_alarm = max((variant_alarm_name(stem, colour, suffix) for colour in COLOURS for suffix in VARIANT_ALARM_SUFFIXES), key=len)
    return [
        (f"its endpoint configs ('{endpoint_name(stem)}{ENDPOINT_CONFIG_SUFFIX}')", len(endpoint_name(stem) + ENDPOINT_CONFIG_SUFFIX), SAGEMAKER_NAME_MAX_LENGTH),
        (f"its model package group ('{model_package_group_name(stem)}')", len(model_package_group_name(stem)), SAGEMAKER_NAME_MAX_LENGTH),
        (f"its SageMaker models ('{model_name_prefix(stem)}-v999999')", len(f"{model_name_prefix(stem)}-v999999"), SAGEMAKER_NAME_MAX_LENGTH),
        (
            f"its serverless SageMaker models ('{serving_model_name_prefix(stem, 'serverless')}-v999999')",
            len(f"{serving_model_name_prefix(stem, 'serverless')}-v999999"),
            SAGEMAKER_NAME_MAX_LENGTH,
        ),
        (f"its data-quality schedule ('{stem}-data-quality')", len(f"{stem}-data-quality"), SAGEMAKER_NAME_MAX_LENGTH),
        (f"its data-quality violations rule ('{stem}-data-quality-violations')", len(f"{stem}-data-quality-violations"), EVENT_RULE_NAME_MAX_LENGTH),
        (f"its deployer ('{deployer_name(stem)}')", len(deployer_name(stem)), STATE_MACHINE_NAME_MAX_LENGTH),
        (f"its alarms ('{longest_alarm}')", len(longest_alarm), ALARM_NAME_MAX_LENGTH),
    ]


def camel_case(name: str) -> str:
    """``churn-model`` -> ``ChurnModel``: a folder's or a model's name as part of a stack output's name."""
    return "".join(part.capitalize() for part in name.split("-"))


def endpoint_name(prefix: str) -> str:
    return f"{prefix}-endpoint"


def serverless_endpoint_name(prefix: str) -> str:
    """SageMaker cannot convert an endpoint between instances and serverless, so each mode has its own."""
    return f"{prefix}-serverless"


def serving_endpoint_name(prefix: str, serving_mode: str) -> str:
    """The endpoint that serves in `serving_mode` ('instances' or 'serverless')."""
    return serverless_endpoint_name(prefix) if serving_mode == "serverless" else endpoint_name(prefix)


def serving_model_name_prefix(prefix: str, serving_mode: str) -> str:
    """Serverless models are created without the VPC configuration that instance-served ones carry, which
    serverless endpoints refuse: the same package version is a different SageMaker model in each mode."""
    return f"{prefix}-serverless-model" if serving_mode == "serverless" else model_name_prefix(prefix)


def variant_alarm_name(prefix: str, colour: str, suffix: str, serving_mode: str = "instances") -> str:
    """The alarm `suffix` (one of VARIANT_ALARM_SUFFIXES) on the endpoint's variant `colour`."""
    return f"{serving_endpoint_name(prefix, serving_mode)}-{colour}-{suffix}"


def variant_alarm_names(prefix: str, colour: str, serving_mode: str = "instances") -> list[str]:
    return [variant_alarm_name(prefix, colour, suffix, serving_mode) for suffix in VARIANT_ALARM_SUFFIXES]


def data_quality_alarm_name(prefix: str) -> str:
    return f"{endpoint_name(prefix)}-data-quality"


def model_name_prefix(prefix: str) -> str:
    """The stem of the SageMaker Models the deployer creates: ``<stem>-v<package version>``."""
    return f"{prefix}-model"


def deployer_model_names(prefix: str) -> str:
    """An IAM name pattern matching every SageMaker Model the deployers of the environment `prefix` create
    (``<stem>-model-v<N>``, ``<stem>-serverless-model-v<N>``, for every model's stem)."""
    return f"{prefix}-*model-v*"


def model_package_group_name(prefix: str) -> str:
    return f"{prefix}-models"


def promotion_role_name(prefix: str) -> str:
    """The role that promotes model versions into the environment `prefix`. Deterministic, because the source
    environment's bucket, key and group policies name it before the target environment is deployed."""
    return f"{prefix}-model-promotion"


def promotion_function_name(prefix: str) -> str:
    """The function that promotes a model version into the environment `prefix` (`mlops model promote` calls it)."""
    return f"{prefix}-model-promotion"


def promoter_policy_name(prefix: str) -> str:
    """The managed policy that lets the roles named in config start a promotion into the environment `prefix`."""
    return f"{prefix}-model-promoter"


def promotion_bus_name(prefix: str) -> str:
    """The event bus of the environment `prefix` that a source environment's deployer forwards its releases to,
    where they start a promotion (automatic promotion). Deterministic: the source names it before it exists."""
    return f"{prefix}-promotions"


def promotion_dead_letter_alarm_name(prefix: str) -> str:
    """The alarm on the dead letters of automatic promotions into the environment `prefix`."""
    return f"{prefix}-promotion-dead-letters"


def promoted_artifacts_prefix(prefix: str) -> str:
    """Where the environment `prefix` keeps the artifacts it promoted from elsewhere, in its artifacts bucket:
    under its own pipelines' prefix (``pipelines/<prefix>-``), which its served models already read."""
    return f"{ARTIFACTS_PREFIX}{prefix}-{PROMOTED_FOLDER}/"


def pipeline_output_prefixes(prefix: str, folders: tuple[str, ...] | list[str]) -> list[str]:
    """The key prefixes of the artifacts bucket of environment `prefix` under which the pipelines of `folders`
    write their outputs (``pipelines/<prefix>-<folder>/``), and their drafts theirs
    (``pipelines/<prefix>-draft-<user>-<folder>/``)."""
    return [
        *(f"{ARTIFACTS_PREFIX}{prefix}-{folder}/" for folder in folders),
        *(f"{ARTIFACTS_PREFIX}{draft_pipeline_prefix(prefix)}*-{folder}/" for folder in folders),
    ]


def model_artifact_prefixes(prefix: str, model: str, folders: tuple[str, ...] | list[str]) -> list[str]:
    """The key prefixes of the artifacts bucket of environment `prefix` holding model `model`'s artifacts: the
    outputs of its pipelines (`folders`) and its versions promoted from elsewhere."""
    return [*pipeline_output_prefixes(prefix, folders), f"{promoted_artifacts_prefix(prefix)}{model}/"]


def release_record_key(group: str, version: int | str) -> str:
    """Where the deployer writes down, in the artifacts bucket, that version `version` of `group` went live
    (a first release, or a canary that passed): the record a promotion from this environment requires."""
    return f"{RELEASE_RECORDS_PREFIX}{group}/v{version}.json"


def promotable_object_patterns(prefix: str) -> list[str]:
    """The object keys of the environment `prefix`'s artifacts bucket another environment may read when it
    promotes a version: the training pipelines' model artifacts (``<pipeline>/<execution>/Train/...``) and
    evaluation reports (``<pipeline>/<execution>/Evaluate/...``), versions it promoted itself, and the
    deployer's release records. Not the pipelines' data splits, and nothing else in the bucket."""
    pipelines = f"{ARTIFACTS_PREFIX}{prefix}-*/*"
    return [f"{pipelines}/Train/*", f"{pipelines}/Evaluate/*", f"{promoted_artifacts_prefix(prefix)}*", f"{RELEASE_RECORDS_PREFIX}*"]


def deployer_name(prefix: str) -> str:
    """The canary deployer's state machine."""
    return f"{prefix}-canary-deployer"


def batch_inference_name(prefix: str) -> str:
    """The batch inference workflow's state machine (and its schedule)."""
    return f"{prefix}-batch-inference"


def batch_image_build_name(prefix: str) -> str:
    """The CodeBuild project that builds the batch inference image, when config has batch_inference.image_build."""
    return f"{prefix}-batch-image-build"


def mlflow_name(prefix: str) -> str:
    """The environment's MLflow App or tracking server."""
    return f"{prefix}-mlflow"


def pipeline_name(prefix: str, folder: str) -> str:
    """``<prefix>-<folder>``, the SageMaker pipeline that pipeline_code/<folder>/ deploys as, or PipelineFolderError."""
    name = f"{prefix}-{folder}"
    where = f"pipeline_code/{folder}/ cannot be deployed as SageMaker pipeline '{name}'"
    if (render.PACKAGE_DIR / f"{folder}.py").exists():
        raise PipelineFolderError(f"{where}: '{folder}' is reserved, pipeline_code/{folder}.py would shadow the folder; rename the folder")
    if folder == DRAFT_FOLDER or folder.startswith(f"{DRAFT_FOLDER}-"):
        raise PipelineFolderError(f"{where}: names starting with '{DRAFT_FOLDER}' are reserved for draft pipelines (mlops pipeline run --draft); rename the folder")
    if folder == PROMOTED_FOLDER:
        raise PipelineFolderError(
            f"{where}: '{PROMOTED_FOLDER}' is reserved: its outputs would mix with the versions promoted from other "
            f"environments, under {promoted_artifacts_prefix(prefix)}; rename the folder"
        )
    if "_" in folder:
        raise PipelineFolderError(f"{where}: underscores are not allowed in SageMaker pipeline names; use hyphens ('{folder.replace('_', '-')}')")
    if not re.fullmatch(r"[a-z0-9](-*[a-z0-9])*", folder):
        raise PipelineFolderError(
            f"{where}: use lower-case letters, digits and hyphens, starting and ending with a letter or digit "
            f"(SageMaker's pattern is {PIPELINE_NAME_PATTERN}; it writes pipeline ARNs in lower case, and IAM "
            "matches the stack's pipeline ARNs case-sensitively)"
        )
    limit = min(PIPELINE_NAME_MAX_LENGTH, EXPERIMENT_NAME_MAX_LENGTH)
    if len(name) > limit:
        raise PipelineFolderError(
            f"{where}: the name has {len(name)} characters, at most {limit} are allowed (each execution is tracked in "
            f"an experiment named after the pipeline, and experiment names are at most {EXPERIMENT_NAME_MAX_LENGTH}); "
            f"shorten the folder name to at most {limit - len(prefix) - 1} characters"
        )
    return name


# How much of a user's name a draft pipeline's name keeps.
DRAFT_USER_LENGTH = 24


def draft_user(caller_arn: str) -> str:
    """A person's name for draft pipelines, from their STS caller ARN: the session name of an assumed role
    (SSO and Studio put the person there), else the IAM user's name; lower case, letters, digits, hyphens."""
    resource = caller_arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    name = rest.rsplit("/", 1)[-1] if kind == "assumed-role" else rest.rsplit("/", 1)[-1] or kind
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:DRAFT_USER_LENGTH].strip("-")
    return cleaned or "someone"


def draft_pipeline_name(prefix: str, user: str, folder: str) -> str:
    """``<prefix>-draft-<user>-<folder>``: one draft of each pipeline per person."""
    return f"{draft_pipeline_prefix(prefix)}{user}-{folder}"


def draft_pipeline_prefix(prefix: str) -> str:
    """What every draft pipeline's name starts with, in IAM resource patterns too."""
    return f"{prefix}-{DRAFT_FOLDER}-"
