"""A Step Functions workflow that scores a batch: preprocess, inference in a custom container, postprocess,
each a SageMaker processing job.

The states, in the order an execution meets them: refuse unknown input keys, fill the omitted ones with
the defaults, check them and pick the model's group (`check_input`), name the run and lay out its work prefix, resolve the model
and check its approval (`model`), then the three jobs (`jobs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops_constructs.batch_inference_workflow import check_input, jobs, model
from mlops_constructs.batch_inference_workflow.jobs import STEPS, JobStep
from mlops_constructs.sdk_errors import end_uncaught_sdk_errors
from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources
from mlops_constructs.json_paths import string_at

__all__ = ["STEPS", "BatchInferenceWorkflow", "JobDefaults", "JobStep", "execution_timeout_seconds", "JOB_NAME_HASH_LENGTH"]

# SageMaker's limit on processing job names, and the length of the MD5 of the execution ARN each name carries.
JOB_NAME_MAX_LENGTH = 63
JOB_NAME_HASH_LENGTH = 32
# Per job, on top of its MaxRuntimeInSeconds: waiting for instances, pulling the image, uploading outputs.
JOB_OVERHEAD_SECONDS = 1800


def execution_timeout_seconds(max_runtime_seconds: int) -> int:
    """The workflow's timeout: three jobs at their longest, each with time to start and to finish."""
    return len(STEPS) * (max_runtime_seconds + JOB_OVERHEAD_SECONDS)


@dataclass(frozen=True)
class JobDefaults:
    """What an execution gets for each key its input leaves out."""

    code_uri: str
    scikit_image_uri: str
    instance_type: str
    instance_count: int
    volume_size_gb: int
    max_runtime_seconds: int
    # None: every execution must name its custom_image_uri.
    custom_image_uri: str | None = None


