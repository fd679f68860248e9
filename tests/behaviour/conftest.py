"""Fixtures shared by the behaviour tests."""

from __future__ import annotations

import pytest

from tests.behaviour.batch_world import IMAGE_TAG, synthesized_batch_workflow
from tests.behaviour.deployer_world import synthesized_deployer
from tests.shared_builds import SharedBuilds
from tests.synth import Synthesized

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


# The deployer as synthesized with test timings, once per test session for every module that runs it.


def _deployer_template(shared_builds: SharedBuilds, name: str, **deployment: object) -> dict:
    folder = shared_builds.folder(f"deployer-{name}", lambda folder: synthesized_deployer(folder, **deployment))
    return Synthesized(folder / "cdk.out").template("dev", "deployment")


@pytest.fixture(scope="session")
def variants_template(shared_builds) -> dict:
    return _deployer_template(shared_builds, "variants")


@pytest.fixture(scope="session")
def approval_template(shared_builds) -> dict:
    return _deployer_template(shared_builds, "approval", manual_approval=True)


@pytest.fixture(scope="session")
def guardrails_template(shared_builds) -> dict:
    return _deployer_template(shared_builds, "guardrails", strategy="guardrails")


@pytest.fixture(scope="session")
def traffic_guard_template(shared_builds) -> dict:
    return _deployer_template(shared_builds, "traffic", min_canary_invocations=100)


# The batch inference workflow as synthesized for dev, with an image tag in config and without one, and
# allowing only Approved models.


def _batch_template(shared_builds: SharedBuilds, name: str, **batch_inference: object) -> dict:
    folder = shared_builds.folder(f"batch-{name}", lambda folder: synthesized_batch_workflow(folder, **batch_inference))
    return Synthesized(folder / "cdk.out").template("dev", "batch-inference")


@pytest.fixture(scope="session")
def batch_template(shared_builds) -> dict:
    return _batch_template(shared_builds, "tagged", image_tag=IMAGE_TAG)


@pytest.fixture(scope="session")
def untagged_batch_template(shared_builds) -> dict:
    return _batch_template(shared_builds, "untagged")


@pytest.fixture(scope="session")
def approved_only_batch_template(shared_builds) -> dict:
    """As staging and prod: only Approved model package versions score a batch."""
    return _batch_template(shared_builds, "approved-only", image_tag=IMAGE_TAG, allow_unapproved_models=False)
