"""Starts a SageMaker pipeline when an object lands under a prefix of a bucket."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops_constructs.compliance import acknowledge


class S3UploadPipelineTrigger(Construct):
    """An EventBridge rule: ``Object Created`` in `bucket` under `prefix` ending in `suffix` starts the
    pipeline with `parameters`.

    The bucket must send its events to EventBridge. The rule targets the pipeline directly (no Lambda in
    between); targets pass static parameter values, so the pipeline is given the prefix, not the object.
    Events EventBridge cannot deliver after its retries land in a dead-letter queue.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        prefix: str,
        suffix: str,
        pipeline_arn: str,
        parameters: dict[str, str],
        retry_attempts: int = 8,
        max_event_age: cdk.Duration = cdk.Duration.hours(2),
    ) -> None:
        super().__init__(scope, construct_id)
        self.event_pattern = {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {
                "bucket": {"name": [bucket.bucket_name]},
                "object": {"key": [{"wildcard": f"{prefix}*{suffix}"}]},
            },
        }

        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("events.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn]))

        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(self.dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the rule.")

        self.rule = events.CfnRule(
            self,
            "Rule",
            description=f"Start a SageMaker pipeline when an object matching {prefix}*{suffix} is created",
            event_pattern=self.event_pattern,
            state="ENABLED",
            targets=[
                events.CfnRule.TargetProperty(
                    id="Pipeline",
                    arn=pipeline_arn,
                    role_arn=role.role_arn,
                    sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
                        pipeline_parameter_list=[
                            events.CfnRule.SageMakerPipelineParameterProperty(name=name, value=value)
                            for name, value in parameters.items()
                        ]
                    ),
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_retry_attempts=retry_attempts,
                        maximum_event_age_in_seconds=max_event_age.to_seconds(),
                    ),
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
                )
            ],
        )
        self.dead_letters.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"],
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                resources=[self.dead_letters.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.rule.attr_arn}},
            )
        )
