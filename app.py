#!/usr/bin/env python3
"""The CDK app: one Stage per environment, each configured by config/<env>.yaml."""

from pathlib import Path

import aws_cdk as cdk

from stacks.environment import add_environments

app = cdk.App()
add_environments(app, Path(__file__).resolve().parent / "config")
app.synth()
