"""What the deployer's role needs beyond the statements its tasks generate."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from mlops_constructs.canary_deployer.states import DeployerStates
from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources


def grant(states: DeployerStates, role: iam.IRole, *, model_role: iam.IRole, key: kms.IKey, package_arns: list[str], execution_arns: str) -> None:
    stack = states.stack
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[model_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
    )
    acknowledge_wildcard_resources(
        role,
        [*states.model_arns, *states.config_arns],
        "Models and endpoint configs are named per release (package version and attempt) under this endpoint's prefix.",
    )
    acknowledge_wildcard_resources(role, package_arns, "Any version of this environment's model package group.")
    acknowledge_wildcard_resources(role, [execution_arns], "Whichever execution of this deployer holds the endpoint's lock, and no other state machine's.")
    if states.serverless:
        # No autoscaling to register, and no storage volume for the key: a serverless deployer needs neither.
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "SageMaker List actions have no ARNs to scope to.")
        return
    scaling_alarms = stack.format_arn(
        service="cloudwatch", resource="alarm", resource_name="TargetTracking-endpoint/*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )
    # Application Auto Scaling calls these as the caller when it registers a SageMaker variant.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:UpdateEndpointWeightsAndCapacities"],
            resources=[*states.endpoint_arns, *states.config_arns],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"], resources=[scaling_alarms])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:CreateServiceLinkedRole"],
            resources=["*"],
            conditions={"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
        )
    )
    # CreateEndpointConfig with KmsKeyId: SageMaker describes the key and creates grants on it as the caller,
    # for the endpoint's storage volumes only.
    via_sagemaker = {"kms:ViaService": f"sagemaker.{stack.region}.amazonaws.com"}
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["kms:DescribeKey"], resources=[key.key_arn], conditions={"StringEquals": via_sagemaker})
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:CreateGrant"],
            resources=[key.key_arn],
            conditions={"StringEquals": via_sagemaker, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
    )
    acknowledge_wildcard_resources(role, [scaling_alarms], "Application Auto Scaling names its target-tracking alarms at run time.")
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "Application Auto Scaling scalable targets and SageMaker List actions have no ARNs to scope to; "
        "the service-linked role is conditioned on its service name.",
    )
