"""Config of the environment's models: each refusal names the file, the key and what is accepted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from config import ENVIRONMENTS, ConfigError, load_environment, load_environments
from config.naming import deployer_name, endpoint_name, model_package_group_name
from config.settings import DEFAULT_MODEL, MAX_MODELS
from pipeline_code import render
from tests.synth import TEST_CONFIG_DIR, environment_config


def _configs(tmp_path: Path, change, environment: str = "dev") -> Path:
    """A copy of the tests' config directory whose `environment`.yaml `change` edits in place."""
    config_dir = tmp_path / "config"
    shutil.copytree(TEST_CONFIG_DIR, config_dir)
    path = config_dir / f"{environment}.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config))
    return config_dir


def _refusal(config_dir: Path, environment: str = "dev") -> str:
    with pytest.raises(ConfigError) as error:
        load_environments(config_dir)
    message = str(error.value)
    assert f"{environment}.yaml" in message
    return message


def _models(config: dict) -> dict:
    return config["models"]


def test_without_models_the_environment_has_one_model_with_the_environments_names_and_every_pipeline(tmp_path):
    config = load_environment(_configs(tmp_path, lambda c: c.pop("models")), "dev")

    [model] = config.model_units().values()

    assert model.name == DEFAULT_MODEL
    assert model.environment_names and model.stem == config.prefix
    assert model.pipelines == tuple(render.pipeline_names())
    assert model.deployment == config.deployment


def test_the_model_with_environment_names_keeps_todays_names_and_the_others_are_named_after_themselves():
    config = environment_config("dev")
    units = config.model_units()

    assert endpoint_name(units["tabular"].stem) == f"{config.prefix}-endpoint"
    assert model_package_group_name(units["tabular"].stem) == f"{config.prefix}-models"
    assert deployer_name(units["churn"].stem) == f"{config.prefix}-churn-canary-deployer"
    assert list(units)[0] == "tabular", "the model keeping the environment's names comes first"


def test_a_models_deployment_overrides_are_merged_over_the_environments():
    config = environment_config("dev")

    churn = config.model_units()["churn"].deployment

    assert churn.alarms.model_latency_ms == 1000
    assert churn.alarms.errors_4xx == config.deployment.alarms.errors_4xx
    assert churn.serving == config.deployment.serving


def test_a_nested_deployment_override_keeps_the_sections_other_keys(tmp_path):
    config_dir = _configs(tmp_path, lambda c: _models(c)["churn"].update(deployment={"alarms": {"errors_4xx": 3}}))

    config = load_environment(config_dir, "dev")
    alarms = config.model_units()["churn"].deployment.alarms

    assert alarms.errors_4xx == 3
    assert alarms.model_latency_ms == config.deployment.alarms.model_latency_ms


def test_an_unknown_deployment_override_is_refused_by_name(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(deployment={"canary_wieght": 0.3})))

    assert "models.churn.deployment.canary_wieght: unknown key" in message
    assert "canary_weight" in message


def test_a_bad_deployment_override_value_is_refused_with_what_is_accepted(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(deployment={"strategy": "big-bang"})))

    assert "models.churn.deployment.strategy: Input should be 'variants' or 'guardrails'" in message


def test_a_pipeline_folder_no_model_claims_is_named(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c).pop("churn")))

    assert "models: no model claims pipeline_code/churn" in message


def test_a_pipeline_folder_claimed_twice_is_refused(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(pipelines=["churn", "training"])))

    assert "models: pipeline folder training is claimed by churn and tabular" in message


def test_a_pipeline_that_is_no_folder_is_refused(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(pipelines=["churn", "fraud"])))

    assert "models.churn.pipelines.1" in message and "no folder pipeline_code/fraud/" in message


def test_two_models_keeping_the_environments_names_are_refused(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(environment_names=True)))

    assert "environment_names is true for churn, tabular; at most one model" in message


@pytest.mark.parametrize("name", ["Churn", "churn_v2", "2churn", "churn-"])
def test_a_model_name_other_than_lower_case_letters_digits_and_hyphens_is_refused(tmp_path, name):
    message = _refusal(_configs(tmp_path, lambda c: _models(c).update({name: _models(c).pop("churn")})))

    assert f"models.{name}" in message
    assert "should match pattern" in message


