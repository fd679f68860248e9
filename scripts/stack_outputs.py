"""`make outputs ENV=<env>`: the outputs people use (bucket names, upload URIs, endpoint, state machines,
dashboard, Studio) of every deployed stack of one environment, read from CloudFormation."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import ConfigError, EnvironmentConfig, load_environment  # noqa: E402

# CDK's cross-stack references are outputs too; they carry generated names and mean nothing to people.
_CROSS_STACK_PREFIXES = ("ExportsOutput", "PublishOutput")


@dataclass(frozen=True)
class StackOutput:
    stack: str
    key: str
    value: str
    description: str


class OutputsError(RuntimeError):
    """Why the outputs cannot be read, in words a person can act on."""


def environment_outputs(config: EnvironmentConfig, session: boto3.Session) -> list[StackOutput]:
    """The named outputs of the environment's stacks: those tagged with its project and environment (the
    Stage tags every stack it deploys), in the environment's region."""
    cloudformation = session.client("cloudformation", region_name=config.region)
    try:
        account = session.client("sts", region_name=config.region).get_caller_identity()["Account"]
        if account != config.account:
            raise OutputsError(f"these credentials are for account {account}, but {config.name} is account {config.account} (config/{config.name}.yaml)")
        stacks = [stack for page in cloudformation.get_paginator("describe_stacks").paginate() for stack in page["Stacks"]]
    except NoCredentialsError:
        raise OutputsError("no AWS credentials found: sign in (e.g. `aws sso login`) or set AWS_PROFILE") from None
    except (ClientError, BotoCoreError) as error:
        raise OutputsError(f"CloudFormation could not be read: {error}") from None
    ours = [
        stack for stack in stacks
        if {"project": config.project, "environment": config.name}.items() <= {tag["Key"]: tag["Value"] for tag in stack.get("Tags", [])}.items()
    ]
    if not ours:
        raise OutputsError(f"no stacks of {config.prefix} in {config.region}: deploy it first (make deploy ENV={config.name})")
    return [
        StackOutput(stack["StackName"], output["OutputKey"], output["OutputValue"], output.get("Description", ""))
        for stack in sorted(ours, key=lambda stack: stack["StackName"])
        for output in stack.get("Outputs", [])
        if not output["OutputKey"].startswith(_CROSS_STACK_PREFIXES)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("environment")
    arguments = parser.parse_args(argv)
    try:
        config = load_environment(ROOT / "config", arguments.environment)
        outputs = environment_outputs(config, boto3.Session())
    except (ConfigError, OutputsError) as error:
        print(error, file=sys.stderr)
        return 1
    width = max(len(output.key) for output in outputs)
    for output in outputs:
        print(f"{output.key:<{width}}  {output.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
