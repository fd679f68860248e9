"""Fixtures shared by the behaviour tests."""

from __future__ import annotations

import pytest

from tests.behaviour.batch_world import IMAGE_TAG, synthesized_batch_workflow
from tests.behaviour.deployer_world import synthesized_deployer

REGION = "eu-west-1"


@pytest.fixture
def aws_env(monkeypatch):
    """Fake credentials and the region, as a Lambda in eu-west-1 would see them (AWS_REGION)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


# The deployer as synthesized with test timings, once per session (and per xdist worker) for every
# module that runs it.


@pytest.fixture(scope="session")
def variants_template(tmp_path_factory) -> dict:
    return synthesized_deployer(tmp_path_factory.mktemp("variants"))


@pytest.fixture(scope="session")
def approval_template(tmp_path_factory) -> dict:
    return synthesized_deployer(tmp_path_factory.mktemp("approval"), manual_approval=True)


@pytest.fixture(scope="session")
def guardrails_template(tmp_path_factory) -> dict:
    return synthesized_deployer(tmp_path_factory.mktemp("guardrails"), strategy="guardrails")


@pytest.fixture(scope="session")
def traffic_guard_template(tmp_path_factory) -> dict:
    return synthesized_deployer(tmp_path_factory.mktemp("traffic"), min_canary_invocations=100)


# The batch inference workflow as synthesized for dev, with an image tag in config and without one.


@pytest.fixture(scope="session")
def batch_template(tmp_path_factory) -> dict:
    return synthesized_batch_workflow(tmp_path_factory.mktemp("batch"), image_tag=IMAGE_TAG)


@pytest.fixture(scope="session")
def untagged_batch_template(tmp_path_factory) -> dict:
    return synthesized_batch_workflow(tmp_path_factory.mktemp("batch-untagged"))
