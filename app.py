#!/usr/bin/env python3
"""The CDK app: one Stage per environment, each configured by config/<env>.yaml."""

import sys
from pathlib import Path

import aws_cdk as cdk

from config import ConfigError
from stacks.environment import add_environments
from stacks.model_build import PipelineFolderError

# aws-cdk-lib's built-in CloudFormation validation costs seconds per synth and repeats what cfn-lint checks
# on every template in `make test`; cdk-nag still runs on every synth.
app = cdk.App(builtin_cloud_formation_validation=False)
ROOT = Path(__file__).resolve().parent
try:
    # Rendered pipeline definitions are cached next to the sources, outside cdk.out (which synth rewrites).
    add_environments(app, ROOT / "config", ROOT / ".cache" / "pipelines")
except ConfigError as error:
    # The message names the file, the key and what is accepted; a traceback would only bury it.
    sys.exit(f"Invalid configuration: {error}")
except PipelineFolderError as error:
    sys.exit(f"Invalid pipeline folder: {error}")
app.synth()
