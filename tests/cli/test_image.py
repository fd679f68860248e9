"""`mlops image build`: the environment's CodeBuild project for the batch inference image, started and followed
in moto."""

from __future__ import annotations

import shutil

import boto3
import pytest
import yaml
from moto.codebuild.models import CodeBuildBackend

from config.naming import batch_image_build_name
from mlops_cli.errors import FAILED
from tests.optional_pieces import IMAGE_BUILD
from tests.synth import TEST_CONFIG_DIR


@pytest.fixture
def config_dir(tmp_path):
    """The tests' config with dev's batch image build switched on."""
    copy = tmp_path / "config"
    shutil.copytree(TEST_CONFIG_DIR, copy)
    dev = yaml.safe_load((copy / "dev.yaml").read_text())
    dev.setdefault("batch_inference", {})["image_build"] = IMAGE_BUILD
    (copy / "dev.yaml").write_text(yaml.safe_dump(dev))
    return copy


@pytest.fixture
def project(aws, dev) -> str:
    """The project as the batch-inference stack deploys it."""
    name = batch_image_build_name(dev.prefix)
    boto3.client("codebuild", region_name=dev.region).create_project(
        name=name,
        source={"type": "GITHUB", "location": f"https://github.com/{IMAGE_BUILD['repository']}.git"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"},
        serviceRole=f"arn:aws:iam::{dev.account}:role/image-build",
    )
    return name


def _builds(dev, project: str) -> list[str]:
    return boto3.client("codebuild", region_name=dev.region).list_builds_for_project(projectName=project)["ids"]


def test_build_starts_the_environments_project(mlops, dev, project):
    result = mlops("image", "build", "--env", "dev")

    assert result.exit_code == 0, result.stderr
    (build,) = _builds(dev, project)
    assert f"Started {build} ({IMAGE_BUILD['repository']}@{IMAGE_BUILD['branch']})" in result.stdout


def test_build_and_wait_shows_each_phase_and_the_outcome(mlops, dev, project):
    result = mlops("image", "build", "--env", "dev", "--wait", "--poll-seconds", "0")

    assert result.exit_code == 0, result.stderr
    (build,) = _builds(dev, project)
    lines = result.stdout.splitlines()
    assert lines.index("PRE_BUILD: SUCCEEDED") < lines.index("BUILD: SUCCEEDED") < lines.index("POST_BUILD: SUCCEEDED")
    assert lines[-1] == f"{build} SUCCEEDED"


def test_build_and_wait_fails_with_the_failed_phase_and_its_reason(mlops, project, monkeypatch):
    completed = CodeBuildBackend.batch_get_builds

    def failed_in_build_phase(backend, ids):
        builds = completed(backend, ids)
        for build in builds:
            build["buildStatus"] = "FAILED"
            phase = next(p for p in build["phases"] if p["phaseType"] == "BUILD")
            phase.update(phaseStatus="FAILED", contexts=[{"statusCode": "COMMAND_EXECUTION_ERROR", "message": "docker build exited 1"}])
        return builds

    monkeypatch.setattr(CodeBuildBackend, "batch_get_builds", failed_in_build_phase)
    result = mlops("image", "build", "--env", "dev", "--wait", "--poll-seconds", "0")

    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1].endswith("FAILED: BUILD FAILED: docker build exited 1")


def test_an_environment_without_an_image_build_is_told_so_before_any_build(mlops, aws):
    result = mlops("--config-dir", str(TEST_CONFIG_DIR), "image", "build", "--env", "dev")

    assert result.exit_code == FAILED
    assert "environment dev has no image build: config/dev.yaml sets no batch_inference.image_build" in result.stderr


def test_a_configured_build_that_is_not_deployed_is_named(mlops, aws, dev):
    result = mlops("image", "build", "--env", "dev")

    assert result.exit_code == FAILED
    assert f"the CodeBuild project {batch_image_build_name(dev.prefix)} does not exist: is environment dev deployed" in result.stderr
