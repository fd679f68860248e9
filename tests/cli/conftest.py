"""The `mlops` command run through Click's test runner against moto, in this process.

The account and region come from the config the command reads: moto answers STS with the account in
MOTO_ACCOUNT_ID, so a test chooses whose credentials the command holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from click.testing import CliRunner, Result
from moto import mock_aws

from config import EnvironmentConfig, load_environment
from config.naming import pipeline_name
from functions.pipeline_upsert.handler import substitute
from mlops_cli.main import cli
from pipeline_code import render
from tests.behaviour.pipeline_shim import pipeline_shim
from tests.behaviour import sfn_harness
# The synthesized deployer and batch workflow, shared with the behaviour tests (once per session).
from tests.behaviour.conftest import (  # noqa: F401
    ON_INSTANCES,
    approval_synthesized,
    approval_template,
    batch_synthesized,
    batch_template,
    serverless_synthesized,
    serverless_template,
    variants_synthesized,
    variants_template,
)
from tests.behaviour.deployer_world import REGION
from tests.synth import TEST_CONFIG_DIR

Mlops = Callable[..., Result]


@pytest.fixture
def config_dir() -> Path:
    return TEST_CONFIG_DIR


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


# Pipelines as the stacks deploy them: the synthesized rendering of pipeline_code/training with its deploy-time
# values filled in, as the upsert does, and its step scripts where the stack's assets put them.

FOLDER = "training"
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def as_deployed(synthesized, environment: str) -> dict:
    """The definition as the environment's stack deploys it, deploy-time values filled in."""
    rendered = json.dumps(synthesized.pipeline_definition(environment, FOLDER))
    return json.loads(substitute(rendered, {name: f"deployed-{name.lower()}" for name in PLACEHOLDER.findall(rendered)}))


@pytest.fixture
def deployed_definition(synthesized) -> dict:
    return as_deployed(synthesized, "dev")


@pytest.fixture
def deploy(aws, synthesized, tmp_path):
    """Deploys a definition as the dev pipeline (or `environment`'s), with the step scripts (or `scripts`
    instead) uploaded where the stack's assets put them."""
    with pipeline_shim():

        def deploy(definition: dict, scripts: dict[str, bytes] | None = None, environment: str = "dev") -> None:
            config = synthesized.config(environment)
            script_uris = synthesized.pipeline_settings(environment, FOLDER).script_uris
            sagemaker = boto3.client("sagemaker", region_name=config.region)
            s3 = boto3.client("s3", region_name=config.region)
            for name, uri in script_uris.items():
                bucket, key = uri.removeprefix("s3://").split("/", 1)
                if bucket not in {existing["Name"] for existing in s3.list_buckets()["Buckets"]}:
                    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": config.region})
                if name == render.SOURCE_ARCHIVE:
                    body = render.source_archive(FOLDER, tmp_path).read_bytes()
                else:
                    body = (scripts or {}).get(name) or (render.PACKAGE_DIR / FOLDER / name).read_bytes()
                s3.put_object(Bucket=bucket, Key=key, Body=body)
            sagemaker.create_pipeline(
                PipelineName=pipeline_name(config.prefix, FOLDER), PipelineDefinition=json.dumps(definition), RoleArn=f"arn:aws:iam::{config.account}:role/x"
            )

        yield deploy


# The behaviour tests' worlds (the synthesized deployer and batch workflow in moto) live in moto's default
# account and one region; the command is pointed at them through a copy of the test config.


@pytest.fixture
def world_config(tmp_path, config_dir) -> Path:
    """The test config, in the account and region the behaviour tests' worlds run in."""
    for path in config_dir.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    dev = yaml.safe_load((config_dir / "dev.yaml").read_text())
    dev["account"] = sfn_harness.PSEUDO_PARAMETERS["AWS::AccountId"]
    # The worlds' deployers serve dev on instances.
    dev["deployment"].update(ON_INSTANCES)
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
