"""What starts the pipelines of a stack: uploads, in bursts, or a schedule; failed starts end in one dead-letter queue."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops_constructs.compliance import acknowledge
from mlops_constructs.dead_letter_alarm import dead_letter_alarm
from mlops_constructs.function_code import platform_function

# EventBridge Scheduler's limit on schedule names (botocore's model; a unit test compares). Schedules are
# named after the pipeline folder they start.
SCHEDULE_NAME_MAX_LENGTH = 64


class PipelineTriggers(Construct):
    """Starts pipelines on uploads (`start_on_upload`) or on a schedule (`start_on_schedule`).

    Uploads: an EventBridge rule per pipeline on the bucket's ``Object Created`` events invokes a debounce
    function, which moves a one-time EventBridge Scheduler schedule to ``quiet_seconds`` after each upload
    (but never beyond ``max_wait_seconds`` after the burst's first); when it comes due, the schedule starts
    the pipeline once, with the prefix as its input, and deletes itself. Schedules start their pipeline with its default parameters. Every start
    goes through Scheduler as one role that may only start these pipelines, with retries, and whatever
    cannot be delivered (rule to function, function failures, Scheduler to SageMaker) lands in one
    dead-letter queue. Schedules live in the group ``<prefix>-pipelines``, named after the pipeline folder.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        retry_attempts: int = 8,
        max_event_age: cdk.Duration = cdk.Duration.hours(2),
    ) -> None:
        super().__init__(scope, construct_id)
        self._stack = cdk.Stack.of(self)
        self._retry_policy = {"maximum_retry_attempts": retry_attempts, "maximum_event_age_in_seconds": max_event_age.to_seconds()}

        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(self.dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the pipeline starts.")
        self.dead_letter_alarm_name = f"{prefix}-pipeline-start-dead-letters"
        dead_letter_alarm(self, "DeadLettersAlarm", queue=self.dead_letters, alarm_name=self.dead_letter_alarm_name, what_failed=f"the {prefix} pipeline starts")
        self.schedule_group = scheduler.CfnScheduleGroup(self, "Schedules", name=f"{prefix}-pipelines")
        self.start_role = iam.Role(
            self,
            "StartRole",
            description=f"{prefix}: EventBridge Scheduler starts the pipelines",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self._stack.account}}),
        )
        self.start_role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn]))
        self.rules: dict[str, events.CfnRule] = {}
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        self._uploads: dict[str, dict] = {}
        self._debounce: lambda_.Function | None = None

    def start_on_upload(
        self,
        pipeline: str,
        *,
        pipeline_arn: str,
        bucket: s3.IBucket,
        prefix: str,
        suffix: str,
        quiet_seconds: int,
        max_wait_seconds: int,
        parameters: dict[str, str],
    ) -> None:
        """Start `pipeline` with `parameters` once objects created under `prefix` ending in `suffix` have been
        quiet for `quiet_seconds`, or `max_wait_seconds` after the first of uploads that never pause."""
        self._may_start(pipeline_arn)
        debounce = self._debounce_function()
        self._uploads[pipeline] = {
            "arn": pipeline_arn,
            "parameters": parameters,
            "quiet_seconds": quiet_seconds,
            "max_wait_seconds": max_wait_seconds,
        }
        debounce.add_environment("PIPELINES", self._stack.to_json_string(dict(self._uploads)))
        debounce.add_to_role_policy(
            iam.PolicyStatement(
                actions=["scheduler:GetSchedule", "scheduler:CreateSchedule", "scheduler:UpdateSchedule"],
                resources=[
                    self._stack.format_arn(service="scheduler", resource="schedule", resource_name=f"{self.schedule_group.name}/{pipeline}")
                ],
            )
        )
        rule = events.CfnRule(
            self,
            f"Upload-{pipeline}",
            description=f"Uploads matching {prefix}*{suffix} start pipeline {pipeline} once they have been quiet for {quiet_seconds} s",
            event_pattern={
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [bucket.bucket_name]}, "object": {"key": [{"wildcard": f"{prefix}*{suffix}"}]}},
            },
            state="ENABLED",
            targets=[
                events.CfnRule.TargetProperty(
                    id="Debounce",
                    arn=debounce.function_arn,
                    input_transformer=events.CfnRule.InputTransformerProperty(
                        input_paths_map={"key": "$.detail.object.key"},
                        input_template=f'{{"pipeline": "{pipeline}", "key": <key>}}',
                    ),
                    retry_policy=events.CfnRule.RetryPolicyProperty(**self._retry_policy),
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
                )
            ],
        )
        debounce.add_permission(
            f"InvokedByUpload-{pipeline}", principal=iam.ServicePrincipal("events.amazonaws.com"), source_arn=rule.attr_arn
        )
        self.dead_letters.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"],
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                resources=[self.dead_letters.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule.attr_arn}},
            )
        )
        self.rules[pipeline] = rule

    def start_on_schedule(self, pipeline: str, *, pipeline_arn: str, expression: str) -> None:
        """Start `pipeline` with its default parameters on `expression` (rate or cron, in UTC)."""
        self._may_start(pipeline_arn)
        schedule = scheduler.CfnSchedule(
            self,
            f"Schedule-{pipeline}",
            name=pipeline,
            group_name=self.schedule_group.name,
            description=f"Starts pipeline {pipeline} on {expression}",
            schedule_expression=expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=pipeline_arn,
                role_arn=self.start_role.role_arn,
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(**self._retry_policy),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
            ),
        )
        schedule.add_dependency(self.schedule_group)
        # The role's permissions must exist before Scheduler first assumes it.
        schedule.node.add_dependency(self.start_role)
        self.schedules[pipeline] = schedule

    def _may_start(self, pipeline_arn: str) -> None:
        self.start_role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn]))

    def _debounce_function(self) -> lambda_.Function:
        if self._debounce is not None:
            return self._debounce
        role = iam.Role(self, "DebounceRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.start_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )
        self._debounce = platform_function(
            self,
            "Debounce",
            folder="upload_debounce",
            description="Moves a pipeline's one-time start schedule to a quiet period after each upload",
            role=role,
            timeout=cdk.Duration.seconds(30),
            retry_attempts=2,
            dead_letter_queue=self.dead_letters,
            environment={
                "SCHEDULE_GROUP": self.schedule_group.name,
                "START_ROLE_ARN": self.start_role.role_arn,
                "DEAD_LETTER_QUEUE_ARN": self.dead_letters.queue_arn,
                "RETRY_ATTEMPTS": str(self._retry_policy["maximum_retry_attempts"]),
                "MAX_EVENT_AGE_SECONDS": str(self._retry_policy["maximum_event_age_in_seconds"]),
            },
            log_group=logs.LogGroup(self, "DebounceLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY),
        )
        self._debounce.log_group.grant_write(role)
        return self._debounce
