"""`mlops model list|approve|reject`: the reviewer's view of the environment's model package group."""

from __future__ import annotations

import json

import boto3
import pytest

from config.naming import model_package_group_name
from mlops_cli.errors import FAILED
from tests.behaviour.deployer_world import register_model


@pytest.fixture
def registry(aws, dev):
    """The dev group with version 1 Approved, 2 Rejected and 3 waiting for review."""
    sagemaker = boto3.client("sagemaker", region_name=dev.region)
    group = model_package_group_name(dev.prefix)
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    for status in ("Approved", "Rejected", "PendingManualApproval"):
        register_model(sagemaker, group, status)
    return sagemaker


def _status(sagemaker, dev, version: int) -> dict:
    (package,) = [
        p for p in sagemaker.list_model_packages(ModelPackageGroupName=model_package_group_name(dev.prefix))["ModelPackageSummaryList"]
        if p["ModelPackageVersion"] == version
    ]
    return sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])


def test_list_shows_every_version_newest_first(mlops, registry, dev):
    result = mlops("model", "list", "--env", "dev", "--model", "tabular")

    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "Approval" in line or "Approved" in line or "Rejected" in line]
    assert [line.split()[1] for line in lines] == ["3", "2", "1"]
    assert model_package_group_name(dev.prefix) in result.stdout


def test_list_as_json_gives_versions_and_statuses(mlops, registry):
    result = mlops("model", "list", "--env", "dev", "--model", "tabular", "--json")

    versions = json.loads(result.stdout)["versions"]
    assert [(v["version"], v["status"], v["serving"]) for v in versions] == [
        (3, "PendingManualApproval", None),
        (2, "Rejected", None),
        (1, "Approved", None),
    ]


def test_list_of_an_undeployed_environment_says_so(mlops, aws, dev):
    result = mlops("model", "list", "--env", "dev", "--model", "tabular")

    assert result.exit_code == FAILED
    assert f"model package group {model_package_group_name(dev.prefix)} does not exist" in result.stderr
    assert "is environment dev deployed?" in result.stderr


def test_approve_sets_approved_with_the_note(mlops, registry, dev):
    result = mlops("model", "approve", "3", "--env", "dev", "--model", "tabular", "--note", "AUC 0.93 on the March data")

    assert result.exit_code == 0, result.stderr
    package = _status(registry, dev, 3)
    assert (package["ModelApprovalStatus"], package["ApprovalDescription"]) == ("Approved", "AUC 0.93 on the March data")
    assert "Version 3" in result.stdout and "PendingManualApproval -> Approved" in result.stdout


def test_approve_without_a_note_records_who_approved(mlops, registry, dev):
    mlops("model", "approve", "3", "--env", "dev", "--model", "tabular")

    description = _status(registry, dev, 3)["ApprovalDescription"]
    assert description.startswith("Approved with mlops by arn:") and dev.account in description


def test_reject_sets_rejected(mlops, registry, dev):
    result = mlops("model", "reject", "3", "--env", "dev", "--model", "tabular", "--note", "leaks the label")

    assert result.exit_code == 0, result.stderr
    package = _status(registry, dev, 3)
    assert (package["ModelApprovalStatus"], package["ApprovalDescription"]) == ("Rejected", "leaks the label")


def test_an_unknown_version_is_named_with_the_versions_there_are(mlops, registry, dev):
    result = mlops("model", "approve", "7", "--env", "dev", "--model", "tabular")

    assert result.exit_code == FAILED
    assert f"{model_package_group_name(dev.prefix)} has no version 7; its versions: 1, 2, 3" in result.stderr


# -- several models ------------------------------------------------------------------------------------


def test_without_model_an_environment_of_several_models_lists_them(mlops, registry):
    result = mlops("model", "list", "--env", "dev")

    assert result.exit_code != 0
    assert "environment dev has several models; name one with --model: tabular, churn" in result.stderr


def test_an_unknown_model_is_refused_with_the_models_there_are(mlops, registry):
    result = mlops("model", "approve", "3", "--env", "dev", "--model", "fraud")

    assert result.exit_code != 0
    assert "environment dev has no model 'fraud'; its models: tabular, churn" in result.stderr


def test_each_model_reviews_the_versions_of_its_own_group(mlops, registry, dev):
    churn = model_package_group_name(dev.model_units()["churn"].stem)
    registry.create_model_package_group(ModelPackageGroupName=churn)
    register_model(registry, churn, "PendingManualApproval")

    result = mlops("model", "approve", "1", "--env", "dev", "--model", "churn")

    assert result.exit_code == 0, result.stderr
    assert f"Version 1 of {churn}: PendingManualApproval -> Approved" in result.stdout
    assert _status(registry, dev, 3)["ModelApprovalStatus"] == "PendingManualApproval", "the tabular model's version 3 still awaits review"
