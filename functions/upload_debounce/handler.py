"""One pipeline execution per burst of uploads (boto3 only).

The pipeline's EventBridge rule invokes this for every object created under its prefix, with
``{"pipeline": <folder>, "key": <object key>}``. Starting the pipeline is left to a one-time EventBridge
Scheduler schedule per pipeline, ``at(now + quiet period)``, that deletes itself once it has fired: each
upload moves that schedule to a quiet period after itself, so a burst starts the pipeline once, a quiet
period after its last upload, over the whole prefix. Uploads that never pause would postpone it forever,
so no start is put off beyond the maximum wait after the burst's first upload, which the schedule's
description records. Scheduler owns the start's retries and dead letters.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re

import boto3
from botocore.config import Config

logger = logging.getLogger()
logger.setLevel(logging.INFO)

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 6})
# Clients by service and region, built once per container: Lambda reuses a container between invocations,
# and building a client costs more than most of the calls it makes.
_clients = {}


def now() -> datetime.datetime:
    """The current time; the tests replace it to drive time themselves."""
    return datetime.datetime.now(datetime.UTC)


def handler(event: dict, context: object) -> dict:
    scheduler = _client("scheduler")
    name = event["pipeline"]
    pipeline = json.loads(os.environ["PIPELINES"])[name]
    group, current = os.environ["SCHEDULE_GROUP"], now()
    burst_started = _burst_started(scheduler, group, name, current)
    start_at = min(
        current + datetime.timedelta(seconds=pipeline["quiet_seconds"]),
        burst_started + datetime.timedelta(seconds=pipeline["max_wait_seconds"]),
    )
    schedule = {
        "GroupName": group,
        "Name": name,
        "Description": f"Starts {name} {pipeline['quiet_seconds']} s after the last upload under its prefix; burst started {burst_started.isoformat()}",
        "ScheduleExpression": f"at({start_at:%Y-%m-%dT%H:%M:%S})",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "Target": {
            "Arn": pipeline["arn"],
            "RoleArn": os.environ["START_ROLE_ARN"],
            "SageMakerPipelineParameters": {
                "PipelineParameterList": [{"Name": key, "Value": value} for key, value in pipeline["parameters"].items()]
            },
            "RetryPolicy": {
                "MaximumRetryAttempts": int(os.environ["RETRY_ATTEMPTS"]),
                "MaximumEventAgeInSeconds": int(os.environ["MAX_EVENT_AGE_SECONDS"]),
            },
            "DeadLetterConfig": {"Arn": os.environ["DEAD_LETTER_QUEUE_ARN"]},
        },
    }
    # Most uploads belong to a burst whose schedule exists, so updating comes first.
    try:
        scheduler.update_schedule(**schedule)
    except scheduler.exceptions.ResourceNotFoundException:
        try:
            scheduler.create_schedule(**schedule)
        except scheduler.exceptions.ConflictException:
            # A concurrent upload of the same burst created it first.
            scheduler.update_schedule(**schedule)
    logger.info("upload %s: %s starts at %s UTC unless more uploads follow", event.get("key"), name, start_at.isoformat())
    return {"pipeline": name, "startAt": start_at.isoformat()}


def _burst_started(scheduler, group: str, name: str, current: datetime.datetime) -> datetime.datetime:
    """When the burst this upload belongs to began: `current`, unless a start is still pending."""
    try:
        pending = scheduler.get_schedule(GroupName=group, Name=name)
    except scheduler.exceptions.ResourceNotFoundException:
        return current
    due = re.fullmatch(r"at\((.+)\)", pending["ScheduleExpression"])
    started = re.search(r"burst started (\S+)$", pending.get("Description", ""))
    # A schedule that has fired but is not deleted yet belongs to the previous burst.
    if not (due and started) or datetime.datetime.fromisoformat(due[1]).replace(tzinfo=datetime.UTC) <= current:
        return current
    return datetime.datetime.fromisoformat(started[1])


def _client(service: str):
    """The container's client of `service` in the function's region."""
    region = os.environ.get("AWS_REGION")
    if (service, region) not in _clients:
        _clients[(service, region)] = boto3.client(service, region_name=region, config=_RETRIES)
    return _clients[(service, region)]
