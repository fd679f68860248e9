"""model_build.pipelines: how each pipeline is started, validated with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config import ConfigError, load_environment
from config import settings
from pipeline_code import render
from tests.synth import TEST_CONFIG_DIR, environment_config


def _load_with_pipelines(tmp_path: Path, pipelines: dict):
    config = yaml.safe_load((TEST_CONFIG_DIR / "dev.yaml").read_text())
    config["model_build"]["pipelines"] = pipelines
    # Without models, the environment's one model claims every folder, the made-up one too.
    config.pop("models")
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump(config))
    return load_environment(tmp_path, "dev").model_build


def _error(tmp_path: Path, pipelines: dict) -> str:
    with pytest.raises(ConfigError) as error:
        _load_with_pipelines(tmp_path, pipelines)
    return str(error.value)


@pytest.fixture
def scoring_folder(monkeypatch):
    """A second pipeline folder, as far as config validation can tell."""
    monkeypatch.setattr(settings, "pipeline_names", lambda: ["scoring", "training"])


def test_training_listens_to_uploads_under_training_prefix_by_default():
    model_build = environment_config("dev").model_build
    trigger = model_build.trigger("training")

    assert (trigger.trigger, trigger.prefix, trigger.suffix) == ("upload", model_build.training_prefix, model_build.training_suffix)
    assert trigger.quiet_seconds == 300


def test_other_pipelines_are_started_by_nothing_by_default(scoring_folder):
    assert environment_config("dev").model_build.trigger("scoring").trigger == "none"


def test_training_listed_for_uploads_keeps_training_prefix_and_takes_its_quiet_period(tmp_path):
    trigger = _load_with_pipelines(tmp_path, {"training": {"trigger": "upload", "quiet_seconds": 120}}).trigger("training")
    assert (trigger.prefix, trigger.suffix, trigger.quiet_seconds) == ("training/", ".csv", 120)


def test_another_pipeline_can_listen_to_its_own_prefix(tmp_path, scoring_folder):
    model_build = _load_with_pipelines(tmp_path, {"scoring": {"trigger": "upload", "prefix": "scoring/", "suffix": ".parquet"}})
    trigger = model_build.trigger("scoring")
    assert (trigger.trigger, trigger.prefix, trigger.suffix) == ("upload", "scoring/", ".parquet")


def test_a_pipeline_can_run_on_a_schedule(tmp_path):
    trigger = _load_with_pipelines(tmp_path, {"training": {"trigger": "schedule", "schedule": "cron(0 3 * * ? *)"}}).trigger("training")
    assert (trigger.trigger, trigger.schedule) == ("schedule", "cron(0 3 * * ? *)")


def test_a_folder_that_does_not_exist_is_named_with_the_folders_that_do(tmp_path):
    message = _error(tmp_path, {"no-such-folder": {"trigger": "none"}})
    assert "model_build.pipelines.no-such-folder" in message
    assert f"no folder pipeline_code/no-such-folder/ with a pipeline.py or definition.json; pipelines: {', '.join(render.pipeline_names())}" in message


def test_an_unknown_trigger_lists_the_accepted_ones(tmp_path):
    message = _error(tmp_path, {"training": {"trigger": "sometimes"}})
    assert "model_build.pipelines.training.trigger: Input should be 'upload', 'schedule' or 'none'" in message


def test_upload_to_another_pipeline_needs_a_prefix(tmp_path, scoring_folder):
    message = _error(tmp_path, {"scoring": {"trigger": "upload"}})
    assert "model_build.pipelines: scoring.prefix: trigger 'upload' needs the S3 key prefix" in message


def test_schedule_trigger_needs_a_schedule(tmp_path):
    assert "model_build.pipelines.training: trigger 'schedule' needs a schedule" in _error(tmp_path, {"training": {"trigger": "schedule"}})


@pytest.mark.parametrize("expression", ["every day", "rate(0 days)", "cron(0 3 * * *)", "at(2026-11-25T10:00:00)"])
def test_a_schedule_must_be_a_recurring_rate_or_cron(tmp_path, expression):
    message = _error(tmp_path, {"training": {"trigger": "schedule", "schedule": expression}})
    assert "model_build.pipelines.training.schedule: must be rate(<n> minutes|hours|days) or a six-field cron(...)" in message


@pytest.mark.parametrize(
    ("trigger", "stray"),
    [({"trigger": "none", "prefix": "training/"}, "prefix"), ({"trigger": "upload", "schedule": "rate(1 day)"}, "schedule")],
)
def test_keys_of_another_trigger_are_refused(tmp_path, trigger, stray):
    assert f"model_build.pipelines.training: {stray} cannot be set with trigger '{trigger['trigger']}'" in _error(tmp_path, {"training": trigger})


def test_a_quiet_period_under_a_minute_is_refused(tmp_path):
    message = _error(tmp_path, {"training": {"trigger": "upload", "quiet_seconds": 10}})
    assert "model_build.pipelines.training.quiet_seconds: Input should be greater than or equal to 60" in message


def test_a_maximum_wait_shorter_than_the_quiet_period_is_refused(tmp_path):
    message = _error(tmp_path, {"training": {"trigger": "upload", "quiet_seconds": 600, "max_wait_seconds": 300}})
    assert "model_build.pipelines.training: max_wait_seconds must be at least quiet_seconds" in message
