"""SageMaker pipeline behaviour that moto 5.2.5 gets wrong, patched in for the duration of a block.

`pipeline_shim()` patches moto's `SageMakerModelBackend`, so plain boto3 calls inside `mock_aws()`
take moto's normal request path and get real `ClientError`s; the patch is undone on exit. What it
changes, each checked against moto 5.2.5 without the shim:
- DescribePipeline, UpdatePipeline and DeletePipeline of a pipeline that does not exist answer
  `ResourceNotFound` (the error the SageMaker API model lists for them); moto answers
  `ValidationException` "Could not find pipeline with PipelineName ...".
- AddTags with a key the resource already has overwrites that tag's value, as AWS does; moto appends
  a second tag with the same key.
- CreatePipeline and UpdatePipeline validate the definition (given inline or by S3 location) and
  answer `ValidationException` when it is not usable, leaving any stored pipeline untouched; moto
  stores whatever it is given. Checked: the definition parses as a JSON object; `Version` is present
  and supported; `Steps` is a list; every step (including a Condition step's IfSteps/ElseSteps) has
  a `Name` and a known `Type`; step names are unique; every `{"Get": "Steps.<name>..."}` and every
  `DependsOn` entry names a step of the pipeline.
- UpdatePipeline moves LastModifiedTime.
Known simplifications: no per-step-type argument schema is checked (SageMaker validates the
arguments of each step type as well), nor are `Get` references to Parameters; the messages follow
SageMaker's style ("Unable to parse pipeline definition. ...") but are not copied from it.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, Iterator
from unittest import mock

from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.utils import arn_formatter, load_pipeline_definition_from_s3

SUPPORTED_VERSIONS = ("2020-12-01",)
# Step types of the SageMaker Python SDK's StepTypeEnum (sagemaker.mlops.workflow.steps).
STEP_TYPES = (
    "AutoML", "Callback", "ClarifyCheck", "Cleanup", "Condition", "EMR", "EMRServerless", "Endpoint",
    "EndpointConfig", "Fail", "ForEach", "InferenceComponent", "Job", "Lambda", "Lineage", "Model",
    "Processing", "QualityCheck", "RegisterModel", "Training", "Transform", "Tuning",
)
_STEP_REFERENCE = re.compile(r"^Steps\.([^.\[]+)")
_PARSE_ERROR = "Unable to parse pipeline definition."


def _invalid(detail: str) -> ValidationError:
    return ValidationError(f"{_PARSE_ERROR} {detail}")


def validate_definition(text: str) -> None:
    """Raise moto's ValidationError (boto3 sees ValidationException) if SageMaker would reject `text`."""
    try:
        definition = json.loads(text)
    except ValueError as err:
        raise _invalid(f"Malformed JSON: {err}.") from None
    if not isinstance(definition, dict):
        raise _invalid("Expecting start of Json Object.")

    if "Version" not in definition:
        raise _invalid("Model Validation failed: Missing required property 'Version'.")
    if definition["Version"] not in SUPPORTED_VERSIONS:
        raise _invalid(
            f"Model Validation failed: Value '{definition['Version']}' for 'Version' failed to satisfy "
            f"enum value set: [{', '.join(SUPPORTED_VERSIONS)}]."
        )
    if "Steps" not in definition:
        raise _invalid("Model Validation failed: Missing required property 'Steps'.")
    if not isinstance(definition["Steps"], list):
        raise _invalid("Model Validation failed: Property 'Steps' must be an array.")

    steps = list(_all_steps(definition["Steps"]))
    seen: set[str] = set()
    for step in steps:
        name = step.get("Name")
        if not isinstance(name, str) or not name:
            raise _invalid("Model Validation failed: Missing required property 'Name' in a step.")
        step_type = step.get("Type")
        if step_type not in STEP_TYPES:
            raise _invalid(
                f"Model Validation failed: Value '{step_type}' for 'Type' of step '{name}' failed to "
                f"satisfy enum value set: [{', '.join(STEP_TYPES)}]."
            )
        if name in seen:
            raise ValidationError(
                f"Pipeline definition has duplicate step name '{name}'. Step names must be unique."
            )
        seen.add(name)

    for step in steps:
        for reference in _step_references(step.get("Arguments")):
            target = _STEP_REFERENCE.match(reference)
            if target and target.group(1) not in seen:
                raise ValidationError(
                    f"Step '{step['Name']}' references '{reference}', but step '{target.group(1)}' "
                    "is not defined in the pipeline definition."
                )
        for dependency in step.get("DependsOn") or []:
            if dependency not in seen:
                raise ValidationError(
                    f"Step '{step['Name']}' depends on step '{dependency}', which is not defined in "
                    "the pipeline definition."
                )


