"""What is particular to the training pipeline's definition; what every pipeline must satisfy is in
test_pipeline_definitions.py."""

from __future__ import annotations

import pytest

from pipeline_code.training.pipeline import HYPERPARAMETERS
from tests.synth import Synthesized, environment_config


@pytest.fixture
def definition(synthesized: Synthesized, environment) -> dict:
    return synthesized.pipeline_definition(environment, "training")


def _step(definition: dict, name: str) -> dict:
    steps = {s["Name"]: s for s in definition["Steps"]}
    steps.update({s["Name"]: s for c in steps.values() if c["Type"] == "Condition" for s in c["Arguments"]["IfSteps"] + c["Arguments"]["ElseSteps"]})
    return steps[name]


def test_steps_run_preprocess_train_evaluate_then_the_auc_check(definition):
    assert [(s["Name"], s["Type"]) for s in definition["Steps"]] == [
        ("Preprocess", "Processing"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("CheckAuc", "Condition"),
    ]
    check = _step(definition, "CheckAuc")["Arguments"]
    assert [s["Name"] for s in check["IfSteps"]] == ["Register"]
    assert [s["Name"] for s in check["ElseSteps"]] == ["AucBelowThreshold"]


def test_condition_reads_auc_from_the_evaluation_report(definition):
    (condition,) = _step(definition, "CheckAuc")["Arguments"]["Conditions"]
    report = _step(definition, "Evaluate")["PropertyFiles"]

    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["PropertyFile"] == {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "binary_classification_metrics.auc.value"
    assert condition["RightValue"] == {"Get": "Parameters.AucThreshold"}
    assert report == [{"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}]


def test_failure_message_carries_the_measured_auc(definition):
    message = _step(definition, "AucBelowThreshold")["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}, "Path": "binary_classification_metrics.auc.value"}} in message


def test_parameters_default_to_the_environments_config(definition, environment):
    config = environment_config(environment).model_build
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}

    assert defaults == {
        "InputDataUri": f"s3://${{DataBucket}}/{config.training_prefix}",
        "ProcessingInstanceType": config.processing_instance_type,
        "TrainingInstanceType": config.training_instance_type,
        "AucThreshold": config.auc_threshold,
        **{name: default for name, (_, default) in HYPERPARAMETERS.items()},
    }


def test_hyperparameters_are_integer_parameters_a_run_can_override(definition):
    types = {p["Name"]: p["Type"] for p in definition["Parameters"]}

    assert {name: types.get(name) for name in HYPERPARAMETERS} == dict.fromkeys(HYPERPARAMETERS, "Integer")


def test_train_step_passes_each_hyperparameter_parameter_as_a_string_argument(definition):
    passed = _step(definition, "Train")["Arguments"]["HyperParameters"]

    # CreateTrainingJob accepts only string values; Std:Join turns the integer parameter into one at run time.
    assert {argument: passed.get(argument) for argument, _ in HYPERPARAMETERS.values()} == {
        argument: {"Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{name}"}]}} for name, (argument, _) in HYPERPARAMETERS.items()
    }


def test_registered_model_runs_the_training_script_as_its_inference_code(definition):
    (container,) = _step(definition, "Register")["Arguments"]["InferenceSpecification"]["Containers"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "train.py"


def test_registered_metrics_are_the_evaluation_report(definition):
    statistics = _step(definition, "Register")["Arguments"]["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation']" in str(statistics["S3Uri"])
