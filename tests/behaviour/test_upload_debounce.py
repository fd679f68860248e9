"""A burst of uploads starts one pipeline execution: the upload rule, the debounce function and EventBridge
Scheduler, as synthesized for dev, against moto, with time driven by the test.

moto stores schedules but never fires them; `Scheduler` plays EventBridge Scheduler's part: when the test
moves the clock past a one-time schedule's ``at()``, the schedule starts its target pipeline with the
target's parameters and, with ``ActionAfterCompletion: DELETE``, deletes itself.
"""

from __future__ import annotations

import copy
import datetime
import importlib.util
import json
import re
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore import xform_name
from moto import mock_aws
from moto.events.models import EventPattern

from tests.behaviour import iam_calls
from tests.behaviour.iam_calls import WorldNames
from tests.behaviour.sfn_harness import Call
from tests.permissions import EnvironmentPolicies, Request
from tests.synth import Synthesized
from tests.templates import cfn_text
from tests.unit.test_model_build import debounce_function, s3_object_created, upload_rule

ACCOUNT = "123456789012"
REGION = "eu-west-1"
DATA_BUCKET = "mlops-dev-trainingdata-1a2b3c"
START = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=datetime.UTC)

_HANDLER_PATH = Path(__file__).parents[2] / "functions" / "upload_debounce" / "handler.py"
_spec = importlib.util.spec_from_file_location("upload_debounce_handler", _HANDLER_PATH)
handler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handler)
# Each test in a container of its own: the function keeps its clients for a container's life.
pytestmark = pytest.mark.usefixtures("new_container")


def _physical(template: dict, text: str) -> str:
    """`text` with dev's CloudFormation references replaced by what they would name in the account."""

    def name(match: re.Match) -> str:
        logical_id, attribute = match[1], match[2]
        resource = template["Resources"].get(logical_id, {})
        if attribute == "PipelineArn":
            return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{resource['Properties']['PipelineName']}"
        if resource.get("Type") == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"
        if resource.get("Type") == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical_id}"
        if "TrainingData" in logical_id:
            return DATA_BUCKET
        raise KeyError(f"no stand-in for <{match[0]}>")

    return re.sub(r"<(\w+)(?:\.(\w+))?>", name, text)


class Scheduler:
    """EventBridge Scheduler's one-time schedules of a group, firing when the test's clock passes them."""

    def __init__(self, group: str) -> None:
        self.group, self.now = group, START
        self.scheduler, self.sagemaker = boto3.client("scheduler", region_name=REGION), boto3.client("sagemaker", region_name=REGION)

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)
        for summary in self.scheduler.list_schedules(GroupName=self.group)["Schedules"]:
            schedule = self.scheduler.get_schedule(GroupName=self.group, Name=summary["Name"])
            due = datetime.datetime.fromisoformat(re.fullmatch(r"at\((.+)\)", schedule["ScheduleExpression"])[1]).replace(tzinfo=datetime.UTC)
            if due <= self.now:
                target = schedule["Target"]
                self.sagemaker.start_pipeline_execution(
                    PipelineName=target["Arn"].rsplit("/", 1)[1],
                    PipelineParameters=target["SageMakerPipelineParameters"]["PipelineParameterList"],
                )
                if schedule.get("ActionAfterCompletion") == "DELETE":
                    self.scheduler.delete_schedule(GroupName=self.group, Name=summary["Name"])


