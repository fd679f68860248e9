"""A pipeline_code/ folder becomes SageMaker pipeline <project>-<env>-<folder>, or synth fails naming the folder and the rule."""

from __future__ import annotations

import botocore.session
import pytest

from config import naming
from config.naming import PipelineFolderError, pipeline_name
from mlops_constructs.pipeline_triggers import SCHEDULE_NAME_MAX_LENGTH
from pipeline_code import render
from tests.synth import model_build_stack


def test_limits_are_sagemakers_own():
    sagemaker = botocore.session.get_session().get_service_model("sagemaker")
    pipeline, experiment = sagemaker.shape_for("PipelineName").metadata, sagemaker.shape_for("ExperimentEntityName").metadata

    assert (pipeline["pattern"], pipeline["max"]) == (naming.PIPELINE_NAME_PATTERN, naming.PIPELINE_NAME_MAX_LENGTH)
    assert experiment["max"] == naming.EXPERIMENT_NAME_MAX_LENGTH


def test_schedule_name_limit_is_schedulers_own():
    scheduler = botocore.session.get_session().get_service_model("scheduler")
    assert scheduler.shape_for("Name").metadata["max"] == SCHEDULE_NAME_MAX_LENGTH


def test_folder_becomes_the_pipeline_name_after_the_environment_prefix():
    assert pipeline_name("mlops-dev", "batch-scoring") == "mlops-dev-batch-scoring"


def test_underscores_are_refused_with_the_hyphenated_name_to_use():
    with pytest.raises(PipelineFolderError, match=r"pipeline_code/my_scoring/ .*underscores are not allowed.*'my-scoring'"):
        pipeline_name("mlops-dev", "my_scoring")


@pytest.mark.parametrize("folder", ["Scoring", "-scoring", "scoring-", "scoring.v2"])
def test_names_outside_lower_case_letters_digits_and_inner_hyphens_are_refused(folder):
    with pytest.raises(PipelineFolderError, match=rf"pipeline_code/{folder}/ .*lower-case letters, digits and hyphens"):
        pipeline_name("mlops-dev", folder)


def test_a_name_too_long_for_sagemaker_is_refused_with_the_length_allowed():
    folder = "a" * (120 - len("mlops-prod-") + 1)
    with pytest.raises(PipelineFolderError, match=rf"pipeline_code/{folder}/ .*121 characters, at most 120 .*at most 109 characters"):
        pipeline_name("mlops-prod", folder)


def test_the_longest_name_sagemaker_accepts_is_accepted():
    assert len(pipeline_name("mlops-prod", "a" * (120 - len("mlops-prod-")))) == 120


@pytest.mark.parametrize("folder", ["render", "settings"])
def test_names_of_pipeline_code_modules_are_reserved(folder):
    with pytest.raises(PipelineFolderError, match=rf"pipeline_code/{folder}/ .*'{folder}' is reserved"):
        pipeline_name("mlops-dev", folder)


@pytest.mark.parametrize("folder", ["draft", "draft-scoring"])
def test_names_of_draft_pipelines_are_reserved(folder):
    with pytest.raises(PipelineFolderError, match=rf"pipeline_code/{folder}/ .*reserved for draft pipelines"):
        pipeline_name("mlops-dev", folder)


def test_the_name_of_promoted_artifacts_is_reserved():
    with pytest.raises(PipelineFolderError, match=r"pipeline_code/promoted/ .*'promoted' is reserved.*pipelines/mlops-dev-promoted/"):
        pipeline_name("mlops-dev", "promoted")


def test_a_folder_merely_containing_draft_is_a_pipeline():
    assert pipeline_name("mlops-dev", "redraft") == "mlops-dev-redraft"


def test_synth_fails_on_a_bad_folder_before_rendering_anything(monkeypatch, tmp_path):
    monkeypatch.setattr(render, "pipeline_names", lambda: ["training", "my_scoring"])
    monkeypatch.setattr(render, "render_cached", lambda *args: pytest.fail("rendered before checking the folder names"))
    with pytest.raises(PipelineFolderError, match="pipeline_code/my_scoring/"):
        model_build_stack(tmp_path)