def _all_steps(steps: list[Any]) -> Iterator[dict[str, Any]]:
    for step in steps:
        if not isinstance(step, dict):
            raise _invalid("Model Validation failed: Every element of 'Steps' must be an object.")
        yield step
        arguments = step.get("Arguments")
        if step.get("Type") == "Condition" and isinstance(arguments, dict):
            for branch in ("IfSteps", "ElseSteps"):
                yield from _all_steps(arguments.get(branch) or [])


def _step_references(value: Any) -> Iterator[str]:
    """Every `Get` expression string in `value`, except inside nested steps (checked on their own)."""
    if isinstance(value, dict):
        if isinstance(value.get("Get"), str):
            yield value["Get"]
        for key, item in value.items():
            if key not in ("IfSteps", "ElseSteps"):
                yield from _step_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _step_references(item)


# ---------------------------------------------------------------------------------------------
# Backend patches.
# ---------------------------------------------------------------------------------------------

_original_create_pipeline = SageMakerModelBackend.create_pipeline
_original_update_pipeline = SageMakerModelBackend.update_pipeline
_original_describe_pipeline = SageMakerModelBackend.describe_pipeline
_original_delete_pipeline = SageMakerModelBackend.delete_pipeline


def _require_pipeline(self: SageMakerModelBackend, pipeline_name: str) -> None:
    if pipeline_name not in self.pipelines:
        arn = arn_formatter("pipeline", pipeline_name, self.account_id, self.region_name)
        raise ResourceNotFound(f"Pipeline '{arn}' does not exist.")


def _new_definition(self: SageMakerModelBackend, kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("pipeline_definition"):
        return kwargs["pipeline_definition"]
    if kwargs.get("pipeline_definition_s3_location"):
        return load_pipeline_definition_from_s3(
            kwargs["pipeline_definition_s3_location"], self.account_id, partition=self.partition
        )
    return None


def create_pipeline(self: SageMakerModelBackend, **kwargs: Any) -> Any:
    # moto's own checks (exactly one of definition / S3 location, unique name) come first.
    given = [kwargs.get("pipeline_definition"), kwargs.get("pipeline_definition_s3_location")]
    if sum(map(bool, given)) == 1 and kwargs.get("pipeline_name") not in self.pipelines:
        validate_definition(self._pipeline_shim_new_definition(kwargs))
    return _original_create_pipeline(self, **kwargs)


def update_pipeline(self: SageMakerModelBackend, pipeline_name: str, **kwargs: Any) -> str:
    self._pipeline_shim_require(pipeline_name)
    if not (kwargs.get("pipeline_definition") and kwargs.get("pipeline_definition_s3_location")):
        definition = self._pipeline_shim_new_definition(kwargs)
        if definition is not None:
            validate_definition(definition)
    arn = _original_update_pipeline(self, pipeline_name, **kwargs)
    self.pipelines[pipeline_name].last_modified_time = utcnow()
    return arn


def describe_pipeline(self: SageMakerModelBackend, pipeline_name: str) -> dict[str, Any]:
    self._pipeline_shim_require(pipeline_name)
    return _original_describe_pipeline(self, pipeline_name)


def delete_pipeline(self: SageMakerModelBackend, pipeline_name: str) -> str:
    self._pipeline_shim_require(pipeline_name)
    return _original_delete_pipeline(self, pipeline_name)


def add_tags(self: SageMakerModelBackend, arn: str, tags: list[dict[str, str]]) -> list[dict[str, str]]:
    resource = self._get_resource_from_arn(arn)
    for tag in tags:
        existing = next((t for t in resource.tags if t["Key"] == tag["Key"]), None)
        if existing is None:
            resource.tags.append(dict(tag))
        else:
            existing["Value"] = tag["Value"]
    return resource.tags


_BACKEND_PATCHES = {
    "_pipeline_shim_require": _require_pipeline,
    "_pipeline_shim_new_definition": _new_definition,
    "create_pipeline": create_pipeline,
    "update_pipeline": update_pipeline,
    "describe_pipeline": describe_pipeline,
    "delete_pipeline": delete_pipeline,
    "add_tags": add_tags,
}


@contextlib.contextmanager
def pipeline_shim() -> Iterator[None]:
    """Patch moto for the duration of the block. Use inside (or around) `mock_aws()`."""
    with mock.patch.multiple(SageMakerModelBackend, create=True, **_BACKEND_PATCHES):
        yield