class World:
    """dev's upload path for the training pipeline: rule, debounce function, Scheduler and the pipeline."""

    def __init__(self, template: dict, monkeypatch) -> None:
        rule = upload_rule(template, "training")
        pattern = copy.deepcopy(rule["EventPattern"])
        pattern["detail"]["bucket"]["name"] = [DATA_BUCKET]
        self.pattern = EventPattern.load(json.dumps(pattern))
        (self.target,) = rule["Targets"]
        for variable, value in debounce_function(template)[1]["Environment"]["Variables"].items():
            monkeypatch.setenv(variable, _physical(template, cfn_text(value)))
        self.group = handler.os.environ["SCHEDULE_GROUP"]
        boto3.client("scheduler", region_name=REGION).create_schedule_group(Name=self.group)
        self.pipeline_name = json.loads(handler.os.environ["PIPELINES"])["training"]["arn"].rsplit("/", 1)[1]
        boto3.client("sagemaker", region_name=REGION).create_pipeline(
            PipelineName=self.pipeline_name,
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Parameters": [{"Name": "InputDataUri", "Type": "String"}], "Steps": []}),
        )
        self.scheduler = Scheduler(self.group)
        monkeypatch.setattr(handler, "now", lambda: self.scheduler.now)

    def upload(self, key: str) -> None:
        """S3 sends Object Created to EventBridge; a matching rule invokes the debounce function with its input."""
        event = s3_object_created(DATA_BUCKET, key)
        if self.pattern.matches_event(event):
            transformer = self.target["InputTransformer"]
            payload = transformer["InputTemplate"]
            for name, path in transformer["InputPathsMap"].items():
                value = event
                for part in path.removeprefix("$.").split("."):
                    value = value[part]
                payload = payload.replace(f"<{name}>", json.dumps(value))
            handler.handler(json.loads(payload), None)

    def executions(self) -> list[dict[str, str]]:
        """The parameters of every execution of the training pipeline, oldest first."""
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        summaries = sagemaker.list_pipeline_executions(PipelineName=self.pipeline_name)["PipelineExecutionSummaries"]
        return [
            {p["Name"]: p["Value"] for p in sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=s["PipelineExecutionArn"])["PipelineParameters"]}
            for s in sorted(summaries, key=lambda s: s["StartTime"])
        ]


@pytest.fixture
def world(synthesized: Synthesized, aws_env, monkeypatch):
    with mock_aws():
        yield World(synthesized.template("dev", "model-build"), monkeypatch)


def test_fifty_uploads_within_the_quiet_period_start_one_execution_over_the_prefix(world):
    for number in range(50):
        world.upload(f"training/2026/11/25/batch-{number:04d}.csv")
        world.scheduler.advance(5)
    world.scheduler.advance(300)

    assert world.executions() == [{"InputDataUri": f"s3://{DATA_BUCKET}/training/"}]


def test_the_burst_starts_the_pipeline_a_quiet_period_after_its_last_upload(world):
    for number in range(10):
        world.upload(f"training/batch-{number:04d}.csv")
        world.scheduler.advance(60)
    world.scheduler.advance(300 - 60 - 1)
    before = len(world.executions())
    world.scheduler.advance(1)

    assert (before, len(world.executions())) == (0, 1)


def test_uploads_further_apart_than_the_quiet_period_start_one_execution_each(world):
    world.upload("training/monday.csv")
    world.scheduler.advance(301)
    world.upload("training/tuesday.csv")
    world.scheduler.advance(301)

    assert world.executions() == [{"InputDataUri": f"s3://{DATA_BUCKET}/training/"}] * 2


def test_uploads_that_never_pause_start_the_pipeline_an_hour_after_the_first(world):
    started = []
    for number in range(61):
        world.upload(f"training/stream-{number:04d}.csv")
        world.scheduler.advance(60)
        started.append(len(world.executions()))

    assert started.index(1) == 59  # the upload at minute 59, then a minute on: 3600 s after the first


def test_uploads_the_rule_does_not_match_start_nothing(world):
    world.upload("scoring/batch.csv")
    world.upload("training/batch.parquet")
    world.scheduler.advance(3600)

    assert world.executions() == []


