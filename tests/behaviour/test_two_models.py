"""Two models in one environment: each model's deployer releases its own versions to its own endpoint,
watched by its own alarms, and leaves the other model alone.

dev's deployment template holds the tabular model (the environment's names) and the churn model; both
deployers run in the same moto world.
"""

from __future__ import annotations

import pytest

from config.naming import endpoint_name, model_name_prefix, model_package_group_name, variant_alarm_name
from tests.behaviour import sfn_harness
from tests.behaviour.deployer_world import DEV, ENDPOINT, MODEL, DeployerWorld, deployer_world, register_model

CHURN = DEV.model_units()["churn"].stem
CHURN_ENDPOINT = endpoint_name(CHURN)
CHURN_GROUP = model_package_group_name(CHURN)
CHURN_MODEL = model_name_prefix(CHURN)


class TwoModels:
    def __init__(self, world: DeployerWorld) -> None:
        self.world = world
        self.churn_deployer = world.other_deployer(CHURN)
        self._runs = 0

    def release_churn(self, package_arn: str) -> sfn_harness.Execution:
        self._runs += 1
        return sfn_harness.run(self.world.sfn, self.churn_deployer, {"ModelPackageArn": package_arn}, f"churn-{self._runs}")

    def churn_models(self) -> dict[str, str]:
        """Which model each variant of the churn endpoint serves."""
        config = self.world.sagemaker.describe_endpoint_config(EndpointConfigName=self.world.shim.endpoint_config_name(CHURN_ENDPOINT))
        return {variant["VariantName"]: variant["ModelName"] for variant in config["ProductionVariants"]}


@pytest.fixture
def models(variants_template) -> TwoModels:
    with deployer_world(variants_template) as world:
        yield TwoModels(world)


def test_an_approved_version_of_one_model_is_released_on_its_own_endpoint(models):
    execution = models.release_churn(register_model(models.world.sagemaker, CHURN_GROUP, "Approved"))

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert models.churn_models() == {"blue": f"{CHURN_MODEL}-v1"}
    assert not models.world.sagemaker.list_endpoints(NameContains=ENDPOINT)["Endpoints"], "the tabular model has no endpoint yet"


def test_a_release_of_one_model_leaves_the_other_models_endpoint_untouched(models):
    models.world.ensure_released()
    serving = models.world.live_models()
    config = models.world.shim.endpoint_config_name(ENDPOINT)

    assert models.release_churn(register_model(models.world.sagemaker, CHURN_GROUP, "Approved")).status == "SUCCEEDED"

    assert models.world.live_models() == serving == {"blue": f"{MODEL}-v1"}
    assert models.world.shim.endpoint_config_name(ENDPOINT) == config


def test_a_models_deployer_refuses_a_version_of_the_other_models_group(models):
    execution = models.release_churn(models.world.register())

    assert execution.status == "FAILED"
    assert CHURN_GROUP in execution.cause
    assert not models.world.sagemaker.list_endpoints(NameContains=CHURN_ENDPOINT)["Endpoints"]


def test_an_alarm_on_one_models_endpoint_rolls_back_that_model_only(models):
    models.world.ensure_released()
    assert models.release_churn(register_model(models.world.sagemaker, CHURN_GROUP, "Approved")).status == "SUCCEEDED"
    models.world.set_alarm(variant_alarm_name(CHURN, "green", "5xx"))

    churn = models.release_churn(register_model(models.world.sagemaker, CHURN_GROUP, "Approved"))
    tabular = models.world.deploy(models.world.register())

    assert churn.status == "FAILED" and churn.error == "CanaryRolledBack"
    assert models.churn_models() == {"blue": f"{CHURN_MODEL}-v1"}
    assert tabular.status == "SUCCEEDED", (tabular.error, tabular.cause)
    assert models.world.live_models() == {"green": f"{MODEL}-v2"}
