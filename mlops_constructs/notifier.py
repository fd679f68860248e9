"""Readable notifications: one function writes every message and publishes it to an encrypted topic."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources
from mlops_constructs.dead_letter_alarm import dead_letter_alarm
from mlops_constructs.function_code import platform_function



@dataclass(frozen=True)
class NotifiedModel:
    """A model whose reviews and deployments the notifications tell of: its name, group, deployer and endpoint."""

    name: str
    group: str
    deployer: str
    endpoint: str


class Notifier(Construct):
    """The notify function (`functions/notify/`), which turns events into messages on `topic`.

    `notify_on` adds an EventBridge rule whose events it writes up; `send_digest` has EventBridge Scheduler
    ask it for a digest of the last 24 hours; `post_to_slack` has AWS Chatbot post the topic's messages to a
    Slack channel. Events a rule cannot deliver (8 retries within 2 hours) and invocations that fail twice
    more end in one dead-letter queue (14 days). The function reads what a message needs: pipeline runs and
    their steps, model packages, their evaluation reports (through `reports_policy`), and the deployer's
    executions.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        environment: str,
        topic: sns.ITopic,
        key: kms.IKey,
        pipeline_names: list[str],
        models: list[NotifiedModel],
        reports_policy: iam.IManagedPolicy,
        batch_workflow: str,
        top_features: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self._prefix, self._topic = prefix, topic
        self._retry = {"retry_attempts": 8, "max_event_age": cdk.Duration.hours(2)}
        self.dead_letters = sqs.Queue(self, "DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=cdk.Duration.days(14))
        acknowledge(self.dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the notifications.")
        self.dead_letter_alarm_name = f"{prefix}-notification-dead-letters"
        dead_letter_alarm(self, "DeadLettersAlarm", queue=self.dead_letters, alarm_name=self.dead_letter_alarm_name, what_failed=f"the {prefix} notifications")

        self.pipeline_arns = [stack.format_arn(service="sagemaker", resource="pipeline", resource_name=name) for name in pipeline_names]
        executions = [f"{arn}/execution/*" for arn in self.pipeline_arns]
        packages = [stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{model.group.lower()}/*") for model in models]
        deployer_arns = [
            stack.format_arn(service="states", resource="stateMachine", resource_name=model.deployer, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME) for model in models
        ]
        deployments = [
            stack.format_arn(service="states", resource="execution", resource_name=f"{model.deployer}:*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
            for model in models
        ]
        self.batch_workflow_arn = stack.format_arn(
            service="states", resource="stateMachine", resource_name=batch_workflow, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )
        batch_runs = stack.format_arn(service="states", resource="execution", resource_name=f"{batch_workflow}:*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)

        role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=f"{prefix}: the notify function", managed_policies=[reports_policy]
        )
        statements = [
            # Not topic.grant_publish(): for an encrypted topic it also grants the key directly, not only through SNS.
            ("PublishToTheTopic", ["sns:Publish"], [topic.topic_arn]),
            ("ReadPipelineRuns", ["sagemaker:ListPipelineExecutions"], self.pipeline_arns),
            ("ReadPipelineRunSteps", ["sagemaker:ListPipelineExecutionSteps", "sagemaker:DescribePipelineExecution"], executions),
            ("ReadModelPackages", ["sagemaker:DescribeModelPackage"], packages),
            # ListModelPackages has no resource-level permissions.
            ("ListModelPackages", ["sagemaker:ListModelPackages"], ["*"]),
            ("ListDeployments", ["states:ListExecutions"], deployer_arns),
            ("ReadDeployments", ["states:DescribeExecution"], deployments),
            # A batch run's failure event may come without its reason; the run's description has it.
            ("ReadBatchRuns", ["states:DescribeExecution"], [batch_runs]),
        ]
        for sid, actions, resources in statements:
            role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))
        # SNS encrypts each message with the topic's key as the publisher.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishToTheEncryptedTopic",
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sns.{stack.region}.amazonaws.com"}},
            )
        )
        acknowledge_wildcard_resources(
            role, [*executions, *packages, *deployments, batch_runs], "Every run, package version, deployment or batch run of this environment, and no other."
        )
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "sagemaker:ListModelPackages has no resource-level permissions.")
        acknowledge(role, "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "What SNS needs of a publisher to an encrypted topic; only through SNS and only on this key.")

        self.function = platform_function(
            self,
            "Function",
            folder="notify",
            description="Writes one readable message per training run, model review and deployment, and the daily digest",
            role=role,
            timeout=cdk.Duration.seconds(60),
            retry_attempts=2,
            dead_letter_queue=self.dead_letters,
            environment={
                "TOPIC_ARN": topic.topic_arn,
                "PREFIX": prefix,
                "ENVIRONMENT": environment,
                "PIPELINES": stack.to_json_string(pipeline_names),
                # The first model's; the environment's other models, if any, in OTHER_MODELS.
                "MODEL_PACKAGE_GROUP": models[0].group,
                "DEPLOYER_ARN": deployer_arns[0],
                "ENDPOINT_NAME": models[0].endpoint,
                "TOP_FEATURES": str(top_features),
                **(
                    {
                        "MODEL_NAME": models[0].name,
                        "OTHER_MODELS": stack.to_json_string(
                            [{"name": model.name, "group": model.group, "deployer": arn, "endpoint": model.endpoint} for model, arn in zip(models[1:], deployer_arns[1:])]
                        ),
                    }
                    if len(models) > 1
                    else {}
                ),
            },
            log_group=logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY),
        )
        self.function.log_group.grant_write(role)
        self.rules: dict[str, events.Rule] = {}

    def notify_on(
        self, name: str, description: str, pattern: events.EventPattern, rule_name: str | None = None, event_bus: events.IEventBus | None = None
    ) -> events.Rule:
        """Write up every event matching `pattern` on `event_bus` (the default bus unless given); `rule_name`
        names the rule where something else (an alarm) refers to it."""
        rule = events.Rule(
            self,
            name,
            rule_name=rule_name,
            description=description,
            event_pattern=pattern,
            event_bus=event_bus,
            targets=[targets.LambdaFunction(self.function, dead_letter_queue=self.dead_letters, **self._retry)],
        )
        self.rules[name] = rule
        return rule

    def send_digest(self, expression: str) -> scheduler.CfnSchedule:
        """A digest of the last 24 hours on `expression` (rate or cron, in UTC)."""
        stack = cdk.Stack.of(self)
        role = iam.Role(
            self,
            "DigestRole",
            description=f"{self._prefix}: EventBridge Scheduler asks for the daily digest",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}),
        )
        role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn]))
        schedule = scheduler.CfnSchedule(
            self,
            "Digest",
            name=f"{self._prefix}-daily-digest",
            description=f"Sends the {self._prefix} digest of the last 24 hours on {expression}",
            schedule_expression=expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn,
                role_arn=role.role_arn,
                input='{"digest": true}',
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=8, maximum_event_age_in_seconds=7200),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
            ),
        )
        # The role's permissions must exist before Scheduler first assumes it.
        schedule.node.add_dependency(role)
        return schedule

    def post_to_slack(self, workspace_id: str, channel_id: str, alarm_name_prefix: str) -> chatbot.SlackChannelConfiguration:
        """AWS Chatbot posts every message of the topic to a Slack channel.

        Chatbot's channel role and the channel's guardrail allow nothing but reading this environment's
        alarms (so Chatbot can chart an alarm it posts): nobody in the channel can act on the account
        through Chatbot.
        """
        stack = cdk.Stack.of(self)
        alarms = stack.format_arn(service="cloudwatch", resource="alarm", resource_name=f"{alarm_name_prefix}*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        read_alarms = [
            iam.PolicyStatement(sid="ReadThisEnvironmentsAlarms", actions=["cloudwatch:DescribeAlarms"], resources=[alarms]),
            # GetMetricData has no resource-level permissions.
            iam.PolicyStatement(sid="ChartAlarmMetrics", actions=["cloudwatch:GetMetricData"], resources=["*"]),
        ]
        guardrail = iam.ManagedPolicy(self, "SlackGuardrail", description=f"{self._prefix}: the most anyone may do through the Slack channel", statements=read_alarms)
        role = iam.Role(self, "SlackChannelRole", assumed_by=iam.ServicePrincipal("chatbot.amazonaws.com"), description=f"{self._prefix}: AWS Chatbot's Slack channel")
        for statement in read_alarms:
            role.add_to_policy(statement)
        for scope in (guardrail, role):
            acknowledge_wildcard_resources(scope, [alarms], "This environment's alarms, and no other.")
            acknowledge(scope, "AwsSolutions-IAM5[Resource::*]", "cloudwatch:GetMetricData has no resource-level permissions.")
        return chatbot.SlackChannelConfiguration(
            self,
            "Slack",
            slack_channel_configuration_name=f"{self._prefix}-notifications",
            slack_workspace_id=workspace_id,
            slack_channel_id=channel_id,
            notification_topics=[self._topic],
            guardrail_policies=[guardrail],
            role=role,
        )