def test_a_model_name_too_long_for_its_endpoint_configs_names_the_limit(tmp_path):
    name = "customer-lifetime-value"
    message = _refusal(_configs(tmp_path, lambda c: _models(c).update({name: _models(c).pop("churn")})))

    assert f"models.{name}: its endpoint configs ('mlops-dev-{name}-endpoint-v999999-12345678-canary') would have" in message
    assert "AWS allows at most 63; shorten the model name to at most 20 characters" in message


@pytest.mark.parametrize("name", ["model", "models-b", "endpoint", "serverless"])
def test_a_model_name_the_environment_named_models_permissions_would_cover_is_refused(tmp_path, name):
    message = _refusal(_configs(tmp_path, lambda c: _models(c).update({name: _models(c).pop("churn")})))

    assert f"models.{name}: a model name may not start with '{name.split('-')[0]}'" in message


def test_a_model_name_starting_with_another_models_name_and_a_hyphen_is_refused(tmp_path):
    def change(config):
        _models(config)["churn-b"] = {"pipelines": []}

    message = _refusal(_configs(tmp_path, change))

    assert "models.churn-b: the name begins with the name of model churn and a hyphen" in message


def test_more_models_than_the_cap_are_refused(tmp_path):
    def change(config):
        _models(config).update({f"extra{index}": {} for index in range(MAX_MODELS)})

    message = _refusal(_configs(tmp_path, change))

    assert f"models: Dictionary should have at most {MAX_MODELS} items" in message


def test_promote_from_with_source_train_is_refused(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(promote_from="staging")))

    assert "models.churn: promote_from is set, but source is 'train'" in message


def test_auto_promote_with_source_train_is_refused(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(auto_promote=True)))

    assert "models.churn: auto_promote needs source 'promote' or 'both'" in message


@pytest.mark.parametrize("source", ["promote", "both"])
def test_promotion_without_promote_from_is_refused(tmp_path, source):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(source=source)))

    assert f"models.churn: source '{source}' needs promote_from" in message


@pytest.mark.parametrize("source", ["train", "both"])
def test_a_model_trained_here_without_pipelines_is_refused(tmp_path, source):
    promotion = {"promote_from": "staging"} if source == "both" else {}
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(source=source, pipelines=[], **promotion), "prod"), "prod")

    assert f"models.churn: source is '{source}', so this environment trains the model, but it lists no pipelines" in message


def test_a_promote_only_model_keeps_its_folders_and_deploys_none_of_them(tmp_path):
    config_dir = _configs(tmp_path, lambda c: _models(c)["tabular"].update(source="promote", promote_from="staging"), "prod")

    prod = {config.name: config for config in load_environments(config_dir)}["prod"]

    tabular = prod.model_units()["tabular"]
    assert (tabular.pipelines, tabular.deployed_pipelines, tabular.trained_here) == (("training",), (), False)
    assert prod.deployed_pipelines() == ["churn"]
    assert prod.pipeline_model("training").name == "tabular"


def test_a_promote_only_model_without_its_folders_leaves_them_unclaimed(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["tabular"].update(source="promote", promote_from="staging", pipelines=[]), "prod"), "prod")

    assert "models: no model claims pipeline_code/training" in message


def test_a_trigger_for_a_pipeline_of_a_promote_only_model_is_refused(tmp_path):
    def promote_churn(config):
        _models(config)["churn"].update(source="promote", promote_from="staging")

    message = _refusal(_configs(tmp_path, promote_churn, "prod"), "prod")

    assert (
        "model_build.pipelines.churn.trigger: 'upload', but pipeline_code/churn is not deployed here: model churn is promoted from "
        "staging, not trained here. Remove model_build.pipelines.churn, or set models.churn.source to 'both'"
    ) in message


def test_an_unknown_folder_of_a_promote_only_model_is_refused_listing_the_folders(tmp_path):
    message = _refusal(
        _configs(tmp_path, lambda c: _models(c)["tabular"].update(source="promote", promote_from="staging", pipelines=["training", "fraud"]), "prod"), "prod"
    )

    assert "models.tabular.pipelines.1" in message and "no folder pipeline_code/fraud/" in message and "pipelines: " in message


