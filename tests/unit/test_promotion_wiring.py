"""Promotion between environments as the environments' stacks wire it from config: the source grants the
target's promotion role read access, the target has the function that copies, and with auto_promote the
source's deployer forwards its releases to the target's promotions bus."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from config.naming import deployer_name, model_package_group_name, promotion_bus_name, promotion_dead_letter_alarm_name, promotion_role_name
from tests.synth import TEST_CONFIG_DIR, Synthesized, synthesize
from tests.templates import cfn_text


def _promoting(synthesized: Synthesized) -> list[tuple[str, str, str]]:
    """(target, source, model) for every model the test config promotes."""
    return [
        (environment, unit.promote_from, unit.name)
        for environment in ("dev", "staging", "prod")
        for unit in synthesized.config(environment).model_units().values()
        if unit.source != "train"
    ]


def _resources(template: dict, resource_type: str) -> dict[str, dict]:
    return {logical_id: r for logical_id, r in template["Resources"].items() if r["Type"] == resource_type}


def test_the_test_config_promotes_staging_from_dev_and_prod_from_staging(synthesized: Synthesized):
    assert [(target, source) for target, source, _ in _promoting(synthesized)] == [("staging", "dev"), ("prod", "staging")]


@pytest.mark.parametrize("pair", [0, 1], ids=["dev-to-staging", "staging-to-prod"])
def test_the_source_group_lets_only_the_targets_promotion_role_read_its_versions(synthesized: Synthesized, pair):
    target, source, model = _promoting(synthesized)[pair]
    stem = synthesized.config(source).model_units()[model].stem
    (group,) = [
        r for r in _resources(synthesized.template(source, "model-build"), "AWS::SageMaker::ModelPackageGroup").values()
        if r["Properties"]["ModelPackageGroupName"] == model_package_group_name(stem)
    ]
    (statement,) = group["Properties"]["ModelPackageGroupPolicy"]["Statement"]
    role = f"arn:aws:iam::{synthesized.config(target).account}:role/{promotion_role_name(synthesized.config(target).prefix)}"

    assert statement["Action"] == "sagemaker:DescribeModelPackage"
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": [role]}}
    assert synthesized.config(target).account in json.dumps(statement["Principal"])


@pytest.mark.parametrize("pair", [0, 1], ids=["dev-to-staging", "staging-to-prod"])
def test_the_source_bucket_and_key_let_the_targets_promotion_role_read_model_artifacts(synthesized: Synthesized, pair):
    target, source, _ = _promoting(synthesized)[pair]
    storage = synthesized.template(source, "storage")
    role = f"arn:aws:iam::{synthesized.config(target).account}:role/{promotion_role_name(synthesized.config(target).prefix)}"
    bucket_statements = [s for p in _resources(storage, "AWS::S3::BucketPolicy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    key_statements = [s for k in _resources(storage, "AWS::KMS::Key").values() for s in k["Properties"]["KeyPolicy"]["Statement"]]

    (reads,) = [s for s in bucket_statements if s.get("Sid") == "PromotionReadsModelArtifacts"]
    (decrypts,) = [s for s in key_statements if s.get("Sid") == "PromotionDecryptsModelArtifacts"]
    assert reads["Action"] == "s3:GetObject" and reads["Condition"] == {"ArnEquals": {"aws:PrincipalArn": [role]}}
    assert decrypts["Action"] == "kms:Decrypt" and decrypts["Condition"]["ArnEquals"] == {"aws:PrincipalArn": [role]}


@pytest.mark.parametrize("pair", [0, 1], ids=["dev-to-staging", "staging-to-prod"])
def test_the_target_has_a_promotion_function_that_reads_the_sources_group(synthesized: Synthesized, pair):
    target, source, model = _promoting(synthesized)[pair]
    functions = _resources(synthesized.template(target, "storage"), "AWS::Lambda::Function").values()
    (function,) = [f for f in functions if "MODELS" in f["Properties"].get("Environment", {}).get("Variables", {})]
    models = json.loads(cfn_text(function["Properties"]["Environment"]["Variables"]["MODELS"]))

    assert models[model]["sourceEnvironment"] == source
    assert models[model]["sourceAccount"] == synthesized.config(source).account
    assert models[model]["sourceGroup"] == model_package_group_name(synthesized.config(source).model_units()[model].stem)
    assert models[model]["targetGroup"] == model_package_group_name(synthesized.config(target).model_units()[model].stem)


def test_an_environment_nobody_promotes_from_grants_nothing(synthesized: Synthesized):
    storage = synthesized.template("prod", "storage")
    statements = [s for p in _resources(storage, "AWS::S3::BucketPolicy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]]

    assert [s for s in statements if s.get("Sid") == "PromotionReadsModelArtifacts"] == []


@pytest.fixture(scope="module")
def automatic(tmp_path_factory) -> Synthesized:
    """staging and prod of the test config, prod promoting automatically from staging."""
    config_dir = tmp_path_factory.mktemp("automatic") / "config"
    shutil.copytree(TEST_CONFIG_DIR, config_dir)
    prod = yaml.safe_load((config_dir / "prod.yaml").read_text())
    (model,) = [name for name, settings in prod["models"].items() if settings.get("promote_from") == "staging"]
    prod["models"][model]["auto_promote"] = True
    (config_dir / "prod.yaml").write_text(yaml.safe_dump(prod))
    return synthesize(config_dir.parent / "cdk.out", config_dir, environments=("staging", "prod"), reuse=True)


def test_with_auto_promote_the_sources_deployer_forwards_its_releases_to_the_targets_bus(automatic: Synthesized):
    prod, staging = automatic.config("prod"), automatic.config("staging")
    (model,) = [unit for unit in prod.model_units().values() if unit.auto_promote]
    rules = _resources(automatic.template("staging", "deployment"), "AWS::Events::Rule").values()
    forwarding = [r for r in rules if "promotions" in json.dumps(r["Properties"].get("Targets", []))]

    (rule,) = forwarding
    assert rule["Properties"]["EventPattern"]["source"] == [deployer_name(staging.model_units()[model.name].stem)]
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [f"arn:aws:events:{prod.region}:{prod.account}:event-bus/{promotion_bus_name(prod.prefix)}"]
    # EventBridge needs a role to put events on a bus of another account or Region (and recommends one always).
    assert all("RoleArn" in target for target in rule["Properties"]["Targets"])


def test_with_auto_promote_the_targets_bus_takes_the_sources_release_announcements_only(automatic: Synthesized):
    prod, staging = automatic.config("prod"), automatic.config("staging")
    (bus,) = [
        r for r in _resources(automatic.template("prod", "storage"), "AWS::Events::EventBus").values() if r["Properties"]["Name"] == promotion_bus_name(prod.prefix)
    ]
    (statement,) = bus["Properties"]["Policy"]["Statement"]

    assert staging.account in json.dumps(statement["Principal"])
    assert statement["Condition"]["ForAllValues:StringEquals"]["events:source"] == deployer_name(staging.model_units()["tabular"].stem)


def test_with_auto_promote_the_promotion_dead_letters_alarm_reaches_people(automatic: Synthesized):
    prod = automatic.config("prod")
    operations = json.dumps(automatic.template("prod", "operations"))

    assert promotion_dead_letter_alarm_name(prod.prefix) in operations
