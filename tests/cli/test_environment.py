"""Before any call, the command checks that the credentials are for the environment's account and region,
and says plainly what is wrong when they are not."""

from __future__ import annotations

import subprocess
import sys

from mlops_cli.errors import FAILED
from tests.synth import ROOT


def test_importing_the_command_loads_no_cdk():
    # A fresh interpreter: this test process has loaded aws-cdk-lib for the synth tests.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, mlops_cli.main; print(' '.join(m for m in sys.modules if m.split('.')[0] in ('aws_cdk', 'jsii', 'constructs', 'cdk_nag')))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    assert loaded.stdout.strip() == ""


def test_unknown_environment_is_refused_before_any_call(mlops, credentials):
    result = mlops("model", "list", "--env", "qa")

    assert result.exit_code == FAILED
    assert "unknown environment 'qa'; the environments are: dev, staging, prod" in result.stderr


def test_missing_credentials_are_named(mlops, credentials, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    # Nor may botocore find any on an instance metadata service.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    result = mlops("model", "list", "--env", "dev", "--model", "tabular")

    assert result.exit_code == FAILED
    assert "no AWS credentials found" in result.stderr


def test_credentials_of_another_account_are_refused(mlops, aws, dev, monkeypatch):
    other = str((int(dev.account) + 1) % 10**12).zfill(12)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", other)

    result = mlops("model", "list", "--env", "dev", "--model", "tabular")

    assert result.exit_code == FAILED
    assert f"are for account {other}, but environment dev is account {dev.account}" in result.stderr


def test_a_region_other_than_the_environments_is_refused(mlops, aws, dev, monkeypatch):
    other = "us-east-1" if dev.region != "us-east-1" else "us-west-2"
    monkeypatch.setenv("AWS_REGION", other)

    result = mlops("model", "list", "--env", "dev", "--model", "tabular")

    assert result.exit_code == FAILED
    assert f"your AWS region is {other}" in result.stderr
    assert f"environment dev is in {dev.region}" in result.stderr


def test_the_environments_own_region_is_accepted(mlops, aws, dev, monkeypatch):
    monkeypatch.setenv("AWS_REGION", dev.region)

    result = mlops("model", "list", "--env", "dev", "--model", "tabular")

    # Past the credentials check: the next complaint is about the undeployed environment.
    assert "model package group" in result.stderr


def test_an_invalid_config_is_reported_with_its_file(aws, tmp_path, config_dir):
    from tests.cli.conftest import run_mlops

    (tmp_path / "dev.yaml").write_text((config_dir / "dev.yaml").read_text().replace("region:", "region: nowhere-1\nx_region:", 1))

    result = run_mlops(tmp_path, "model", "list", "--env", "dev", "--model", "tabular")

    assert result.exit_code == FAILED
    assert "invalid configuration" in result.stderr and "dev.yaml" in result.stderr


def test_the_mlops_script_is_the_click_command():
    import importlib
    import tomllib

    import click

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["mlops"]
    module, attribute = target.split(":")
    assert isinstance(getattr(importlib.import_module(module), attribute), click.Group)


def test_a_call_aws_refuses_is_one_plain_sentence(mlops, aws, monkeypatch):
    from botocore.exceptions import ClientError

    from mlops_cli import registry

    def refused(env):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform sagemaker:ListModelPackages"}}, "ListModelPackages")

    monkeypatch.setattr(registry, "versions", refused)

    result = mlops("model", "list", "--env", "dev", "--model", "tabular")

    assert result.exit_code == FAILED
    assert result.stderr.strip() == "Error: AWS refused ListModelPackages: AccessDeniedException: not authorized to perform sagemaker:ListModelPackages"


def test_text_from_aws_is_printed_as_it_is(mlops, aws, dev):
    import boto3

    from config.naming import model_package_group_name
    from tests.behaviour.deployer_world import register_model

    sagemaker = boto3.client("sagemaker", region_name=dev.region)
    sagemaker.create_model_package_group(ModelPackageGroupName=model_package_group_name(dev.prefix))
    register_model(sagemaker, model_package_group_name(dev.prefix), "Approved", ModelPackageDescription="[bold]x[/bold] :smile: [/oops]")

    result = mlops("model", "list", "--env", "dev", "--model", "tabular")

    assert result.exit_code == 0, result.stderr
    assert "[bold]x[/bold] :smile: [/oops]" in result.stdout
