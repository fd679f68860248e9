"""Acknowledging cdk-nag findings: one finding at a time, each with the reason it is acceptable."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from constructs import IConstruct

from mlops_constructs.tokens import holds_token


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept one cdk-nag finding (e.g. ``AwsSolutions-IAM5[Resource::*]``) on `scope` and below."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def acknowledge_wildcard_resources(scope: IConstruct, resources: list[str], reason: str) -> None:
    """Accept AwsSolutions-IAM5 for each wildcard ARN in `resources`, as cdk-nag spells the finding.

    cdk-nag names a finding after the resolved ARN, writing ``{"Fn::GetAtt": ["Domain", "DomainId"]}`` as
    ``<Domain.DomainId>``; rendering the same way here keeps each acknowledgement next to the statement
    it is about instead of copying logical IDs by hand.
    """
    # Each call into aws-cdk-lib is a round trip to its node process: the ARNs are resolved in one call and
    # acknowledged in another, however many there are; ARNs known in full (most of them) need no resolving.
    resolved = cdk.Stack.of(scope).resolve(resources) if any(holds_token(resource) for resource in resources) else resources
    rendered = [_render(resource) for resource in resolved]
    findings = [cdk.Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{arn}]", reason=reason) for arn in rendered if "*" in arn]
    if findings:
        cdk.Validations.of(scope).acknowledge(*findings)


def acknowledge_provider_framework(provider: cr.Provider) -> None:
    """Accept the findings on aws-cdk-lib's custom resource Provider framework: its functions and roles."""
    acknowledge(
        provider,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "The CDK Provider framework's functions use the AWS managed basic execution role for their logs.",
    )
    handlers = [provider.on_event_handler, provider.is_complete_handler]
    framework = [child for child in provider.node.find_all() if isinstance(child, lambda_.CfnFunction)]
    acknowledge_wildcard_resources(
        provider,
        [cdk.Fn.join("", [function.attr_arn, ":*"]) for function in [*(h.node.default_child for h in handlers if h is not None), *framework]],
        "The Provider framework invokes its handler functions and their versions.",
    )


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), = value.items()
        if function == "Fn::Join" and argument[0] == "":
            return "".join(_render(part) for part in argument[1])
        if function == "Fn::GetAtt":
            return f"<{argument[0]}.{argument[1]}>"
        if function == "Ref":
            return f"<{argument}>"
    return json.dumps(value)
