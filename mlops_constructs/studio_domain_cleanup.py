"""Deletes a Studio domain that is going away, with what users created in it and its home EFS."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import custom_resources as cr
from constructs import Construct

from mlops_constructs.compliance import acknowledge, acknowledge_provider_framework, acknowledge_wildcard_resources
from mlops_constructs.polling_provider import polling_provider


class StudioDomainCleanup(Construct):
    """A custom resource that, when the domain `domain` is going away, deletes its apps, spaces, user
    profiles and the domain itself with the home EFS, and waits until they are gone.

    Users create apps and spaces at run time; CloudFormation does not know about them, and deleting a user
    profile or domain that still has them fails, while CloudFormation's own domain delete keeps the home EFS.
    Make this resource depend on the user profiles so that CloudFormation deletes it first. A Delete that
    CloudFormation sends while the domain stays (a replacement or rollback of this resource) changes nothing.

    With ``domain_retained`` (the domain's removal policy is retain) it deletes nothing and may call nothing.
    It still exists then: CloudFormation sends a resource removed from the template its Delete through the
    Lambda code deployed before, and an earlier version of this handler deleted apps and spaces on every
    Delete. Keeping the resource replaces that code before any Delete can reach it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain: sagemaker.CfnDomain,
        domain_retained: bool,
        # Apps, spaces, profiles and the domain each take minutes to delete; 40 minutes covers them and stays
        # clear of CloudFormation's one-hour custom-resource limit, so our timeout, with its message, comes first.
        timeout: cdk.Duration = cdk.Duration.minutes(40),
        poll_interval: cdk.Duration = cdk.Duration.seconds(30),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        domain_id = domain.attr_domain_id

        role = iam.Role(self, "HandlerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        provider = polling_provider(self, handler_folder="domain_cleanup", role=role, poll_interval=poll_interval, total_timeout=timeout)
        properties = {
            "DomainId": domain_id,
            "DomainLogicalId": stack.get_logical_id(domain),
            "DomainRetained": str(domain_retained).lower(),
        }
        self.resource = cdk.CustomResource(
            self, "Resource", service_token=provider.service_token, resource_type="Custom::StudioDomainCleanup", properties=properties
        )
        self._acknowledge_findings(provider)
        # A retained domain's clean-up deletes nothing, so it may call nothing.
        if domain_retained:
            return

        # During an update that replaces the domain, CloudFormation sends the old domain's clean-up its
        # Delete after the update, when the role's policy already names the new domain: the policy names the
        # domain that is replaced too, as this resource reports it. It is a policy of its own, not the role's
        # default one, which the handler functions depend on: they answer this resource before it exists.
        domains = cdk.CustomResource(
            self,
            "DomainsToCleanUp",
            service_token=provider.service_token,
            resource_type="Custom::StudioDomainsToCleanUp",
            properties={"DomainId": domain_id},
        )
        domain_ids = [domain_id, domains.get_att_string("PreviousDomainId")]
        contents = {
            kind: [stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{domain}/*") for domain in domain_ids]
            for kind in ("app", "space", "user-profile")
        }
        domain_scoped = [arn for arns in contents.values() for arn in arns]
        access = iam.Policy(
            self,
            "DomainAccess",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="ListDomainContents",
                    # List actions do not support resource-level permissions.
                    actions=["sagemaker:ListApps", "sagemaker:ListSpaces", "sagemaker:ListUserProfiles"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="DeleteDomainContents",
                    actions=["sagemaker:DescribeApp", "sagemaker:DeleteApp", "sagemaker:DeleteSpace", "sagemaker:DeleteUserProfile"],
                    resources=domain_scoped,
                ),
                iam.PolicyStatement(
                    sid="DescribeSpacesAndProfiles",
                    actions=["sagemaker:DescribeSpace", "sagemaker:DescribeUserProfile"],
                    resources=contents["space"] + contents["user-profile"],
                ),
                iam.PolicyStatement(
                    sid="TheDomains",
                    actions=["sagemaker:DescribeDomain", "sagemaker:DeleteDomain"],
                    resources=[stack.format_arn(service="sagemaker", resource="domain", resource_name=domain) for domain in domain_ids],
                ),
                iam.PolicyStatement(
                    sid="IsTheDomainGoingAway",
                    actions=["cloudformation:DescribeStacks", "cloudformation:DescribeStackResource"],
                    resources=[stack.stack_id],
                ),
            ],
        )
        # Deleted after the clean-up has finished with the domain, on a stack delete too.
        self.resource.node.add_dependency(access)
        acknowledge(access, "AwsSolutions-IAM5[Resource::*]", "sagemaker:List* actions have no resource-level permissions.")
        acknowledge_wildcard_resources(
            access, domain_scoped, "Apps, spaces and profiles are named by users at run time; limited to this domain and the one it replaces."
        )

    def _acknowledge_findings(self, provider: cr.Provider) -> None:
        acknowledge_provider_framework(provider)
        acknowledge(
            provider,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:*LogDelivery*, logs:PutResourcePolicy) has no resource-level permissions.",
        )
        acknowledge(provider, "AwsSolutions-SF2", "The waiter only polls is_complete; X-Ray adds cost and no insight.")
