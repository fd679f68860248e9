"""The role the batch inference jobs run as."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources
from mlops_constructs.sagemaker_execution_role import attach_to_subnets, ecr_login, job_metrics


class BatchProcessingRole(Construct):
    """A role for ``sagemaker.amazonaws.com`` that runs the workflow's processing jobs and nothing else.

    Not the pipelines' SageMakerExecutionRole: that one starts training jobs, runs pipelines and registers
    models, none of which a batch job does. Data and image access come from `managed_policies`; this adds the
    jobs' logs and metrics, logging in to ECR, and, given subnets, attaching the jobs to them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        managed_policies: list[iam.IManagedPolicy],
        subnet_ids: list[str] | None = None,
        security_group_id: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.role = role = iam.Role(
            self,
            "Role",
            # Only SageMaker acting for this account's jobs: not a confused deputy for another account.
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}),
            description=description,
            managed_policies=managed_policies,
        )
        job_logs = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/ProcessingJobs:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(ecr_login())
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[job_logs],
            )
        )
        role.add_to_policy(job_metrics())
        acknowledge_wildcard_resources(role, [job_logs], "SageMaker names a log stream per processing job and instance.")
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken, EC2 Describe actions and cloudwatch:PutMetricData (namespace-conditioned) "
            "have no resource-level permissions.",
        )
        if subnet_ids and security_group_id:
            network_interfaces = attach_to_subnets(role, workload="Jobs", subnet_ids=subnet_ids, security_group_id=security_group_id)
            acknowledge_wildcard_resources(
                role,
                [network_interfaces],
                "SageMaker creates job network interfaces at run time; the subnets and security group are pinned.",
            )
