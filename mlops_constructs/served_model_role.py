"""The IAM role a served model runs as: what its container needs at start-up and while it serves, no more."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources
from mlops_constructs.sagemaker_execution_role import attach_to_subnets, ecr_login, image_pull


class ServedModelRole(Construct):
    """A role for ``sagemaker.amazonaws.com`` that SageMaker hosting uses for the models of the endpoints
    `endpoint_names` (one per serving mode; at most one serves at a time).

    Reading the model artifacts (which carry the inference code), the environment's inference images and
    decrypting them comes from `managed_policies`; the role itself can pull the images of
    `image_repository_arns` (e.g. SageMaker's prebuilt serving images), write the endpoint's logs and
    metrics, and attach the model to the given subnets. It cannot start jobs, change pipelines or model
    packages, or write data.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        endpoint_names: list[str],
        managed_policies: list[iam.IManagedPolicy],
        image_repository_arns: list[str],
        subnet_ids: list[str],
        security_group_id: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=description,
            managed_policies=managed_policies,
        )
        self.role.add_to_policy(image_pull("PullImages", image_repository_arns))
        self.role.add_to_policy(ecr_login())
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EndpointMetrics",
                # PutMetricData has no resource-level permissions; the namespace condition narrows it.
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints*"}},
            )
        )
        log_groups = [f"/aws/sagemaker/Endpoints/{name}" for name in endpoint_names]
        logs = [
            stack.format_arn(service="logs", resource="log-group", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
            for group in log_groups
            for name in (group, f"{group}:log-stream:*")
        ]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EndpointLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=logs,
            )
        )
        network_interfaces = attach_to_subnets(self.role, workload="Models", subnet_ids=subnet_ids, security_group_id=security_group_id)
        acknowledge_wildcard_resources(
            self.role, logs[1::2], "SageMaker names the endpoint's log streams per variant and instance at run time."
        )
        acknowledge_wildcard_resources(
            self.role, [network_interfaces], "SageMaker creates the model's network interfaces at run time; subnets and security group are pinned."
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken, EC2 Describe actions and cloudwatch:PutMetricData (namespace-conditioned) "
            "have no resource-level permissions.",
        )
