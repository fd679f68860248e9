"""What config's model_build.pipelines makes of a pipeline's start: upload rules, schedules, or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.settings import PipelineTrigger
from pipeline_code import render
from stacks.model_build import PipelineFolderError
from tests.synth import environment_config, model_build_stack
from tests.templates import cfn_text, only, policy_statements, resources, role_named


def synth_model_build(tmp_path: Path, pipelines: dict[str, dict]) -> dict:
    """dev's model-build template with `pipelines` as model_build.pipelines."""
    model_build = environment_config("dev").model_build.model_copy(update={"pipelines": {n: PipelineTrigger(**t) for n, t in pipelines.items()}})
    app, _ = model_build_stack(tmp_path, model_build)
    return app.synth().get_stack_by_name("model-build").template


def test_a_scheduled_pipeline_is_started_by_scheduler_with_retries_and_dead_letters(tmp_path):
    template = synth_model_build(tmp_path, {"training": {"trigger": "schedule", "schedule": "cron(0 3 * * ? *)"}})
    _, schedule = only(template, "AWS::Scheduler::Schedule")
    queue, _ = only(template, "AWS::SQS::Queue")
    target = schedule["Target"]

    assert (schedule["Name"], schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == ("training", "cron(0 3 * * ? *)", "UTC")
    assert schedule["GroupName"] == only(template, "AWS::Scheduler::ScheduleGroup")[1]["Name"] == "mlops-dev-pipelines"
    assert cfn_text(target["Arn"]).endswith(".PipelineArn>")
    assert target["RoleArn"] == {"Fn::GetAtt": [role_named(template, "TriggersStartRole"), "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_a_scheduled_pipeline_does_not_listen_to_uploads(tmp_path):
    template = synth_model_build(tmp_path, {"training": {"trigger": "schedule", "schedule": "rate(1 day)"}})
    assert not resources(template, "AWS::Events::Rule")
    assert not [name for name in resources(template, "AWS::Lambda::Function") if name.startswith("TriggersDebounce")]


def test_a_pipeline_started_by_nothing_has_no_rule_schedule_or_start_permission(tmp_path):
    template = synth_model_build(tmp_path, {"training": {"trigger": "none"}})
    statements = policy_statements(template, role_named(template, "TriggersStartRole"))

    assert not resources(template, "AWS::Events::Rule") and not resources(template, "AWS::Scheduler::Schedule")
    assert not [s for s in statements if s["Action"] == "sagemaker:StartPipelineExecution"]


def test_an_upload_prefix_from_config_is_listened_to_and_is_the_pipelines_input_default(tmp_path):
    template = synth_model_build(tmp_path, {"training": {"trigger": "upload", "prefix": "incoming/", "suffix": ".parquet", "quiet_seconds": 600}})
    _, rule = only(template, "AWS::Events::Rule")
    (function,) = [r["Properties"] for name, r in resources(template, "AWS::Lambda::Function").items() if name.startswith("TriggersDebounce")]
    training = json.loads(cfn_text(function["Environment"]["Variables"]["PIPELINES"]))["training"]

    assert rule["EventPattern"]["detail"]["object"]["key"] == [{"wildcard": "incoming/*.parquet"}]
    assert training["quiet_seconds"] == 600 and training["parameters"]["InputDataUri"].endswith(">/incoming/")


def test_an_upload_trigger_on_a_pipeline_without_an_input_parameter_fails_synth_naming_it(tmp_path, monkeypatch):
    real = render.render_cached

    def without_input_parameter(name, settings, cache_dir):
        rendered = real(name, settings, cache_dir)
        definition = json.loads(rendered.path.read_text())
        definition["Parameters"] = [p for p in definition["Parameters"] if p["Name"] != "InputDataUri"]
        rendered.path = tmp_path / "definition.json"
        rendered.path.write_text(json.dumps(definition))
        return rendered

    monkeypatch.setattr(render, "render_cached", without_input_parameter)
    with pytest.raises(PipelineFolderError, match=r"pipeline_code/training/: .* parameter InputDataUri, which its pipeline.py does not declare"):
        synth_model_build(tmp_path, {})


def test_a_triggered_pipeline_whose_folder_is_too_long_for_a_schedule_name_fails_synth(tmp_path, monkeypatch):
    folder = "a" * 65
    monkeypatch.setattr(render, "pipeline_names", lambda: ["training", folder])
    with pytest.raises(PipelineFolderError, match=rf"pipeline_code/{folder}/: .*Scheduler names are at most 64 characters \(65 here\)"):
        synth_model_build(tmp_path, {folder: {"trigger": "upload", "prefix": "scoring/"}})