class BatchInferenceWorkflow(Construct):
    """State machine `state_machine_name`: score the files under ``input_uri`` and write the result to ``output_uri``.

    Input (JSON), every key optional except ``input_uri`` and ``output_uri`` (which must lie under
    `output_uri_prefix`): ``custom_image_uri`` (an image of `image_repository_uri`), ``instance_type``,
    ``instance_count``, ``volume_size``, ``max_runtime``, ``model`` (the name of one of the environment's
    models, the keys of `model_package_group_names`; default: the first), and ``model_package_arn`` (a
    version of that model's group) or, with `allow_unapproved_models`, ``model_uri`` (default: the newest
    Approved package of the model's group; a named package must be Approved unless
    `allow_unapproved_models`). Any other key, a bad value, a package of another model's group or an
    unapproved package fails the execution before any job starts. A job that
    fails ends the execution with ``<Step>Failed``, the job's FailureReason and its script's ExitMessage, and
    no later job starts.
    Jobs are named ``<job_name_prefix>-<run id>-pre|infer|post`` and tagged with the run id, the MD5 of the
    execution ARN; intermediate files go under ``<work_uri_prefix><run id>/``. Stopping the execution
    stops the running job.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine_name: str,
        job_name_prefix: str,
        defaults: JobDefaults,
        processing_role: iam.IRole,
        output_uri_prefix: str,
        work_uri_prefix: str,
        image_repository_uri: str,
        model_package_group_names: dict[str, str],
        allow_unapproved_models: bool,
        key: kms.IKey,
        subnet_ids: list[str] | None = None,
        security_group_ids: list[str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        longest = len(job_name_prefix) + 1 + JOB_NAME_HASH_LENGTH + 1 + max(len(step.suffix) for step in STEPS)
        if longest > JOB_NAME_MAX_LENGTH:
            raise ValueError(
                f"job names '{job_name_prefix}-<{JOB_NAME_HASH_LENGTH} hex>-<step>' need {longest} characters, SageMaker allows "
                f"{JOB_NAME_MAX_LENGTH}; use a job name prefix of at most {len(job_name_prefix) - (longest - JOB_NAME_MAX_LENGTH)} characters"
            )
        network = (
            {"NetworkConfig": {"VpcConfig": {"Subnets": subnet_ids, "SecurityGroupIds": security_group_ids}}}
            if subnet_ids and security_group_ids
            else {}
        )
        # Every version of each of the environment's groups, and of no other group.
        package_arns = [
            stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group.lower()}/*")
            for group in model_package_group_names.values()
        ]

        job_states = [jobs.processing_job(self, step, key_arn=key.key_arn, network=network, tags=tags or {}) for step in STEPS]
        report = sfn.Pass(
            self,
            "Report the run",
            parameters={
                "run_id": string_at("$.run.id"),
                "input_uri": string_at("$.config.input_uri"),
                "output_uri": string_at("$.config.output_uri"),
                "model_name": string_at("$.group.model"),
                "model": sfn.JsonPath.object_at("$.model"),
                "jobs": sfn.JsonPath.object_at("$.jobs"),
            },
        )
        for step, state, following in zip(STEPS, job_states, [*job_states[1:], report]):
            jobs.handle_the_outcome(self, step, state, then=following)

        resolve_model = model.resolve_model(self, package_arns, allow_unapproved=allow_unapproved_models, then=job_states[0])
        start = check_input.check_input(
            self,
            defaults=defaults,
            role_arn=processing_role.role_arn,
            output_uri_prefix=output_uri_prefix,
            image_repository_uri=image_repository_uri,
            model_package_group_names=model_package_group_names,
            allow_unapproved_models=allow_unapproved_models,
            then=check_input.name_the_run(self, job_name_prefix, work_uri_prefix, then=resolve_model),
        )
        end_uncaught_sdk_errors(self)

        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            definition_body=sfn.DefinitionBody.from_chainable(start),
            timeout=cdk.Duration.seconds(execution_timeout_seconds(defaults.max_runtime_seconds)),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "Logs", retention=logs.RetentionDays.SIX_MONTHS, removal_policy=cdk.RemovalPolicy.DESTROY),
                level=sfn.LogLevel.ALL,
            ),
        )
        self._grant(stack, job_name_prefix, processing_role, package_arns, key)

    def _grant(self, stack: cdk.Stack, job_name_prefix: str, processing_role: iam.IRole, package_arns: list[str], key: kms.IKey) -> None:
        """What the three `.sync` jobs need; the model lookups bring their own statements."""
        role = self.state_machine.role
        jobs_arn = stack.format_arn(service="sagemaker", resource="processing-job", resource_name=f"{job_name_prefix}-*")
        # `.sync` learns that a job ended from an EventBridge rule Step Functions manages in the account.
        managed_rule = stack.format_arn(service="events", resource="rule", resource_name="StepFunctionsGetEventsForSageMakerProcessingJobsRule")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RunThisWorkflowsProcessingJobs",
                # StopProcessingJob: Step Functions stops the running job when the execution is stopped.
                # ListTags: every policy Step Functions generates for a `.sync` SageMaker job has it.
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:AddTags",
                    "sagemaker:ListTags",
                ],
                resources=[jobs_arn],
            )
        )
        # The jobs' volumes are encrypted with the key: SageMaker describes it and creates a grant on it as
        # the caller, for the job's volumes only.
        via_sagemaker = {"kms:ViaService": f"sagemaker.{stack.region}.amazonaws.com"}
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="DescribeTheJobsKey", actions=["kms:DescribeKey"], resources=[key.key_arn], conditions={"StringEquals": via_sagemaker})
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="LetSageMakerEncryptJobVolumes",
                actions=["kms:CreateGrant"],
                resources=[key.key_arn],
                conditions={"StringEquals": via_sagemaker, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="HearWhenJobsEnd",
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[managed_rule],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassTheProcessingRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[processing_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        acknowledge_wildcard_resources(role, [jobs_arn], "Processing jobs are named per execution under this environment's prefix.")
        acknowledge_wildcard_resources(role, package_arns, "Any version of this environment's model package groups, read-only.")
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "sagemaker:ListModelPackages, sagemaker:ListProcessingJobs and the X-Ray and log-delivery actions Step Functions uses "
            "have no resource-level permissions.",
        )