def test_the_start_retries_and_dead_letters_as_the_function_is_configured_to(world):
    world.upload("training/batch.csv")
    (summary,) = boto3.client("scheduler", region_name=REGION).list_schedules(GroupName=world.group)["Schedules"]
    target = boto3.client("scheduler", region_name=REGION).get_schedule(GroupName=world.group, Name=summary["Name"])["Target"]

    assert target["DeadLetterConfig"] == {"Arn": handler.os.environ["DEAD_LETTER_QUEUE_ARN"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == int(handler.os.environ["RETRY_ATTEMPTS"]) > 0
    assert target["RoleArn"] == handler.os.environ["START_ROLE_ARN"]


def test_an_upload_racing_another_that_creates_the_schedule_first_moves_it(world, monkeypatch):
    real_client = handler.boto3.client

    def client_losing_the_race(service, **kwargs):
        client = real_client(service, **kwargs)
        real_create = client.create_schedule

        def create_after_a_concurrent_upload(**schedule):
            real_client("scheduler", region_name=REGION).create_schedule(**{**schedule, "ScheduleExpression": "at(2026-11-25T10:04:00)"})
            return real_create(**schedule)

        client.create_schedule = create_after_a_concurrent_upload
        return client

    monkeypatch.setattr(handler.boto3, "client", client_losing_the_race)
    world.upload("training/batch.csv")

    (summary,) = boto3.client("scheduler", region_name=REGION).list_schedules(GroupName=world.group)["Schedules"]
    schedule = boto3.client("scheduler", region_name=REGION).get_schedule(GroupName=world.group, Name=summary["Name"])
    assert schedule["ScheduleExpression"] == "at(2026-11-25T10:05:00)"


def test_every_call_of_a_burst_is_allowed_to_the_synthesized_role_on_its_pipeline_schedule(world, synthesized: Synthesized, monkeypatch):
    calls: list[Call] = []
    session = boto3.Session(region_name=REGION)
    session.events.register(
        "before-parameter-build",
        lambda params, model, **_: calls.append(Call("upload debounce", model.service_model.service_name, xform_name(model.name), dict(params))),
    )
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=session.client))
    world.upload("training/part-1.csv")
    world.scheduler.advance(60)
    world.upload("training/part-2.csv")
    policies = EnvironmentPolicies(synthesized, "dev")
    (function_id, function) = debounce_function(policies.templates["model-build"])
    caller = policies.resolve("model-build", function["Role"])

    decided = policies.decide([r for call in calls for r in iam_calls.requests(call, caller, WorldNames(policies, "model-build", REGION))])

    assert [call.operation for call in calls] == ["get_schedule", "update_schedule", "create_schedule", "get_schedule", "update_schedule"]
    assert [d.explain() for d in decided if not d.allowed] == [], function_id


def test_the_debounce_role_may_not_schedule_another_pipeline_or_pass_its_start_role_elsewhere(world, synthesized: Synthesized):
    policies = EnvironmentPolicies(synthesized, "dev")
    _, function = debounce_function(policies.templates["model-build"])
    caller = policies.resolve("model-build", function["Role"])
    group = handler.os.environ["SCHEDULE_GROUP"]
    start_role = WorldNames(policies, "model-build", REGION)(handler.os.environ["START_ROLE_ARN"])
    schedule = f"arn:aws:scheduler:{policies.region}:{policies.account}:schedule"

    decided = policies.decide(
        [
            Request(caller, "scheduler:CreateSchedule", f"{schedule}/{group}/other-pipeline"),
            Request(caller, "scheduler:UpdateSchedule", f"{schedule}/default/training"),
            Request(caller, "scheduler:DeleteSchedule", f"{schedule}/{group}/training"),
            Request(caller, "iam:PassRole", start_role, {"iam:PassedToService": "lambda.amazonaws.com"}),
        ]
    )

    assert [d.explain() for d in decided if d.allowed] == []


def test_the_schedules_role_may_start_the_pipeline_and_dead_letter_its_start_as_scheduler_does(world, synthesized: Synthesized):
    world.upload("training/part-1.csv")
    (summary,) = boto3.client("scheduler", region_name=REGION).list_schedules(GroupName=world.group)["Schedules"]
    target = boto3.client("scheduler", region_name=REGION).get_schedule(GroupName=world.group, Name=summary["Name"])["Target"]
    policies = EnvironmentPolicies(synthesized, "dev")
    names = WorldNames(policies, "model-build", REGION)
    role = names(target["RoleArn"])
    (dead_letters,) = [
        logical_id for logical_id in policies.templates["model-build"]["Resources"] if target["DeadLetterConfig"]["Arn"].endswith(f":{logical_id}")
    ]

    decided = policies.decide(
        [
            Request(role, "sagemaker:StartPipelineExecution", names(target["Arn"])),
            Request(role, "sqs:SendMessage", policies.arn("model-build", dead_letters)),
        ]
    )

    assert [d.explain() for d in decided if not d.allowed] == []
