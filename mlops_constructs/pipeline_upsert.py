"""Deploys a SageMaker pipeline definition with the stack, as a custom resource."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import custom_resources as cr
from constructs import Construct

from mlops_constructs.compliance import acknowledge_provider_framework
from mlops_constructs.function_code import platform_function

_PROVIDER_ID = "PipelineUpsertProvider"


class PipelineUpsert(Construct):
    """Creates or updates the pipeline `pipeline_name` from a definition file rendered at synth time.

    `definition_file` may hold ``${Name}`` placeholders for deploy-time values, filled in from
    `substitutions`. SageMaker's own validation message fails the deploy when it rejects the definition.
    The pipeline is tagged with the definition's hash: an unchanged definition makes no SageMaker call,
    and a pipeline changed outside the stack (e.g. in Studio) is reported, or with ``strict`` not
    overwritten. ``delete_on_stack_delete=False`` keeps the pipeline when the stack is deleted. The pipeline
    is tagged with its owner (stack and logical id): an existing pipeline the stack does not own is refused
    unless ``adopt_existing``, and a delete removes only a pipeline this resource owns.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        definition_file: Path,
        substitutions: dict[str, str],
        role: iam.IRole,
        description: str,
        delete_on_stack_delete: bool,
        strict: bool,
        adopt_existing: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.definition = s3_assets.Asset(self, "Definition", path=str(definition_file))
        self.pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name.lower())

        provider = _provider(stack)
        provider.on_event_handler.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreatePipeline",
                    "sagemaker:UpdatePipeline",
                    "sagemaker:DescribePipeline",
                    "sagemaker:DeletePipeline",
                    "sagemaker:AddTags",
                    "sagemaker:ListTags",
                ],
                resources=[self.pipeline_arn],
            )
        )
        provider.on_event_handler.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"arn:{stack.partition}:s3:::{self.definition.s3_bucket_name}/{self.definition.s3_object_key}"],
            )
        )
        provider.on_event_handler.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )

        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::SageMakerPipeline",
            properties={
                "PipelineName": pipeline_name,
                "DefinitionBucket": self.definition.s3_bucket_name,
                "DefinitionKey": self.definition.s3_object_key,
                "Substitutions": substitutions,
                "RoleArn": role.role_arn,
                "Description": description,
                "DeleteOnStackDelete": str(delete_on_stack_delete).lower(),
                "Strict": str(strict).lower(),
                "AdoptExisting": str(adopt_existing).lower(),
            },
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # Role permissions must exist before SageMaker is asked to use the role.
        self.resource.node.add_dependency(role)


def _provider(stack: cdk.Stack) -> cr.Provider:
    """One handler and Provider per stack, shared by all of its pipelines."""
    existing = stack.node.try_find_child(_PROVIDER_ID)
    if existing is not None:
        return existing.node.find_child("Provider")
    scope = Construct(stack, _PROVIDER_ID)
    role = iam.Role(scope, "HandlerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    handler = platform_function(
        scope,
        "Handler",
        folder="pipeline_upsert",
        entry="on_event",
        role=role,
        timeout=cdk.Duration.minutes(2),
        log_group=logs.LogGroup(
            scope, "HandlerLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY
        ),
    )
    handler.log_group.grant_write(role)
    role.add_to_policy(
        iam.PolicyStatement(
            sid="RollbackOrReplacement",
            # Whether an update is a rollback, and whether another resource of the stack still names a pipeline.
            actions=["cloudformation:DescribeStacks", "cloudformation:ListStackResources"],
            resources=[stack.stack_id],
        )
    )
    provider = cr.Provider(scope, "Provider", on_event_handler=handler)
    acknowledge_provider_framework(provider)
    return provider
