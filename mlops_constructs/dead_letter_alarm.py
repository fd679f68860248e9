"""An alarm on a dead-letter queue: any message in it means something that should have happened did not."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# SQS sends its metrics every minute; the largest count in five minutes catches a message however briefly visible.
PERIOD = cdk.Duration.minutes(5)


def dead_letter_alarm(scope: Construct, construct_id: str, *, queue: sqs.IQueue, alarm_name: str, what_failed: str) -> cloudwatch.Alarm:
    """ALARM while `queue` holds a visible message. The operations stack's alarm rule hands its state changes
    to the notify function, as it does every alarm of the environment, so the alarm reaches people by name."""
    return cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_name=alarm_name,
        alarm_description=(
            f"messages in the dead-letter queue of {what_failed}: each is an event that was never acted on. "
            "They stay 14 days; read them in the SQS console, fix the cause, then redrive or delete them"
        ),
        metric=queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        # An idle, empty queue sends no data.
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
