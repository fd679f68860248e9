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


def _deployer_synthesized(shared_builds: SharedBuilds, name: str, **deployment: object) -> Synthesized:
    folder = shared_builds.folder(f"deployer-{name}", lambda folder: synthesized_deployer(folder, **deployment))
    return Synthesized(folder / "cdk.out")


# `<name>_synthesized` is the whole dev environment the deployer `<name>_template` was synthesized with:
# what the permission checks of the behaviour tests read the policies from.


@pytest.fixture(scope="session")
def variants_synthesized(shared_builds) -> Synthesized:
    return _deployer_synthesized(shared_builds, "variants")


@pytest.fixture(scope="session")
def approval_synthesized(shared_builds) -> Synthesized:
    return _deployer_synthesized(shared_builds, "approval", manual_approval=True)


@pytest.fixture(scope="session")
def guardrails_synthesized(shared_builds) -> Synthesized:
    return _deployer_synthesized(shared_builds, "guardrails", strategy="guardrails")


@pytest.fixture(scope="session")
def traffic_guard_synthesized(shared_builds) -> Synthesized:
    return _deployer_synthesized(shared_builds, "traffic", min_canary_invocations=100)


@pytest.fixture(scope="session")
def variants_template(variants_synthesized) -> dict:
    return variants_synthesized.template("dev", "deployment")


@pytest.fixture(scope="session")
def approval_template(approval_synthesized) -> dict:
    return approval_synthesized.template("dev", "deployment")


@pytest.fixture(scope="session")
def guardrails_template(guardrails_synthesized) -> dict:
    return guardrails_synthesized.template("dev", "deployment")


@pytest.fixture(scope="session")
def traffic_guard_template(traffic_guard_synthesized) -> dict:
    return traffic_guard_synthesized.template("dev", "deployment")


# The batch inference workflow as synthesized for dev, with an image tag in config and without one.


def _batch_synthesized(shared_builds: SharedBuilds, name: str, **batch_inference: object) -> Synthesized:
    folder = shared_builds.folder(f"batch-{name}", lambda folder: synthesized_batch_workflow(folder, **batch_inference))
    return Synthesized(folder / "cdk.out")


@pytest.fixture(scope="session")
def batch_synthesized(shared_builds) -> Synthesized:
    return _batch_synthesized(shared_builds, "tagged", image_tag=IMAGE_TAG)


@pytest.fixture(scope="session")
def batch_template(batch_synthesized) -> dict:
    return batch_synthesized.template("dev", "batch-inference")


@pytest.fixture(scope="session")
def untagged_batch_template(shared_builds) -> dict:
    return _batch_synthesized(shared_builds, "untagged").template("dev", "batch-inference")
