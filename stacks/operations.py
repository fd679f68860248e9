"""Operations: what people are told without asking, in one format across the platform.

Training runs (succeeded, failed, stopped) of this environment's pipelines, reviews of its model packages
(registered, approved, rejected), what the canary deployer did, its alarms and the dead-letter queues' going
into and out of ALARM, batch inference runs that failed, timed out or were stopped, and
data-quality runs that found violations reach the deployment stack's topic as messages written by one function, with the model's numbers and console links; from the topic they go to
the e-mail addresses in config and, optionally, a Slack channel. An optional daily digest sums up the last
24 hours.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from config.settings import Notifications
from mlops_constructs.notifier import NotifiedModel, Notifier
from stacks.deployment import ModelServing

PIPELINE_EVENT = "SageMaker Model Building Pipeline Execution Status Change"
PACKAGE_EVENT = "SageMaker Model Package State Change"
ALARM_EVENT = "CloudWatch Alarm State Change"
BATCH_RUN_EVENT = "Step Functions Execution Status Change"


class OperationsStack(cdk.Stack):
    """The notify function, the rules that feed it, the subscriptions of the topic and the optional digest and Slack channel."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        environment: str,
        notifications: Notifications,
        topic: sns.ITopic,
        key: kms.IKey,
        evaluation_reports_policy: iam.IManagedPolicy,
        pipeline_names: list[str],
        models: list[ModelServing],
        batch_workflow_name: str,
        alarm_names: list[str],
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.notifier = Notifier(
            self,
            "Notifier",
            prefix=prefix,
            environment=environment,
            topic=topic,
            key=key,
            pipeline_names=pipeline_names,
            models=[NotifiedModel(name=served.model.name, group=served.model_package_group_name, deployer=served.deployer_name, endpoint=served.endpoint_name) for served in models],
            reports_policy=evaluation_reports_policy,
            batch_workflow=batch_workflow_name,
            top_features=notifications.top_features,
        )
        self.notifier.notify_on(
            "PipelineRuns",
            f"Tell people how each run of the {prefix} pipelines ended",
            events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_EVENT],
                detail={"pipelineArn": self.notifier.pipeline_arns, "currentPipelineExecutionStatus": ["Succeeded", "Failed", "Stopped"]},
            ),
        )
        groups = [served.model_package_group_name for served in models]
        self.notifier.notify_on(
            "ModelReviews",
            f"Tell people when a model of {', '.join(groups)} is registered, approved or rejected",
            events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PACKAGE_EVENT],
                detail={"ModelPackageGroupName": groups, "ModelApprovalStatus": ["PendingManualApproval", "Approved", "Rejected"]},
            ),
        )
        for served in models:
            # Each deployer announces on a bus of its own. The model that keeps the environment's names keeps its rules' IDs.
            self.notifier.notify_on(
                "Deployments" if served.model.environment_names else f"Deployments-{served.model.name}",
                f"Tell people what the {served.deployer_name} did and when it needs approval",
                served.deployer.event_pattern,
                event_bus=served.deployer.event_bus,
            )
        self.notifier.notify_on(
            "Alarms",
            f"Tell people when an alarm of {', '.join(served.endpoint_name for served in models)} or a dead-letter queue of {prefix} goes into or out of ALARM",
            events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[ALARM_EVENT],
                account=[self.account],
                # Into ALARM, and out of it; not the OK a new alarm settles into.
                detail={
                    "alarmName": [*alarm_names, self.notifier.dead_letter_alarm_name],
                    "$or": [{"state": {"value": ["ALARM"]}}, {"previousState": {"value": ["ALARM"]}}],
                },
            ),
        )
        self.notifier.notify_on(
            "BatchRuns",
            f"Tell people when a run of {batch_workflow_name} fails, times out or is stopped",
            events.EventPattern(
                source=["aws.states"],
                detail_type=[BATCH_RUN_EVENT],
                detail={"stateMachineArn": [self.notifier.batch_workflow_arn], "status": ["FAILED", "TIMED_OUT", "ABORTED"]},
            ),
        )
        for served in (served for served in models if served.monitor):
            self.notifier.notify_on(
                "DataQualityViolations" if served.model.environment_names else f"DataQualityViolations-{served.model.name}",
                f"Tell people what a data-quality run of {served.endpoint_name} found",
                served.monitor.violations_pattern,
                rule_name=served.monitor.violations_rule_name,
            )

        for address in notifications.emails:
            # Named by the address, so editing the list leaves the other subscriptions (and their confirmations) alone.
            sns.Subscription(self, f"Email-{address}", topic=topic, protocol=sns.SubscriptionProtocol.EMAIL, endpoint=address)
        if notifications.daily_digest:
            self.notifier.send_digest(notifications.daily_digest)
        if notifications.slack:
            self.notifier.post_to_slack(notifications.slack.workspace_id, notifications.slack.channel_id, alarm_name_prefix=f"{prefix}-")
