"""Fixtures shared by the behaviour tests."""

from __future__ import annotations

import pytest

from tests.behaviour.batch_world import IMAGE_TAG, synthesized_batch_workflow
from tests.behaviour.deployer_world import DeployerTemplate, synthesized_deployer
from tests.conftest import shared_build
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


@pytest.fixture
def new_container(request, monkeypatch):
    """The test runs the function its module tests (the module's `handler`, a function of functions/ that keeps
    its clients for a container's life) in a container of its own: the clients are built in the test's world,
    through whatever the test makes of boto3. A module whose tests need it marks them all:
    `pytestmark = pytest.mark.usefixtures("new_container")`."""
    handler = getattr(request.module, "handler", None)
    if handler is not None and hasattr(handler, "_clients"):
        monkeypatch.setattr(handler, "_clients", {})


# The deployer as synthesized with test timings, once per test session for every module that runs it.


# dev serves serverless; the instance deployers are dev on instances, capturing a fifth of the traffic as staging does.
ON_INSTANCES = {"serving": {"mode": "instances"}, "data_capture": {"enabled": True, "sampling_percentage": 20}}


def _deployer_build(name: str, **deployment: object):
    return f"deployer-{name}", lambda folder: synthesized_deployer(folder, **deployment)


_VARIANTS = shared_build("variants_synthesized", *_deployer_build("variants", **ON_INSTANCES))
_APPROVAL = shared_build("approval_synthesized", *_deployer_build("approval", manual_approval=True, **ON_INSTANCES))
_GUARDRAILS = shared_build("guardrails_synthesized", *_deployer_build("guardrails", strategy="guardrails", **ON_INSTANCES))
_TRAFFIC_GUARD = shared_build("traffic_guard_synthesized", *_deployer_build("traffic", min_canary_invocations=100, **ON_INSTANCES))
# dev as configured: serverless; and serverless with both guards before the release counts as done.
_SERVERLESS = shared_build("serverless_synthesized", *_deployer_build("serverless"))
_GUARDED_SERVERLESS = shared_build("guarded_serverless_synthesized", *_deployer_build("guarded-serverless", manual_approval=True, min_canary_invocations=100))


def _read(shared_builds: SharedBuilds, build) -> Synthesized:
    return Synthesized(shared_builds.folder(*build) / "cdk.out")


# `<name>_synthesized` is the whole dev environment the deployer `<name>_template` was synthesized with:
# what the permission checks of the behaviour tests read the policies from.


@pytest.fixture(scope="session")
def variants_synthesized(shared_builds) -> Synthesized:
    return _read(shared_builds, _VARIANTS)


@pytest.fixture(scope="session")
def approval_synthesized(shared_builds) -> Synthesized:
    return _read(shared_builds, _APPROVAL)


@pytest.fixture(scope="session")
def guardrails_synthesized(shared_builds) -> Synthesized:
    return _read(shared_builds, _GUARDRAILS)


@pytest.fixture(scope="session")
def traffic_guard_synthesized(shared_builds) -> Synthesized:
    return _read(shared_builds, _TRAFFIC_GUARD)


@pytest.fixture(scope="session")
def serverless_synthesized(shared_builds) -> Synthesized:
    return _read(shared_builds, _SERVERLESS)


@pytest.fixture(scope="session")
def guarded_serverless_synthesized(shared_builds) -> Synthesized:
    return _read(shared_builds, _GUARDED_SERVERLESS)


@pytest.fixture(scope="session")
def serverless_template(serverless_synthesized) -> DeployerTemplate:
    return DeployerTemplate(serverless_synthesized)


@pytest.fixture(scope="session")
def guarded_serverless_template(guarded_serverless_synthesized) -> DeployerTemplate:
    return DeployerTemplate(guarded_serverless_synthesized)


@pytest.fixture(scope="session")
def variants_template(variants_synthesized) -> DeployerTemplate:
    return DeployerTemplate(variants_synthesized)


@pytest.fixture(scope="session")
def approval_template(approval_synthesized) -> DeployerTemplate:
    return DeployerTemplate(approval_synthesized)


@pytest.fixture(scope="session")
def guardrails_template(guardrails_synthesized) -> DeployerTemplate:
    return DeployerTemplate(guardrails_synthesized)


@pytest.fixture(scope="session")
def traffic_guard_template(traffic_guard_synthesized) -> DeployerTemplate:
    return DeployerTemplate(traffic_guard_synthesized)


# The batch inference workflow as synthesized for dev, with an image tag in config and without one, and
# allowing only Approved models.


def _batch_build(name: str, **batch_inference: object):
    return f"batch-{name}", lambda folder: synthesized_batch_workflow(folder, **batch_inference)


_TAGGED_BATCH = shared_build("batch_synthesized", *_batch_build("tagged", image_tag=IMAGE_TAG))
_UNTAGGED_BATCH = shared_build("untagged_batch_template", *_batch_build("untagged"))


@pytest.fixture(scope="session")
def batch_synthesized(shared_builds) -> Synthesized:
    return _read(shared_builds, _TAGGED_BATCH)


@pytest.fixture(scope="session")
def batch_template(batch_synthesized) -> dict:
    return batch_synthesized.template("dev", "batch-inference")


@pytest.fixture(scope="session")
def untagged_batch_template(shared_builds) -> dict:
    return _read(shared_builds, _UNTAGGED_BATCH).template("dev", "batch-inference")


_APPROVED_ONLY_BATCH = shared_build(
    "approved_only_batch_template", *_batch_build("approved-only", image_tag=IMAGE_TAG, allow_unapproved_models=False)
)


@pytest.fixture(scope="session")
def approved_only_batch_template(shared_builds) -> dict:
    """As staging and prod: only Approved model package versions score a batch."""
    return _read(shared_builds, _APPROVED_ONLY_BATCH).template("dev", "batch-inference")
