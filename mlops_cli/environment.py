"""An environment as the command sees it: its config and AWS clients whose credentials were checked to belong
to the environment's account and region before any other call."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from config import ENVIRONMENTS, ConfigError, EnvironmentConfig, load_environment
from config.settings import ModelUnit
from mlops_cli.errors import MlopsError

# The repository's config/, next to this package: where `pip install -e .` and `make setup` leave it.
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


@dataclass(frozen=True)
class Environment:
    config: EnvironmentConfig
    session: boto3.Session
    # Who the credentials are: STS's caller ARN, and the partition of the account.
    caller_arn: str
    partition: str
    # The model a command is about (`--model`); None: the environment's only model.
    model_name: str | None = None

    @property
    def model(self) -> ModelUnit:
        """The model the command is about: the one `--model` names, or the environment's only one."""
        return select_model(self.config, self.model_name)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def prefix(self) -> str:
        return self.config.prefix

    @property
    def account(self) -> str:
        return self.config.account

    @property
    def region(self) -> str:
        return self.config.region

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


def select_model(config: EnvironmentConfig, name: str | None) -> ModelUnit:
    """Model `name` of `config`, or its only model when `name` is None; an error listing the models otherwise."""
    models = config.model_units()
    if name is None:
        if len(models) == 1:
            return next(iter(models.values()))
        raise MlopsError(f"environment {config.name} has several models; name one with --model: {', '.join(models)}")
    if name not in models:
        raise MlopsError(f"environment {config.name} has no model '{name}'; its models: {', '.join(models)}")
    return models[name]


def load_config(name: str, config_dir: Path) -> EnvironmentConfig:
    if name not in ENVIRONMENTS:
        raise MlopsError(f"unknown environment '{name}'; the environments are: {', '.join(ENVIRONMENTS)}")
    try:
        return load_environment(config_dir, name)
    except ConfigError as error:
        raise MlopsError(f"invalid configuration: {error}") from None


def connect(name: str, config_dir: Path) -> Environment:
    """The environment `name`, once the credentials at hand are shown to be for its account and region."""
    config = load_config(name, config_dir)
    # botocore reads AWS_DEFAULT_REGION and the profile; Studio and Lambda also set AWS_REGION.
    configured_region = os.environ.get("AWS_REGION") or boto3.Session().region_name
    if configured_region and configured_region != config.region:
        raise MlopsError(
            f"your AWS region is {configured_region} (AWS_REGION, AWS_DEFAULT_REGION or the profile's region), "
            f"but environment {name} is in {config.region}: set AWS_REGION={config.region} or unset it"
        )
    session = boto3.Session(region_name=config.region)
    try:
        identity = session.client("sts").get_caller_identity()
    except (NoCredentialsError, PartialCredentialsError):
        raise MlopsError(
            "no AWS credentials found: sign in first (for example `aws sso login --profile <profile>` and "
            f"AWS_PROFILE=<profile>) with access to account {config.account}"
        ) from None
    except ClientError as error:
        raise MlopsError(f"AWS refused the credentials: {error.response['Error'].get('Message', error)}") from None
    except BotoCoreError as error:
        raise MlopsError(f"could not check the credentials with AWS STS: {error}") from None
    if identity["Account"] != config.account:
        raise MlopsError(
            f"these credentials ({identity['Arn']}) are for account {identity['Account']}, but environment {name} "
            f"is account {config.account}: use credentials for {config.account}"
        )
    partition = identity["Arn"].split(":")[1]
    return Environment(config=config, session=session, caller_arn=identity["Arn"], partition=partition)
