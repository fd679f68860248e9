"""A definition.json is held to SageMaker's API model at synth: each step's Arguments against the input shape of
the API its type calls, with the offending path in the message."""

from __future__ import annotations

import copy
import json
import shutil

import pytest

from config.naming import PipelineFolderError
from pipeline_code import definition_shape, render
from tests.synth import Synthesized, model_build_stack


@pytest.fixture
def training(synthesized: Synthesized) -> dict:
    return copy.deepcopy(synthesized.pipeline_definition("dev", "training"))


def step(definition: dict, name: str) -> dict:
    for candidate in definition["Steps"]:
        if candidate["Name"] == name:
            return candidate["Arguments"]
        for branch in ("IfSteps", "ElseSteps"):
            for inner in candidate.get("Arguments", {}).get(branch, []):
                if inner["Name"] == name:
                    return inner["Arguments"]
    raise KeyError(name)


def test_the_rendered_training_definition_fits_the_api_model(synthesized: Synthesized, environment):
    assert definition_shape.problems(synthesized.pipeline_definition(environment, "training")) == []


def test_an_unknown_key_is_named_by_its_path_with_the_accepted_keys(training):
    resources = step(training, "Train")["ResourceConfig"]
    resources["InstanceTyp"] = resources.pop("InstanceType")

    (problem,) = definition_shape.problems(training)

    assert problem.startswith("Train.ResourceConfig.InstanceTyp: unknown key; accepted keys here: InstanceType, InstanceCount")
    assert problem.endswith("(Training step, checked against CreateTrainingJob)")


def test_a_missing_required_member_is_named_by_its_path(training):
    del step(training, "Preprocess")["AppSpecification"]["ImageUri"]

    assert definition_shape.problems(training) == [
        "Preprocess.AppSpecification.ImageUri: required, missing (Processing step, checked against CreateProcessingJob)"
    ]


def test_job_names_are_left_to_pipelines_but_a_transform_must_name_its_model(training):
    assert "TrainingJobName" not in step(training, "Train")
    training["Steps"].append({"Name": "Score", "Type": "Transform", "Arguments": {
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in"}}},
        "TransformOutput": {"S3OutputPath": "s3://bucket/out"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }})

    assert definition_shape.problems(training) == ["Score.ModelName: required, missing (Transform step, checked against CreateTransformJob)"]


def test_steps_inside_condition_branches_are_checked(training):
    step(training, "Register")["ModelApprovalStatus"] = "Approved!"

    (problem,) = definition_shape.problems(training)

    assert problem.startswith("Register.ModelApprovalStatus: 'Approved!' is not one of the 3 values botocore")
    assert "(Approved, Rejected, PendingManualApproval)" in problem
    assert problem.endswith("(RegisterModel step, checked against CreateModelPackage)")


@pytest.mark.parametrize(
    "expression",
    [{"Get": "Parameters.Count"}, {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Count"}]}}, {"Std:JsonGet": {"Path": "a"}}],
)
def test_a_pipeline_expression_stands_for_any_scalar(training, expression):
    step(training, "Train")["ResourceConfig"]["InstanceCount"] = expression
    step(training, "Train")["StoppingCondition"]["MaxRuntimeInSeconds"] = expression

    assert definition_shape.problems(training) == []


def test_a_pipeline_expression_does_not_stand_for_an_object_and_literals_keep_their_types(training):
    step(training, "Train")["StoppingCondition"] = {"Get": "Parameters.Stopping"}
    step(training, "Train")["ResourceConfig"]["InstanceCount"] = "one"
    step(training, "Train")["OutputDataConfig"]["CompressionType"] = True

    problems = definition_shape.problems(training)

    assert [p.split(":")[0] for p in problems] == [
        "Train.ResourceConfig.InstanceCount", "Train.StoppingCondition", "Train.OutputDataConfig.CompressionType",
    ]
    assert "must be an integer or a pipeline expression (Get, Std:Join, Std:JsonGet), got 'one'" in problems[0]
    assert "must be an object with keys from MaxRuntimeInSeconds" in problems[1]
    assert "must be a string or a pipeline expression" in problems[2]


def test_a_definition_without_steps_is_refused():
    assert definition_shape.problems({"Version": "2020-12-01"}) == ["the definition must be a JSON object with a list of Steps"]


def test_a_json_pipeline_that_does_not_fit_fails_synth_naming_the_file_and_path(tmp_path, monkeypatch, training):
    package = tmp_path / "pipeline_code"
    shutil.copytree(render.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(render, "PACKAGE_DIR", package)
    (package / "training" / "pipeline.py").unlink()
    step(training, "Train")["HyperParameter"] = step(training, "Train").pop("HyperParameters")
    (package / "training" / render.DEFINITION_FILE).write_text(json.dumps(training))

    with pytest.raises(PipelineFolderError) as error:
        model_build_stack(tmp_path / "cdk.out")

    assert str(error.value).startswith("pipeline_code/training/definition.json does not fit SageMaker's API model (1 problem):\n")
    assert "  Train.HyperParameter: unknown key;" in str(error.value)
