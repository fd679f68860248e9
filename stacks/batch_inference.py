"""Batch inference: the workflow that runs preprocess -> inference (custom container) -> postprocess as
processing jobs, the code it delivers to them, and optionally a schedule and the image's CodeBuild project."""

from __future__ import annotations

import json
import re

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from config.naming import batch_image_build_name, batch_inference_name
from config.settings import BatchInference, BatchSchedule, ImageBuild
from mlops_constructs.batch_inference_workflow import BatchInferenceWorkflow, JobDefaults
from mlops_constructs.batch_inference_workflow.processing_role import BatchProcessingRole
from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources
from pipeline_code.settings import BATCH_INFERENCE_OUTPUT_PREFIX, BATCH_INFERENCE_WORK_PREFIX, scikit_learn_image_uri


class BatchInferenceStack(cdk.Stack):
    """State machine ``<prefix>-batch-inference`` and the role its jobs run as."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        batch_inference: BatchInference,
        model_package_group_names: dict[str, str],
        artifacts_bucket: s3.IBucket,
        code_uri: str,
        access_policy: iam.IManagedPolicy,
        key: kms.IKey,
        repository: ecr.IRepository,
        subnet_ids: list[str],
        security_group_id: str,
        jobs_in_vpc: bool,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        network = {"subnet_ids": subnet_ids, "security_group_id": security_group_id} if jobs_in_vpc else {}
        self.processing_role = BatchProcessingRole(
            self,
            "ProcessingRole",
            description=f"{prefix}: the batch inference workflow's processing jobs",
            managed_policies=[access_policy],
            **network,
        ).role
        self.code_uri = code_uri

        # Built from the name: repository_uri splits the cross-stack ARN, which cfn-lint cannot type-check.
        self.repository_uri = f"{self.account}.dkr.ecr.{self.region}.{self.url_suffix}/{repository.repository_name}"
        image_tag = batch_inference.image_tag
        self.workflow = BatchInferenceWorkflow(
            self,
            "Workflow",
            state_machine_name=batch_inference_name(prefix),
            job_name_prefix=prefix,
            defaults=JobDefaults(
                code_uri=self.code_uri,
                scikit_image_uri=scikit_learn_image_uri(self.region),
                custom_image_uri=f"{self.repository_uri}:{image_tag}" if image_tag else None,
                instance_type=batch_inference.instance_type,
                instance_count=batch_inference.instance_count,
                volume_size_gb=batch_inference.volume_size_gb,
                max_runtime_seconds=batch_inference.max_runtime_seconds,
            ),
            processing_role=self.processing_role,
            output_uri_prefix=f"s3://{artifacts_bucket.bucket_name}/{BATCH_INFERENCE_OUTPUT_PREFIX}",
            work_uri_prefix=f"s3://{artifacts_bucket.bucket_name}/{BATCH_INFERENCE_WORK_PREFIX}",
            image_repository_uri=self.repository_uri,
            model_package_group_names=model_package_group_names,
            allow_unapproved_models=batch_inference.allow_unapproved_models,
            key=key,
            subnet_ids=subnet_ids if jobs_in_vpc else None,
            security_group_ids=[security_group_id] if jobs_in_vpc else None,
            tags={"project": prefix.rsplit("-", 1)[0], "environment": prefix.rsplit("-", 1)[1]},
        )
        self.state_machine = self.workflow.state_machine

        self.schedule = self._schedule(prefix, batch_inference.schedule) if batch_inference.schedule else None
        self.image_build = self._image_build(prefix, batch_inference.image_build, repository, key) if batch_inference.image_build else None

        cdk.CfnOutput(self, "BatchInferenceImageRepositoryUri", value=self.repository_uri, description="Push the inference image here")
        cdk.CfnOutput(self, "BatchInferenceStateMachineArn", value=self.state_machine.state_machine_arn, description="Start a batch here")
        cdk.CfnOutput(self, "BatchInferenceCodeUri", value=self.code_uri, description="The three scripts every job runs")
        cdk.CfnOutput(
            self,
            "BatchOutputUri",
            value=f"s3://{artifacts_bucket.bucket_name}/{BATCH_INFERENCE_OUTPUT_PREFIX}",
            description="Every output_uri lies under this prefix",
        )

    def _schedule(self, prefix: str, schedule: BatchSchedule) -> scheduler.CfnSchedule:
        """EventBridge Scheduler starts the workflow on `schedule.expression` with the configured input."""
        role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}),
            description=f"{prefix}: EventBridge Scheduler starts the batch inference workflow",
        )
        self.state_machine.grant_start_execution(role)
        started = scheduler.CfnSchedule(
            self,
            "Schedule",
            name=batch_inference_name(prefix),
            description=f"Scores {schedule.input_uri} on {schedule.expression}",
            schedule_expression=schedule.expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.state_machine.state_machine_arn,
                role_arn=role.role_arn,
                input=json.dumps({"input_uri": schedule.input_uri, "output_uri": schedule.output_uri, **({"model": schedule.model} if schedule.model else {})}),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=3, maximum_event_age_in_seconds=3600),
            ),
        )
        # The role's permissions must exist before Scheduler first assumes it.
        started.node.add_dependency(role)
        return started

    def _image_build(self, prefix: str, build: ImageBuild, repository: ecr.IRepository, key: kms.IKey) -> codebuild.Project:
        """Build pipeline_code/batch_inference/ on every push to the branch and push it tagged with the commit SHA."""
        owner, name = build.repository.split("/", 1)
        project = codebuild.Project(
            self,
            "ImageBuild",
            # Named, so `mlops image build` starts it from config alone.
            project_name=batch_image_build_name(prefix),
            description=f"{prefix}: builds the batch inference image from {build.repository}@{build.branch}",
            source=codebuild.Source.git_hub(
                owner=owner,
                repo=name,
                branch_or_ref=build.branch,
                webhook=True,
                # Filter patterns are regular expressions: anchored, so a push to "release-x" builds nothing for "release".
                webhook_filters=[codebuild.FilterGroup.in_event_of(codebuild.EventAction.PUSH).and_head_ref_is(f"^refs/heads/{re.escape(build.branch)}$")],
            ),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                compute_type=codebuild.ComputeType.SMALL,
                # Docker builds need the Docker daemon, which runs only in privileged mode.
                privileged=True,
            ),
            environment_variables={"REPOSITORY_URI": codebuild.BuildEnvironmentVariable(value=self.repository_uri)},
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(
                    log_group=logs.LogGroup(self, "ImageBuildLogs", retention=logs.RetentionDays.SIX_MONTHS, removal_policy=cdk.RemovalPolicy.DESTROY)
                )
            ),
            timeout=cdk.Duration.minutes(60),
            build_spec=codebuild.BuildSpec.from_object(
                {
                    "version": "0.2",
                    "phases": {
                        "pre_build": {
                            "commands": [
                                'TAG="$CODEBUILD_RESOLVED_SOURCE_VERSION"',
                                'aws ecr get-login-password | docker login --username AWS --password-stdin "${REPOSITORY_URI%%/*}"',
                            ]
                        },
                        "build": {
                            "commands": [
                                # Tags are immutable: a commit already built (a re-run) is left as it is.
                                'if aws ecr describe-images --repository-name "${REPOSITORY_URI#*/}" --image-ids imageTag="$TAG" >/dev/null 2>&1; '
                                'then echo "$REPOSITORY_URI:$TAG exists"; '
                                'else docker build -t "$REPOSITORY_URI:$TAG" pipeline_code/batch_inference/ && docker push "$REPOSITORY_URI:$TAG"; fi',
                            ]
                        },
                    },
                }
            ),
        )
        # The source comes through the CodeConnections connection rather than a stored GitHub token.
        cfn_project = project.node.default_child
        # The key is set on the resource rather than given to the construct, whose grant would let the build use
        # the key directly; CodeBuild uses it only through S3 (the build's artifacts and caches).
        cfn_project.add_property_override("EncryptionKey", key.key_arn)
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}},
            )
        )
        cfn_project.add_property_override("Source.Auth", {"Type": "CODECONNECTIONS", "Resource": build.connection_arn})
        service = build.connection_arn.split(":")[2]
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=[f"{service}:UseConnection", f"{service}:GetConnectionToken", f"{service}:GetConnection"],
                resources=[build.connection_arn],
            )
        )
        repository.grant_pull_push(project)
        project.add_to_role_policy(iam.PolicyStatement(actions=["ecr:DescribeImages"], resources=[repository.repository_arn]))
        acknowledge(project, "AwsSolutions-CB3", "Building a container image needs the Docker daemon, which CodeBuild runs only in privileged mode.")
        acknowledge(project, "AwsSolutions-IAM5[Resource::*]", "ecr:GetAuthorizationToken has no resource-level permissions.")
        acknowledge(
            project,
            "AwsSolutions-CB4",
            "The project is encrypted with the environment's key through the EncryptionKey override above, which cdk-nag does not see.",
        )
        acknowledge_wildcard_resources(
            project,
            [
                self.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=f"/aws/codebuild/{project.project_name}:*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                ),
                self.format_arn(service="codebuild", resource="report-group", resource_name=f"{project.project_name}-*"),
            ],
            "aws-cdk-lib's grants for the project's own build logs and test reports, named per build.",
        )
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge(project, f"AwsSolutions-IAM5[Action::{action}]", "Encrypting the build's artifacts with this key, through S3 only.")
        return project
