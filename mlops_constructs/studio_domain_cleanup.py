"""Deletes what users create inside a Studio domain, so CloudFormation can delete the domain itself."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from mlops_constructs.compliance import acknowledge, acknowledge_provider_framework, acknowledge_wildcard_resources
from mlops_constructs.polling_provider import polling_provider

_HANDLER_CODE = Path(__file__).resolve().parent.parent / "functions" / "domain_cleanup"


class StudioDomainCleanup(Construct):
    """A custom resource that, on delete, removes the domain's apps and spaces and waits until they are gone.

    Users create apps and spaces at run time; CloudFormation does not know about them, and deleting a user
    profile or domain that still has them fails. Make this resource depend on the user profiles so that
    CloudFormation deletes it first. With ``delete_home_efs`` it also deletes the profiles and the domain
    itself with the home EFS (CloudFormation's own delete keeps the EFS); otherwise the EFS is retained.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain_id: str,
        delete_home_efs: bool,
        timeout: cdk.Duration = cdk.Duration.hours(1),
        poll_interval: cdk.Duration = cdk.Duration.seconds(30),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        role = iam.Role(self, "HandlerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListDomainContents",
                # List actions do not support resource-level permissions.
                actions=["sagemaker:ListApps", "sagemaker:ListSpaces", "sagemaker:ListUserProfiles"],
                resources=["*"],
            )
        )
        domain_scoped = [
            stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{domain_id}/*")
            for kind in ("app", "space", "user-profile")
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DeleteDomainContents",
                actions=[
                    "sagemaker:DescribeApp",
                    "sagemaker:DeleteApp",
                    "sagemaker:DeleteSpace",
                    "sagemaker:DeleteUserProfile",
                ],
                resources=domain_scoped,
            )
        )
        domain_actions = ["sagemaker:DescribeDomain"] + (["sagemaker:DeleteDomain"] if delete_home_efs else [])
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TheDomain",
                actions=domain_actions,
                resources=[stack.format_arn(service="sagemaker", resource="domain", resource_name=domain_id)],
            )
        )

        provider = polling_provider(self, handler_code=_HANDLER_CODE, role=role, poll_interval=poll_interval, total_timeout=timeout)
        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::StudioDomainCleanup",
            properties={"DomainId": domain_id, "DeleteHomeEfs": "true" if delete_home_efs else "false"},
        )
        self._acknowledge_findings(role, domain_scoped, provider)

    def _acknowledge_findings(self, role: iam.Role, domain_scoped: list[str], provider: cr.Provider) -> None:
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "sagemaker:List* actions have no resource-level permissions.")
        acknowledge_wildcard_resources(
            role, domain_scoped, "Apps, spaces and profiles are named by users at run time; limited to this domain."
        )
        acknowledge_provider_framework(provider)
        acknowledge(
            provider,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:*LogDelivery*, logs:PutResourcePolicy) has no resource-level permissions.",
        )
        acknowledge(provider, "AwsSolutions-SF2", "The waiter only polls is_complete; X-Ray adds cost and no insight.")
