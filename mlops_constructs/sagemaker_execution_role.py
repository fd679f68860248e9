"""The IAM role SageMaker jobs (and Studio users) run as, with what ML work in one environment needs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources


class SageMakerExecutionRole(Construct):
    """A role for ``sagemaker.amazonaws.com``: run processing, training and transform jobs, create models,
    track experiments, work with pipelines named ``<prefix>-*``, register model packages in the groups
    `model_package_groups` (every group named ``<prefix>-*`` when not given), write job logs and metrics,
    and attach jobs to the given subnets. Data access comes from `managed_policies`.

    It cannot change a package once registered (``sagemaker:UpdateModelPackage``): approving one deploys it,
    and that is a reviewer's decision, not a builder's. Nor can it create or delete models named like the
    deployers' (`deployer_model_names`, an IAM name pattern), which a deployer would serve.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        description: str,
        managed_policies: list[iam.IManagedPolicy],
        subnet_ids: list[str],
        security_group_id: str,
        deployer_model_names: str,
        model_package_groups: list[str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        def sagemaker_arn(kind: str, name: str = "*") -> str:
            return stack.format_arn(service="sagemaker", resource=kind, resource_name=name)

        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=description,
            managed_policies=managed_policies,
        )
        self.role = role

        run_time_named = [
            sagemaker_arn(kind)
            for kind in (
                "processing-job",
                "training-job",
                "transform-job",
                "model",
                "experiment",
                "experiment-trial",
                "experiment-trial-component",
            )
        ]
        pipelines = [sagemaker_arn("pipeline", f"{prefix}-*")]
        # IAM authorizes CreateModelPackage on the new version's ARN (model-package/<group>/<version>); the
        # group's own ARN is listed too, for the Describe actions on it.
        registry = (
            [sagemaker_arn("model-package-group", f"{prefix}-*"), sagemaker_arn("model-package", f"{prefix}-*")]
            if model_package_groups is None
            else [
                *(sagemaker_arn("model-package-group", group) for group in model_package_groups),
                *(sagemaker_arn("model-package", f"{group}/*") for group in model_package_groups),
            ]
        )
        job_logs = stack.format_arn(
            service="logs", resource="log-group", resource_name="/aws/sagemaker/*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="MachineLearningWork",
                actions=[
                    "sagemaker:AddTags",
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob",
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:DeleteModel",
                    "sagemaker:CreateExperiment",
                    "sagemaker:DescribeExperiment",
                    "sagemaker:CreateTrial",
                    "sagemaker:DescribeTrial",
                    "sagemaker:CreateTrialComponent",
                    "sagemaker:DescribeTrialComponent",
                    "sagemaker:UpdateTrialComponent",
                    "sagemaker:AssociateTrialComponent",
                ],
                resources=run_time_named,
            )
        )
        # A deployer whose release finds its model's name taken uses the model it finds (a retried create
        # meets the one it made): a model made under that name by anyone else would be served. Jobs and Studio
        # name their models freely, but never so.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="NoModelUnderTheDeployersNames",
                effect=iam.Effect.DENY,
                actions=["sagemaker:CreateModel", "sagemaker:DeleteModel"],
                resources=[sagemaker_arn("model", deployer_model_names)],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ThisEnvironmentsPipelines",
                actions=[
                    "sagemaker:AddTags",
                    "sagemaker:CreatePipeline",
                    "sagemaker:UpdatePipeline",
                    "sagemaker:DescribePipeline",
                    "sagemaker:DescribePipelineDefinitionForExecution",
                    "sagemaker:StartPipelineExecution",
                    "sagemaker:StopPipelineExecution",
                    "sagemaker:RetryPipelineExecution",
                    "sagemaker:DescribePipelineExecution",
                    "sagemaker:ListPipelineExecutionSteps",
                ],
                resources=pipelines,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterModelVersions",
                actions=[
                    "sagemaker:AddTags",
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:ListModelPackages",
                ],
                resources=registry,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassThisRoleToSageMakerJobs",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:GetLogEvents"],
                resources=[job_logs],
            )
        )
        role.add_to_policy(job_metrics())
        # Evaluation metrics go to the pipeline run as its processing job's trial component, which SageMaker
        # names <job name>-aws-processing-job.
        job_runs = sagemaker_arn("experiment-trial-component", "*-aws-processing-job")
        role.add_to_policy(iam.PolicyStatement(sid="LogMetricsToPipelineRuns", actions=["sagemaker:BatchPutMetrics"], resources=[job_runs]))
        acknowledge_wildcard_resources(role, [job_runs], "SageMaker names a job's trial component after the job, at run time.")
        network_interfaces = attach_to_subnets(role, workload="Jobs", subnet_ids=subnet_ids, security_group_id=security_group_id)
        acknowledge_wildcard_resources(
            role,
            run_time_named,
            "Pipelines and the SDK name jobs, models and trials at run time; limited to this account and region.",
        )
        acknowledge_wildcard_resources(role, pipelines, "Only pipelines named with this environment's prefix.")
        acknowledge_wildcard_resources(
            role,
            [arn for arn in registry if "*" in arn],
            "Only versions of the model package groups this role registers into; SageMaker numbers each version.",
        )
        acknowledge_wildcard_resources(
            role, [job_logs], "SageMaker names log groups and streams under /aws/sagemaker/ at run time."
        )
        acknowledge_wildcard_resources(
            role,
            [network_interfaces],
            "SageMaker creates job network interfaces at run time; the subnets and security group are pinned.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "EC2 Describe actions and cloudwatch:PutMetricData (namespace-conditioned) have no resource-level permissions.",
        )


