"""Deletes, with its stack, what the canary deployer created outside CloudFormation."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops_constructs.compliance import acknowledge, acknowledge_provider_framework, acknowledge_wildcard_resources
from mlops_constructs.polling_provider import polling_provider

# Put on the endpoint when the handler asks SageMaker to delete it; see the handler for why.
_DELETE_REQUESTED_TAG = "mlops:stack-cleanup"


class DeployedEndpointCleanup(Construct):
    """A custom resource that, when its stack is deleted, removes the deployer's endpoint and what it used,
    and the same of `retired_endpoint_name` (the other serving mode's endpoint) if a switch of modes left it.

    The deployer (`state_machine`) creates the endpoint `endpoint_name`, endpoint configs
    ``<endpoint_name>-*``, models ``<model_name_prefix>-*`` and Application Auto Scaling targets on the
    endpoint's variants at run time. On stack delete this resource stops running deployments, deregisters
    the targets, deletes the endpoint, waits until it is gone, and deletes the configs and models. A
    Delete that CloudFormation sends for a replacement or a rollback changes nothing.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        model_name_prefix: str,
        state_machine: sfn.IStateMachine,
        retired_endpoint_name: str | None = None,
        retired_model_name_prefix: str | None = None,
        # An endpoint caught mid-update finishes it before it can be deleted, and a delete takes minutes;
        # 40 minutes covers both and stays clear of CloudFormation's one-hour custom-resource limit.
        timeout: cdk.Duration = cdk.Duration.minutes(40),
        poll_interval: cdk.Duration = cdk.Duration.seconds(30),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        def sagemaker_arn(kind: str, name: str) -> str:
            # SageMaker ARNs carry names in lower case.
            return stack.format_arn(service="sagemaker", resource=kind, resource_name=name.lower())

        names = [(endpoint_name, model_name_prefix)]
        if retired_endpoint_name and retired_model_name_prefix:
            names.append((retired_endpoint_name, retired_model_name_prefix))
        endpoint_arns = [sagemaker_arn("endpoint", name) for name, _ in names]
        config_arns = [sagemaker_arn("endpoint-config", f"{name}-*") for name, _ in names]
        model_arns = [sagemaker_arn("model", f"{models}-*") for _, models in names]
        execution_arns = [
            stack.format_arn(
                service="states",
                resource="execution",
                resource_name=f"{state_machine.state_machine_name}:*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
        ]
        scaling_alarm_arns = [
            stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=f"TargetTracking-endpoint/{name}/variant/*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for name, _ in names
        ]

        role = iam.Role(self, "HandlerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        statements = [
            iam.PolicyStatement(sid="IsTheStackBeingDeleted", actions=["cloudformation:DescribeStacks"], resources=[stack.stack_id]),
            iam.PolicyStatement(sid="FindDeployments", actions=["states:ListExecutions"], resources=[state_machine.state_machine_arn]),
            iam.PolicyStatement(sid="StopDeployments", actions=["states:StopExecution"], resources=execution_arns),
            iam.PolicyStatement(
                sid="RemoveAutoscaling",
                # Scalable targets have generated ARNs, not the endpoint's name; the handler picks ours by ResourceId.
                actions=["application-autoscaling:DescribeScalableTargets", "application-autoscaling:DeregisterScalableTarget"],
                resources=["*"],
            ),
            # Deregistering a target deletes its target-tracking policy and that policy's alarms, as the caller.
            iam.PolicyStatement(
                sid="RemoveScalingAlarms", actions=["cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"], resources=scaling_alarm_arns
            ),
            iam.PolicyStatement(
                sid="DeleteTheEndpoint",
                actions=["sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:ListTags"],
                resources=endpoint_arns,
            ),
            iam.PolicyStatement(
                sid="MarkTheEndpointDeleteRequested",
                actions=["sagemaker:AddTags"],
                resources=endpoint_arns,
                conditions={"ForAllValues:StringEquals": {"aws:TagKeys": [_DELETE_REQUESTED_TAG]}},
            ),
            # List actions do not support resource-level permissions.
            iam.PolicyStatement(sid="FindReleases", actions=["sagemaker:ListEndpointConfigs", "sagemaker:ListModels"], resources=["*"]),
            iam.PolicyStatement(sid="DeleteEndpointConfigs", actions=["sagemaker:DeleteEndpointConfig"], resources=config_arns),
            iam.PolicyStatement(sid="DeleteModels", actions=["sagemaker:DeleteModel"], resources=model_arns),
        ]
        for statement in statements:
            role.add_to_policy(statement)

        provider = polling_provider(self, handler_folder="endpoint_cleanup", role=role, poll_interval=poll_interval, total_timeout=timeout)
        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::DeployedEndpointCleanup",
            properties={
                "EndpointName": endpoint_name,
                "EndpointConfigPrefix": f"{endpoint_name}-",
                "ModelPrefix": f"{model_name_prefix}-",
                "StateMachineArn": state_machine.state_machine_arn,
                "DeleteRequestedTag": _DELETE_REQUESTED_TAG,
                **(
                    {
                        "RetiredEndpointName": retired_endpoint_name,
                        "RetiredEndpointConfigPrefix": f"{retired_endpoint_name}-",
                        "RetiredModelPrefix": f"{retired_model_name_prefix}-",
                    }
                    if len(names) > 1
                    else {}
                ),
            },
        )
        # Deleted before the deployer, so that its running executions can still be found and stopped.
        self.resource.node.add_dependency(state_machine)

        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "SageMaker List actions have no resource-level permissions, and scalable targets have generated ARNs; "
            "the handler deregisters only targets on this endpoint's variants.",
        )
        acknowledge_wildcard_resources(
            role, [*config_arns, *model_arns], "Endpoint configs and models are named per release under this environment's prefix."
        )
        acknowledge_wildcard_resources(role, execution_arns, "Executions of this environment's deployer only; named at run time.")
        acknowledge_wildcard_resources(
            role, scaling_alarm_arns, "Application Auto Scaling names the target-tracking alarms of this endpoint's variants at run time."
        )
        acknowledge_provider_framework(provider)
        acknowledge(
            provider,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:*LogDelivery*, logs:PutResourcePolicy) has no resource-level permissions.",
        )
        acknowledge(provider, "AwsSolutions-SF2", "The waiter only polls is_complete; X-Ray adds cost and no insight.")
