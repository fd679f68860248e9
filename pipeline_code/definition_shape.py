"""Checking a pipeline definition's step arguments against SageMaker's API model, offline.

SageMaker passes a step's ``Arguments`` to the API its type calls (a Training step's to CreateTrainingJob),
so botocore's input shape of that API says which keys exist, which are required and what each holds. A
definition.json written by hand or brought home from Studio is checked here at synth, so a misspelt key
fails the synth with its path instead of the deploy with SageMaker's first complaint.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore
import botocore.session
from botocore.model import ServiceModel, Shape

# The API each step type calls with its Arguments. Types not listed (Condition's branches are walked; Fail,
# Lambda, Callback, EMR, checks...) take arguments of their own, which no API shape describes.
STEP_TYPE_OPERATIONS = {
    "Processing": "CreateProcessingJob",
    "Training": "CreateTrainingJob",
    "Transform": "CreateTransformJob",
    "Tuning": "CreateHyperParameterTuningJob",
    "AutoML": "CreateAutoMLJob",
    "Model": "CreateModel",
    "RegisterModel": "CreateModelPackage",
}
# Required by the API but named by SageMaker Pipelines for each run, so a step leaves them out.
NAMED_BY_PIPELINES = {
    "ProcessingJobName", "TrainingJobName", "TransformJobName", "HyperParameterTuningJobName", "AutoMLJobName", "ModelName",
}
# A step's own ModelName is generated, but a Transform step names the model it runs.
_REQUIRED_NAMES = {"Transform": {"ModelName"}}
# Pipeline expressions: evaluated when the step runs, so they stand for whatever scalar the key holds.
EXPRESSION_KEYS = frozenset({"Get", "Std:Join", "Std:JsonGet"})
# Instance type enumerations run to hundreds of values; a message shows the first few.
_ENUM_VALUES_SHOWN = 8
_SCALAR_TYPES = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "timestamp": (str, int, float),
}


@functools.cache
def _sagemaker_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker")


def problems(definition: Any) -> list[str]:
    """Each way `definition`'s steps do not fit SageMaker's API model, as ``<path>: <what is wrong>``."""
    if not isinstance(definition, dict) or not isinstance(definition.get("Steps"), list):
        return ["the definition must be a JSON object with a list of Steps"]
    found: list[str] = []
    _check_steps(definition["Steps"], "Steps", found)
    return found


def _check_steps(steps: list, where: str, found: list[str]) -> None:
    for index, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("Name"), str) or not isinstance(step.get("Type"), str):
            found.append(f"{where}[{index}]: a step must be an object with a Name and a Type")
            continue
        name, step_type, arguments = step["Name"], step["Type"], step.get("Arguments", {})
        if step_type == "Condition" and isinstance(arguments, dict):
            for branch in ("IfSteps", "ElseSteps"):
                if isinstance(arguments.get(branch), list):
                    _check_steps(arguments[branch], f"{name}.{branch}", found)
            continue
        operation = STEP_TYPE_OPERATIONS.get(step_type)
        if operation is None:
            continue
        shape = _sagemaker_model().operation_model(operation).input_shape
        optional = NAMED_BY_PIPELINES - _REQUIRED_NAMES.get(step_type, set())
        before = len(found)
        _check_value(arguments, shape, name, found, optional_names=optional)
        for at in range(before, len(found)):
            found[at] += f" ({step_type} step, checked against {operation})"


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSION_KEYS


def _check_value(value: Any, shape: Shape, path: str, found: list[str], optional_names: frozenset[str] | set[str] = frozenset()) -> None:
    if shape.type_name == "structure":
        if not isinstance(value, dict) or _is_expression(value):
            found.append(f"{path}: must be an object with keys from {', '.join(shape.members)}")
            return
        for key, member in value.items():
            if key in shape.members:
                _check_value(member, shape.members[key], f"{path}.{key}", found)
            else:
                found.append(f"{path}.{key}: unknown key; accepted keys here: {', '.join(shape.members)}")
        for key in shape.required_members:
            if key not in value and key not in optional_names:
                found.append(f"{path}.{key}: required, missing")
    elif shape.type_name == "list":
        if not isinstance(value, list):
            found.append(f"{path}: must be a list")
            return
        for index, item in enumerate(value):
            _check_value(item, shape.member, f"{path}[{index}]", found)
    elif shape.type_name == "map":
        if not isinstance(value, dict) or _is_expression(value):
            found.append(f"{path}: must be an object")
            return
        for key, item in value.items():
            _check_value(item, shape.value, f"{path}.{key}", found)
    elif not _is_expression(value):
        _check_scalar(value, shape, path, found)


def _check_scalar(value: Any, shape: Shape, path: str, found: list[str]) -> None:
    accepted = _SCALAR_TYPES[shape.type_name]
    # JSON's true and false are ints to Python, never an API's number.
    if isinstance(value, bool) != (shape.type_name == "boolean") or not isinstance(value, accepted):
        article = "an" if shape.type_name[0] in "aeiou" else "a"
        found.append(f"{path}: must be {article} {shape.type_name} or a pipeline expression ({', '.join(sorted(EXPRESSION_KEYS))}), got {value!r}")
        return
    # A ${placeholder} is filled in at deploy, so only a literal can be held to the enumeration.
    enum = getattr(shape, "enum", [])
    if enum and isinstance(value, str) and "${" not in value and value not in enum:
        shown = ", ".join(enum[:_ENUM_VALUES_SHOWN]) + (", ..." if len(enum) > _ENUM_VALUES_SHOWN else "")
        found.append(f"{path}: {value!r} is not one of the {len(enum)} values botocore {botocore.__version__} knows ({shown})")
