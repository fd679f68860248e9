"""The `mlops` command run through Click's test runner against moto, in this process.

The account and region come from the config the command reads: moto answers STS with the account in
MOTO_ACCOUNT_ID, so a test chooses whose credentials the command holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from moto import mock_aws

from config import EnvironmentConfig, load_environment
from mlops_cli.main import cli
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
