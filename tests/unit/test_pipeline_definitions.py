"""What every pipeline's rendered definition must satisfy, whatever its steps: one run per pipeline_code/ folder."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from config.naming import model_package_group_name
from pipeline_code import render
from pipeline_code.settings import INFERENCE_CODE_DIR
from stacks.environment import PIPELINE_DEFINITIONS_DIR
from tests.synth import Synthesized, environment_config


@pytest.fixture
def definition(synthesized: Synthesized, environment, pipeline) -> dict:
    return synthesized.pipeline_definition(environment, pipeline)


def steps(definition: dict) -> list[dict]:
    """Every step, those inside condition branches included."""
    found = []
    for step in definition["Steps"]:
        found.append(step)
        for branch in ("IfSteps", "ElseSteps"):
            found += steps({"Steps": step.get("Arguments", {}).get(branch, [])})
    return found


def registrations(definition: dict) -> list[dict]:
    return [s["Arguments"] for s in steps(definition) if s["Type"] == "RegisterModel"]


def _asset_uris(synthesized: Synthesized, environment: str) -> set[str]:
    config = environment_config(environment)
    manifest = json.loads(next((synthesized.outdir / f"assembly-{environment}").glob("*modelbuild*.assets.json")).read_text())
    return {
        f"s3://{d['bucketName']}/{d['objectKey']}".replace("${AWS::AccountId}", config.account).replace("${AWS::Region}", config.region)
        for f in manifest["files"].values()
        for d in f["destinations"].values()
    }


def test_pipeline_is_named_after_its_folder(synthesized: Synthesized, environment, pipeline):
    upserts = [
        r["Properties"]["PipelineName"]
        for r in synthesized.template(environment, "model-build")["Resources"].values()
        if r["Type"] == "Custom::SageMakerPipeline"
    ]
    assert f"mlops-{environment}-{pipeline}" in upserts


def test_step_code_is_referenced_by_asset_uri(synthesized: Synthesized, definition, environment):
    assets = _asset_uris(synthesized, environment)
    code = [
        i["S3Input"]["S3Uri"]
        for s in steps(definition)
        if s["Type"] == "Processing"
        for i in s["Arguments"]["ProcessingInputs"]
        if i["InputName"] == "code"
    ]
    code += [
        s["Arguments"]["HyperParameters"]["sagemaker_submit_directory"].strip('"')
        for s in steps(definition)
        if s["Type"] == "Training" and "sagemaker_submit_directory" in s["Arguments"].get("HyperParameters", {})
    ]
    assert code and set(code) <= assets


def test_every_step_that_runs_a_job_is_cached(definition):
    jobs = [s for s in steps(definition) if s["Type"] in ("Processing", "Training", "Transform")]
    assert jobs and all(s["CacheConfig"]["Enabled"] is True for s in jobs)


def test_executions_are_tracked_as_experiments(definition):
    assert definition["PipelineExperimentConfig"] == {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    }


def test_deploy_time_values_are_placeholders_the_upsert_fills(synthesized: Synthesized, definition, environment, pipeline):
    (upsert,) = [
        r["Properties"]
        for r in synthesized.template(environment, "model-build")["Resources"].values()
        if r["Type"] == "Custom::SageMakerPipeline" and r["Properties"]["PipelineName"] == f"mlops-{environment}-{pipeline}"
    ]
    used = set(re.findall(r"\$\{(\w+)\}", json.dumps(definition)))
    assert "PipelineRoleName" in used and used <= set(upsert["Substitutions"])


def test_registered_models_await_a_reviewer_in_their_models_group(definition, environment, pipeline):
    if not registrations(definition):
        pytest.skip("this pipeline registers no model")
    for register in registrations(definition):
        assert register["ModelPackageGroupName"] == model_package_group_name(environment_config(environment).pipeline_model(pipeline).stem)
        assert register["ModelApprovalStatus"] == "PendingManualApproval"


def test_registered_models_carry_their_evaluation_as_metrics(definition):
    if not registrations(definition):
        pytest.skip("this pipeline registers no model")
    for register in registrations(definition):
        statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
        assert statistics["ContentType"] == "application/json" and "S3Uri" in statistics


def test_registered_models_serve_the_inference_code_their_artifact_carries(definition):
    if not registrations(definition):
        pytest.skip("this pipeline registers no model")
    containers = [c for register in registrations(definition) for c in register["InferenceSpecification"]["Containers"]]
    assert all(c["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == INFERENCE_CODE_DIR for c in containers)


def test_rendering_twice_gives_identical_bytes(synthesized: Synthesized, pipeline):
    settings = synthesized.pipeline_settings("dev", pipeline)

    first = render.render(pipeline, settings)
    second = render.render(pipeline, dataclasses.replace(settings))

    assert first.encode() == second.encode()


def test_rendering_is_cached_on_its_inputs(synthesized: Synthesized, pipeline, tmp_path):
    settings = synthesized.pipeline_settings("dev", pipeline)

    cold = render.render_cached(pipeline, settings, tmp_path)
    warm = render.render_cached(pipeline, settings, tmp_path)
    other = render.render_cached(pipeline, dataclasses.replace(settings, region="eu-central-1"), tmp_path)

    assert (cold.from_cache, warm.from_cache, other.from_cache) == (False, True, False)
    assert warm.path == cold.path != other.path


def test_source_archive_is_byte_identical_for_identical_scripts(pipeline, tmp_path):
    first = render.source_archive(pipeline, tmp_path / "a").read_bytes()
    second = render.source_archive(pipeline, tmp_path / "b").read_bytes()
    assert first == second


def _vpc_config(step: dict) -> dict | None:
    arguments = step["Arguments"]
    return arguments.get("NetworkConfig", {}).get("VpcConfig") if step["Type"] == "Processing" else arguments.get("VpcConfig")


def _jobs(definition: dict) -> list[dict]:
    return [s for s in steps(definition) if s["Type"] in ("Processing", "Training")]


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_every_job_runs_in_the_environments_subnets_and_security_group_where_studio_is_vpc_only(
    synthesized: Synthesized, definition, environment, pipeline
):
    zones = len(environment_config(environment).network.vpc.availability_zones)
    (upsert,) = [
        r["Properties"]
        for r in synthesized.template(environment, "model-build")["Resources"].values()
        if r["Type"] == "Custom::SageMakerPipeline" and r["Properties"]["PipelineName"] == f"mlops-{environment}-{pipeline}"
    ]
    subnets = [f"${{JobSubnet{i}}}" for i in range(zones)]

    assert _jobs(definition)
    for step in _jobs(definition):
        assert _vpc_config(step) == {"Subnets": subnets, "SecurityGroupIds": ["${JobSecurityGroup}"]}, step["Name"]
    assert {f"JobSubnet{i}" for i in range(zones)} | {"JobSecurityGroup"} <= set(upsert["Substitutions"])


@pytest.mark.parametrize("environment", ["dev"])
def test_jobs_use_sagemakers_network_where_studio_is_public(definition, environment):
    assert all(_vpc_config(step) is None for step in _jobs(definition))


def test_each_environments_definition_is_written_under_a_stable_readable_name(synthesized: Synthesized, environment, pipeline):
    written = synthesized.outdir / PIPELINE_DEFINITIONS_DIR / environment / f"{pipeline}.json"

    assert json.loads(written.read_text()) == synthesized.pipeline_definition(environment, pipeline)
    # Indented, one value a line: a changed hyperparameter is a one-line diff between two synths.
    assert len(written.read_text().splitlines()) > 100