def test_promote_from_an_unknown_environment_lists_the_environments(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(source="both", promote_from="qa")))

    assert "models.churn.promote_from: 'qa' is not an environment; the environments are dev, staging, prod" in message


def test_promote_from_the_environment_itself_is_refused(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(source="both", promote_from="dev")))

    assert "models.churn.promote_from: 'dev' is this environment" in message


def test_promote_from_an_environment_without_the_model_is_refused(tmp_path):
    config_dir = _configs(tmp_path, lambda c: _models(c)["churn"].update(source="both", promote_from="staging"), "prod")
    staging = yaml.safe_load((config_dir / "staging.yaml").read_text())
    staging["models"].pop("churn")
    staging["models"]["tabular"]["pipelines"] = ["training", "churn"]
    (config_dir / "staging.yaml").write_text(yaml.safe_dump(staging))

    message = _refusal(config_dir, "prod")

    assert "models.churn.promote_from: environment staging declares no model churn (its models: tabular)" in message


def test_promote_from_is_checked_against_the_source_even_when_one_environment_is_loaded(tmp_path):
    config_dir = _configs(tmp_path, lambda c: _models(c)["churn"].update(source="both", promote_from="staging"), "prod")
    staging = yaml.safe_load((config_dir / "staging.yaml").read_text())
    staging["models"] = {"tabular": {"pipelines": ["training", "churn"], "environment_names": True}}
    (config_dir / "staging.yaml").write_text(yaml.safe_dump(staging))

    with pytest.raises(ConfigError) as error:
        load_environments(config_dir, ("prod",))

    assert "environment staging declares no model churn" in str(error.value)


def test_a_model_promoted_from_an_environment_that_declares_it_is_accepted(tmp_path):
    config_dir = _configs(tmp_path, lambda c: _models(c)["churn"].update(source="both", promote_from="staging", auto_promote=True), "prod")

    prod = {config.name: config for config in load_environments(config_dir)}["prod"]

    churn = prod.model_units()["churn"]
    assert (churn.source, churn.promote_from, churn.auto_promote) == ("both", "staging", True)


def test_a_manual_approval_override_needs_someone_to_tell(tmp_path):
    message = _refusal(_configs(tmp_path, lambda c: _models(c)["churn"].update(deployment={"manual_approval": True})))

    assert "models.churn.deployment.manual_approval: true, but no notification target" in message


def test_a_batch_schedule_naming_an_unknown_model_is_refused_listing_the_models(tmp_path):
    schedule = {"expression": "rate(1 day)", "input_uri": "s3://bucket/in/", "output_uri": "s3://bucket/batch-inference/output/nightly/", "model": "fraud"}
    message = _refusal(_configs(tmp_path, lambda c: c["batch_inference"].update(schedule=schedule)))

    assert "batch_inference.schedule.model: 'fraud' is not a model of this environment; its models: tabular, churn" in message


def test_a_batch_schedule_naming_one_of_the_models_is_accepted(tmp_path):
    schedule = {"expression": "rate(1 day)", "input_uri": "s3://bucket/in/", "output_uri": "s3://bucket/batch-inference/output/nightly/", "model": "churn"}
    config = load_environment(_configs(tmp_path, lambda c: c["batch_inference"].update(schedule=schedule)), "dev")

    assert config.batch_inference.schedule.model == "churn"


def test_a_one_environment_synth_reads_each_config_file_once(monkeypatch):
    from config import settings
    from stacks.environment import environment_configs

    read = []
    load = settings.load_environment
    monkeypatch.setattr(settings, "load_environment", lambda config_dir, name: read.append(name) or load(config_dir, name))
    monkeypatch.setattr("stacks.environment.load_environment", settings.load_environment)

    configs, environments = environment_configs(TEST_CONFIG_DIR, ("prod",))

    assert [config.name for config in configs] == ["prod"]
    assert sorted(environments) == sorted(ENVIRONMENTS)
    assert sorted(read) == sorted(ENVIRONMENTS)
