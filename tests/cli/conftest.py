"""The `mlops` command run through Click's test runner against moto, in this process.

The account and region come from the config the command reads: moto answers STS with the account in
MOTO_ACCOUNT_ID, so a test chooses whose credentials the command holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from moto import mock_aws

from config import EnvironmentConfig, load_environment
from mlops_cli.main import cli
from tests.behaviour import sfn_harness
from tests.behaviour.deployer_world import REGION
from tests.synth import CONFIG_DIR

Mlops = Callable[..., Result]


@pytest.fixture
def config_dir() -> Path:
    return CONFIG_DIR


@pytest.fixture
def dev(config_dir) -> EnvironmentConfig:
    return load_environment(config_dir, "dev")


@pytest.fixture
def credentials(monkeypatch, dev) -> None:
    """Credentials for the dev account, no region of their own (the command uses the environment's)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    # Credentials and config files of whoever runs the tests play no part.
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("MOTO_ACCOUNT_ID", dev.account)
    # Wide enough that Rich never wraps a table cell the tests look for.
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def aws(credentials) -> Iterator[None]:
    with mock_aws():
        yield


def run_mlops(config_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config-dir", str(config_dir), *args], catch_exceptions=False)


@pytest.fixture
def mlops(config_dir) -> Mlops:
    """Run `mlops ARGS...` on the test config; the result has exit_code, stdout and stderr."""
    return lambda *args: run_mlops(config_dir, *args)


# The behaviour tests' worlds (the synthesized deployer and batch workflow in moto) live in moto's default
# account and one region; the command is pointed at them through a copy of the test config.


@pytest.fixture
def world_config(tmp_path, config_dir) -> Path:
    """The test config, in the account and region the behaviour tests' worlds run in."""
    for path in config_dir.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    dev = yaml.safe_load((config_dir / "dev.yaml").read_text())
    dev["account"] = sfn_harness.PSEUDO_PARAMETERS["AWS::AccountId"]
    if dev["region"] != REGION:
        dev["network"]["vpc"]["availability_zones"] = [f"{REGION}{zone[-1]}" for zone in dev["network"]["vpc"]["availability_zones"]]
        dev["region"] = REGION
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump(dev))
    return tmp_path


@pytest.fixture
def world_mlops(world_config, credentials, monkeypatch) -> Mlops:
    """Run `mlops ARGS...` with credentials of the worlds' account, on the config naming their resources."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", sfn_harness.PSEUDO_PARAMETERS["AWS::AccountId"])
    return lambda *args: run_mlops(world_config, *args)
