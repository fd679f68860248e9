"""An environment that takes a model from another instead of training it: prod, with tabular `source: promote`.

The model keeps its group, deployer, endpoint, alarms and promotion; none of its pipelines (pipeline_code/training)
is deployed, started or watched there."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from config.naming import deployer_name, model_package_group_name, pipeline_name, promotion_function_name
from tests.cfn_lint import known_findings, lint_each_once, templates_by_region
from tests.synth import TEST_CONFIG_DIR, Synthesized, synthesize
from tests.unit.test_validators import CFN_LINT_IGNORED

PROD_PREFIX = "mlops-prod"
TRAINING = pipeline_name(PROD_PREFIX, "training")
CHURN = pipeline_name(PROD_PREFIX, "churn")


@pytest.fixture(scope="module")
def promote_only(tmp_path_factory) -> Synthesized:
    """prod synthesized as `cdk synth` does (cdk-nag included), taking tabular from staging instead of training it."""
    workdir = tmp_path_factory.mktemp("promote-only")
    config_dir = workdir / "config"
    shutil.copytree(TEST_CONFIG_DIR, config_dir)
    prod = yaml.safe_load((config_dir / "prod.yaml").read_text())
    prod["models"]["tabular"]["source"] = "promote"
    (config_dir / "prod.yaml").write_text(yaml.safe_dump(prod))
    return synthesize(workdir / "cdk.out", config_dir=config_dir, environments=("prod",), reuse=True)


def _resources(synthesized: Synthesized, stack: str, resource_type: str) -> list[dict]:
    return [r for r in synthesized.template("prod", stack)["Resources"].values() if r["Type"] == resource_type]


def test_the_variant_takes_tabular_from_staging_only(promote_only: Synthesized):
    tabular = promote_only.config("prod").model_units()["tabular"]

    assert (tabular.source, tabular.promote_from, tabular.pipelines) == ("promote", "staging", ("training",))


def test_no_pipeline_of_the_promoted_model_is_deployed(promote_only: Synthesized):
    names = [r["Properties"]["PipelineName"] for r in _resources(promote_only, "model-build", "Custom::SageMakerPipeline")]

    assert names == [CHURN]


def test_nothing_starts_a_training_run_of_the_promoted_model(promote_only: Synthesized):
    # The one mention allowed: the other model's pipeline role is denied writing the training pipeline's outputs.
    resources = [r for r in promote_only.template("prod", "model-build")["Resources"].values() if r["Type"] not in ("AWS::IAM::Role", "AWS::IAM::Policy")]

    assert TRAINING not in json.dumps(resources)
    assert "training/" not in json.dumps([r["Properties"].get("EventPattern") for r in _resources(promote_only, "model-build", "AWS::Events::Rule")])


def test_the_pipeline_names_output_lists_only_the_deployed_pipelines(promote_only: Synthesized):
    outputs = promote_only.template("prod", "model-build")["Outputs"]

    assert outputs["PipelineNames"]["Value"] == CHURN
    assert "TrainingDataUri" not in outputs


def test_the_dashboard_and_the_notifications_watch_no_pipeline_of_the_promoted_model(promote_only: Synthesized):
    for stack in ("deployment", "operations"):
        assert TRAINING not in json.dumps(promote_only.template("prod", stack)), stack


def test_only_the_model_trained_here_has_a_pipeline_role(promote_only: Synthesized):
    roles = [
        logical_id
        for logical_id, r in promote_only.template("prod", "model-build")["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and "PipelineRole" in logical_id
    ]

    assert [role.startswith("ModelchurnPipelineRole") for role in roles] == [True]


def test_the_promoted_model_keeps_its_group_deployer_and_promotion(promote_only: Synthesized):
    groups = [r["Properties"]["ModelPackageGroupName"] for r in _resources(promote_only, "model-build", "AWS::SageMaker::ModelPackageGroup")]
    deployers = [r["Properties"]["StateMachineName"] for r in _resources(promote_only, "deployment", "AWS::StepFunctions::StateMachine")]
    functions = [r["Properties"].get("FunctionName") for r in _resources(promote_only, "storage", "AWS::Lambda::Function")]

    assert model_package_group_name(PROD_PREFIX) in groups
    assert deployer_name(PROD_PREFIX) in deployers
    assert promotion_function_name(PROD_PREFIX) in functions


def test_cfn_lint_finds_no_errors_or_warnings(promote_only: Synthesized):
    templates = templates_by_region(promote_only.outdir, {"prod": promote_only.config("prod").region})
    findings = [f for f in lint_each_once(templates, known_findings()) if f.rule not in CFN_LINT_IGNORED]

    assert findings == []