def job_metrics() -> iam.PolicyStatement:
    """Publishing SageMaker jobs' metrics: PutMetricData has no resource-level permissions, so a namespace
    condition narrows it to SageMaker's namespaces."""
    return iam.PolicyStatement(
        sid="JobMetrics",
        actions=["cloudwatch:PutMetricData"],
        resources=["*"],
        conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
    )


def image_pull(sid: str, repository_arns: list[str]) -> iam.PolicyStatement:
    """Pulling images (their manifests and layers) from `repository_arns` only, and no push."""
    return iam.PolicyStatement(
        sid=sid,
        actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        resources=repository_arns,
    )


def ecr_login() -> iam.PolicyStatement:
    """Logging in to ECR before a pull: GetAuthorizationToken has no resource-level permissions."""
    return iam.PolicyStatement(sid="LogInToEcr", actions=["ecr:GetAuthorizationToken"], resources=["*"])


def attach_to_subnets(role: iam.Role, *, workload: str, subnet_ids: list[str], security_group_id: str) -> str:
    """Let SageMaker run `role`'s `workload` ("Jobs", "Models") in the given subnets and security group:
    describe the network, create network interfaces only there, delete them again. Returns the ARN
    pattern of the network interfaces, for the caller to acknowledge."""
    stack = cdk.Stack.of(role)
    network_interfaces = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
    role.add_to_policy(
        iam.PolicyStatement(
            sid=f"DescribeNetworkFor{workload}InVpc",
            # EC2 Describe* actions have no resource-level permissions.
            actions=[
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeDhcpOptions",
            ],
            resources=["*"],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid=f"Attach{workload}ToOurSubnets",
            actions=["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission"],
            resources=[
                network_interfaces,
                *(stack.format_arn(service="ec2", resource="subnet", resource_name=s) for s in subnet_ids),
                stack.format_arn(service="ec2", resource="security-group", resource_name=security_group_id),
            ],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid=f"Detach{workload}FromOurSubnets",
            actions=["ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"],
            resources=[network_interfaces],
            # Only the interfaces in our subnets, which are the ones SageMaker created for this role's work.
            conditions={"ArnEquals": {"ec2:Subnet": [stack.format_arn(service="ec2", resource="subnet", resource_name=s) for s in subnet_ids]}},
        )
    )
    return network_interfaces
