"""Config validation: bad input fails synth with the file, the key and what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config import ENVIRONMENTS, ConfigError, load_environment
from tests.synth import CONFIG_DIR


def _write_variant(tmp_path: Path, change) -> Path:
    config = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
    change(config)
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_shipped_config_is_valid(environment):
    config = load_environment(CONFIG_DIR, environment)

    assert config.name == environment
    assert config.prefix == f"{config.project}-{environment}"


def test_wrong_type_names_file_key_and_what_is_accepted(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["studio"].update(idle_timeout_minutes="an hour"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    message = str(error.value)
    assert "dev.yaml" in message
    assert "studio.idle_timeout_minutes" in message
    assert "valid integer" in message
    assert "'an hour'" in message


def test_unknown_key_lists_the_accepted_keys(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["storage"].update(retension="retain"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    message = str(error.value)
    assert "storage.retension: unknown key" in message
    assert "removal" in message and "noncurrent_version_expiration_days" in message


def test_value_outside_the_allowed_set_lists_the_allowed_values(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["network"].update(studio_network_mode="Private"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "network.studio_network_mode: Input should be 'PublicInternetOnly' or 'VpcOnly'" in str(error.value)


def test_missing_file_is_an_error_not_a_fallback(tmp_path):
    (tmp_path / "dev.yaml").write_text((CONFIG_DIR / "dev.yaml").read_text())

    with pytest.raises(ConfigError) as error:
        load_environment(tmp_path, "prod")

    message = str(error.value)
    assert "prod.yaml: no such config file" in message
    assert "found: dev" in message
    assert "no fallback" in message


@pytest.mark.parametrize("account", ["12345", "1234567890123", "abcdefghijkl"])
def test_bad_account_id_explains_the_expected_format(tmp_path, account):
    config_dir = _write_variant(tmp_path, lambda c: c.update(account=account))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "account: must be a 12-digit AWS account ID" in str(error.value)


def test_unquoted_account_id_is_rejected_rather_than_coerced(tmp_path):
    # YAML reads 012345678901 as an integer and drops the leading zero; a quoted string is required.
    config_dir = _write_variant(tmp_path, lambda c: c.update(account=123456789012))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "account: Input should be a valid string" in str(error.value)


def test_missing_required_key_is_named(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c.pop("region"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "region: required key is missing" in str(error.value)


def test_vpc_and_existing_vpc_are_mutually_exclusive(tmp_path):
    existing = {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0"], "availability_zones": ["eu-west-1a"]}
    config_dir = _write_variant(tmp_path, lambda c: c["network"].update(existing_vpc=existing))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "network: set exactly one of 'vpc' (create one) or 'existing_vpc'" in str(error.value)


def test_duplicate_studio_users_are_rejected(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["studio"].update(users=[{"name": "ana"}, {"name": "ana"}]))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "studio: user names must be unique; repeated: ana" in str(error.value)


def test_invalid_yaml_names_the_file(tmp_path):
    (tmp_path / "dev.yaml").write_text("account: [unclosed\n")

    with pytest.raises(ConfigError) as error:
        load_environment(tmp_path, "dev")

    assert "dev.yaml: not valid YAML" in str(error.value)


def test_vpc_block_too_small_for_the_subnets_is_rejected(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["network"]["vpc"].update(cidr="10.10.0.0/24"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "network.vpc.cidr: must be a /16 to /18 IPv4 block" in str(error.value)


def test_alarm_polls_slower_than_fifteen_seconds_are_rejected(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["deployment"].update(alarm_poll_seconds=30))

    with pytest.raises(ConfigError, match=r"deployment\.alarm_poll_seconds: Input should be less than or equal to 14"):
        load_environment(config_dir, "dev")


def test_guardrails_bake_longer_than_sagemaker_allows_is_rejected(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["deployment"].update(strategy="guardrails", alarm_poll_seconds=10, bake_checks=400))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "dev.yaml" in str(error.value) and "deployment:" in str(error.value)
    assert "4000 s" in str(error.value) and "3600 s" in str(error.value)


def test_reviewer_role_names_must_be_iam_role_names(tmp_path):
    path = _write_variant(tmp_path, lambda c: c.setdefault("model_build", {}).update(reviewer_role_names=["ml lead"]))

    with pytest.raises(ConfigError, match=r"model_build\.reviewer_role_names\.0"):
        load_environment(path, "dev")
