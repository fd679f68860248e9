"""The training pipeline's definition as the app renders it at synth time."""

from __future__ import annotations

import dataclasses
import json

import pytest

from config import load_environment
from pipeline_code import render
from tests.synth import CONFIG_DIR, Synthesized



@pytest.fixture
def definition(synthesized: Synthesized, environment) -> dict:
    return synthesized.pipeline_definition(environment, "training")


def _step(definition: dict, name: str) -> dict:
    steps = {s["Name"]: s for s in definition["Steps"]}
    steps.update({s["Name"]: s for c in steps.values() if c["Type"] == "Condition" for s in c["Arguments"]["IfSteps"] + c["Arguments"]["ElseSteps"]})
    return steps[name]


def _asset_uris(synthesized: Synthesized, environment: str) -> set[str]:
    manifest = json.loads(next((synthesized.outdir / f"assembly-{environment}").glob("*modelbuild*.assets.json")).read_text())
    return {
        f"s3://{d['bucketName']}/{d['objectKey']}".replace("${AWS::AccountId}", load_environment(CONFIG_DIR, environment).account).replace("${AWS::Region}", "eu-west-1")
        for f in manifest["files"].values()
        for d in f["destinations"].values()
    }


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


def test_model_is_registered_in_the_environments_group_pending_approval_with_metrics(definition, environment):
    register = _step(definition, "Register")["Arguments"]

    assert register["ModelPackageGroupName"] == f"mlops-{environment}-models"
    assert register["ModelApprovalStatus"] == "PendingManualApproval"
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation']" in json.dumps(statistics["S3Uri"])


def test_parameters_default_to_the_environments_config(definition, environment):
    config = load_environment(CONFIG_DIR, environment).model_build
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}

    assert defaults == {
        "InputDataUri": f"s3://${{DataBucket}}/{config.training_prefix}",
        "ProcessingInstanceType": config.processing_instance_type,
        "TrainingInstanceType": config.training_instance_type,
        "AucThreshold": config.auc_threshold,
    }


def test_registered_model_serves_the_inference_code_its_artifact_carries(definition):
    (container,) = _step(definition, "Register")["Arguments"]["InferenceSpecification"]["Containers"]

    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "train.py"


def test_step_scripts_are_referenced_by_their_asset_uris(synthesized: Synthesized, definition, environment):
    assets = _asset_uris(synthesized, environment)
    preprocess_code = _step(definition, "Preprocess")["Arguments"]["ProcessingInputs"][-1]["S3Input"]["S3Uri"]
    evaluate_code = _step(definition, "Evaluate")["Arguments"]["ProcessingInputs"][-1]["S3Input"]["S3Uri"]
    training = _step(definition, "Train")["Arguments"]["HyperParameters"]

    assert {preprocess_code, evaluate_code, training["sagemaker_submit_directory"]} <= assets
    assert preprocess_code.endswith(".py") and evaluate_code.endswith(".py")
    assert training["sagemaker_program"] == "train.py"


def test_every_step_that_runs_a_job_is_cached(definition):
    for name in ("Preprocess", "Train", "Evaluate"):
        assert _step(definition, name)["CacheConfig"]["Enabled"] is True


def test_executions_are_tracked_as_experiments(definition):
    assert definition["PipelineExperimentConfig"] == {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    }


def test_deploy_time_values_are_left_as_placeholders_for_the_upsert(definition):
    text = json.dumps(definition)
    assert "${ArtifactsBucket}" in text and "${KmsKeyArn}" in text and "${PipelineRoleName}" in text


def test_rendering_twice_gives_identical_bytes(synthesized: Synthesized, tmp_path):
    stage = next(s for s in synthesized.stages if s.stage_name == "dev")
    settings = stage.model_build.pipeline_settings["training"]

    first = render.render("training", settings)
    second = render.render("training", dataclasses.replace(settings))

    assert first.encode() == second.encode()


def test_rendering_is_cached_on_its_inputs(synthesized: Synthesized, tmp_path):
    settings = next(s for s in synthesized.stages if s.stage_name == "dev").model_build.pipeline_settings["training"]

    cold = render.render_cached("training", settings, tmp_path)
    warm = render.render_cached("training", settings, tmp_path)
    other = render.render_cached("training", dataclasses.replace(settings, auc_threshold=0.5), tmp_path)

    assert (cold.from_cache, warm.from_cache, other.from_cache) == (False, True, False)
    assert warm.path == cold.path != other.path


def test_source_archive_is_byte_identical_for_identical_scripts(tmp_path):
    first = render.source_archive("training", tmp_path / "a").read_bytes()
    second = render.source_archive("training", tmp_path / "b").read_bytes()
    assert first == second


def _job_steps(steps: list[dict]):
    for step in steps:
        if step["Type"] in ("Processing", "Training"):
            yield step
        if step["Type"] == "Condition":
            yield from _job_steps(step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []))


def _vpc_config(step: dict):
    arguments = step["Arguments"]
    return arguments.get("NetworkConfig", {}).get("VpcConfig") if step["Type"] == "Processing" else arguments.get("VpcConfig")


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_every_job_runs_in_the_environments_subnets_and_security_group_where_studio_is_vpc_only(
    synthesized: Synthesized, definition, environment
):
    zones = len(load_environment(CONFIG_DIR, environment).network.vpc.availability_zones)
    (upsert,) = [
        r["Properties"]
        for r in synthesized.template(environment, "model-build")["Resources"].values()
        if r["Type"] == "Custom::SageMakerPipeline"
    ]
    subnets = [f"${{JobSubnet{i}}}" for i in range(zones)]
    jobs = list(_job_steps(definition["Steps"]))

    assert [s["Name"] for s in jobs] == ["Preprocess", "Train", "Evaluate"]
    for step in jobs:
        assert _vpc_config(step) == {"Subnets": subnets, "SecurityGroupIds": ["${JobSecurityGroup}"]}, step["Name"]
    assert {f"JobSubnet{i}" for i in range(zones)} | {"JobSecurityGroup"} <= set(upsert["Substitutions"])


@pytest.mark.parametrize("environment", ["dev"])
def test_jobs_use_sagemakers_network_where_studio_is_public(definition, environment):
    assert all(_vpc_config(step) is None for step in _job_steps(definition["Steps"]))
