"""One readable message per event, published to the environment's notification topic (boto3 only).

EventBridge invokes this with the events people are told about: a training pipeline run that succeeded,
failed or was stopped, a model package of the environment's group that was registered, approved or
rejected, what the canary deployer did (released, promoted, rolled back, failed, or asks for
approval), an alarm of the environment that went into or out of ALARM (dead-letter queues' included), a
data-quality monitoring run that found violations, and a batch inference run that failed, timed out or was
stopped. EventBridge Scheduler invokes it with ``{"digest": true}`` for the daily digest. Every message is
written by this module, so e-mail and chat read the same across the platform: a subject of fewer than 100
ASCII characters, plain sentences with the numbers, and console links for the region. An event no writer
knows, or cannot read, still becomes a plain message saying what arrived.

Text that comes from events or people (failure reasons, descriptions, reviewer notes, alarm reasons, names)
is shown as typed and never acts: control and format characters are dropped and lengths bounded for every
medium, and in chat (Slack mrkdwn through AWS Chatbot) ``& < >`` are escaped and mentions and formatting
marks broken, so only the platform's own console links are links.

A model's numbers come from the evaluation report its package's model metrics point at. When the report
cannot be read or is not what the evaluation step writes, the message still goes out and says so.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass, field

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 6})
# Clients by service and region, built once per container: Lambda reuses a container between invocations,
# and building a client costs more than most of the calls it makes.
_clients: dict[tuple[str, str | None], BaseClient] = {}
PIPELINE_EVENT = "SageMaker Model Building Pipeline Execution Status Change"
PACKAGE_EVENT = "SageMaker Model Package State Change"
DEPLOYER_EVENT = "Canary Deployment Status Change"
ALARM_EVENT = "CloudWatch Alarm State Change"
MONITORING_RUN_EVENT = "SageMaker Processing Job State Change"
BATCH_RUN_EVENT = "Step Functions Execution Status Change"
# SNS refuses subjects of 100 characters or more, and subjects with line breaks or control characters; ASCII
# only is what its older documentation asks and what every mail client shows.
SUBJECT_LIMIT = 99
# Text from events and people (failure reasons, descriptions, reviewer notes, alarm reasons, names) can be
# any length: each paragraph, the chat description and the e-mail stay within these many characters.
PARAGRAPH_LIMIT = 4000
CHAT_LIMIT = 8000
TEXT_LIMIT = 60000
DIGEST_HOURS = 24
# Slack formats *bold*, _italic_, ~strike~ and `code`; a zero-width space before the mark leaves it as text.
_MARKDOWN = re.compile(r"([*_~`])")
_URL = re.compile(r"(https?://[^\s<>|]+)")
_MENTION = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)


def now() -> datetime.datetime:
    """The current time; the tests replace it to drive time themselves."""
    return datetime.datetime.now(datetime.UTC)


def printable(text: object) -> str:
    """`text` without control, format and separator characters (bidirectional overrides, zero-width
    joiners, escape sequences); tabs become spaces, carriage returns line breaks."""
    normalised = str(text).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return "".join(c for c in normalised if c == "\n" or unicodedata.category(c)[0] not in ("C", "Z") or c == " ")


def bounded(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    note = f" ... ({len(text) - limit} more characters left out)"
    return text[: limit - len(note)] + note


def slack_text(text: str) -> str:
    """Plain text made inert for Slack's mrkdwn: `& < >` escaped as Slack asks, so ``<!channel>``, ``<@U123>``
    and ``<https://evil|label>`` show as typed; @channel/@here/@everyone and formatting marks broken with a
    zero-width space. Web addresses keep their characters, so they still work."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Split on web addresses: the odd pieces are the addresses.
    parts = _URL.split(escaped)
    return "".join(part if index % 2 else _MARKDOWN.sub("\u200b\\1", _MENTION.sub("@\u200b\\1", part)) for index, part in enumerate(parts))


def _slack_link(url: str, label: str) -> str:
    """A Slack link to one of the platform's console pages: the address percent-encodes what would end the
    link early, the label is inert text."""
    safe_url = re.sub(r"[<>|\s\"]", lambda match: urllib.parse.quote(match.group()), printable(url)).replace("&", "&amp;")
    return f"<{safe_url}|{slack_text(printable(label)).replace('|', '/')}>"


@dataclass
class Message:
    subject: str
    paragraphs: list[str]
    links: list[tuple[str, str]] = field(default_factory=list)

    def _paragraphs(self) -> list[str]:
        return [bounded(printable(paragraph), PARAGRAPH_LIMIT) for paragraph in self.paragraphs]

    def text(self) -> str:
        links = [f"{printable(label)}: {printable(url)}" for label, url in self.links]
        return bounded("\n\n".join([*self._paragraphs(), *(["\n".join(links)] if links else [])]), TEXT_LIMIT) + "\n"

    def chat(self, event_id: str) -> str:
        """The same message as an AWS Chatbot custom notification, which chat channels display as Slack mrkdwn."""
        links = " | ".join(_slack_link(url, label) for label, url in self.links)
        description = bounded("\n\n".join(slack_text(paragraph) for paragraph in self._paragraphs()), CHAT_LIMIT - len(links) - 2)
        return json.dumps(
            {
                "version": "1.0",
                "source": "custom",
                "id": bounded(printable(event_id), 100),
                "content": {"textType": "client-markdown", "title": slack_text(_subject(self.subject)), "description": "\n\n".join([description, links])},
            }
        )


def _client(service: str) -> BaseClient:
    """The container's client of `service` in the function's region."""
    region = os.environ.get("AWS_REGION")
    if (service, region) not in _clients:
        _clients[(service, region)] = boto3.client(service, region_name=region, config=_RETRIES)
    return _clients[(service, region)]


def handler(event: dict, context: object) -> dict:
    if event.get("digest"):
        message = digest()
    else:
        message = write_up(event)
    subject = _subject(message.subject)
    text = message.text()
    # E-mail and other subscribers get the text; AWS Chatbot subscribes over HTTPS and needs its own format.
    structured = {"default": text, "email": text, "https": message.chat(str(event.get("id", "digest")))}
    _client("sns").publish(TopicArn=os.environ["TOPIC_ARN"], Subject=subject, Message=json.dumps(structured), MessageStructure="json")
    logger.info("published %r", subject)
    return {"subject": subject}


def write_up(event: dict) -> Message:
    """The message for `event`. An event of a type no writer knows, or one a writer cannot read, still
    becomes a plain message saying what arrived: raising would only retry it into the dead-letter queue."""
    kind = event.get("detail-type")
    writers = {
        PIPELINE_EVENT: pipeline_run,
        PACKAGE_EVENT: package_change,
        DEPLOYER_EVENT: deployment,
        ALARM_EVENT: alarm_change,
        MONITORING_RUN_EVENT: data_quality_run,
        BATCH_RUN_EVENT: batch_run,
    }
    write = writers.get(kind)
    if write is None:
        logger.warning("no writer for events of type %r from %r (id %r): sending a plain message", kind, event.get("source"), event.get("id"))
        return _plain_message(event, "no message is written for events of this type")
    try:
        return write(event)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        logger.exception("the %r event %r could not be written up", kind, event.get("id"))
        return _plain_message(event, f"it could not be read ({type(error).__name__}: {error})")


def _plain_message(event: dict, why: str) -> Message:
    kind, source = event.get("detail-type") or "an unknown type", event.get("source") or "an unknown source"
    detail = json.dumps(event.get("detail"), default=str, sort_keys=True)
    paragraphs = [
        f"An event of type {kind} from {source} arrived at {os.environ.get('PREFIX', 'the platform')}'s notifications, but {why}.",
        f"Event id {event.get('id', 'unknown')}, time {event.get('time', 'unknown')}. Its detail: {bounded(detail, 1500)}",
    ]
    return Message(f"{os.environ.get('PREFIX', 'Notification')}: unrecognised event {kind}", paragraphs)


def _subject(text: str) -> str:
    ascii_only = " ".join("".join(c if 32 <= ord(c) < 127 else "?" for c in " ".join(printable(text).split())).split())
    subject = ascii_only if len(ascii_only) <= SUBJECT_LIMIT else ascii_only[: SUBJECT_LIMIT - 3] + "..."
    return subject or "Notification"


# -- training pipeline runs --------------------------------------------------------------------------


def pipeline_run(event: dict) -> Message:
    detail = event["detail"]
    execution_arn = detail["pipelineExecutionArn"]
    pipeline = detail["pipelineArn"].rsplit("/", 1)[-1]
    run = execution_arn.rsplit("/", 1)[-1]
    status = detail["currentPipelineExecutionStatus"]
    took = _duration(detail.get("executionStartTime"), detail.get("executionEndTime"))
    name = detail.get("pipelineExecutionDisplayName") or run
    steps = _steps(execution_arn)
    links = [("Pipeline run", console_url(execution_arn))]
    if status == "Succeeded":
        paragraphs = [f"Pipeline {pipeline} finished run {name} successfully{took}."]
        registered = [step["Metadata"]["RegisterModel"]["Arn"] for step in steps if "RegisterModel" in step.get("Metadata", {})]
        for package_arn in registered:
            group, version = _package_name(package_arn)
            paragraphs.append(f"It registered model version {version} of {group}, which awaits review.")
            paragraphs.append(model_quality(package_arn))
            links.append((f"Model version {version}", console_url(package_arn)))
        if not registered:
            paragraphs.append("It registered no model.")
        return Message(f"{pipeline}: run {run} succeeded", paragraphs, links)
    if status == "Failed":
        return Message(f"{pipeline}: run {run} failed", [f"Pipeline {pipeline} failed run {name}{took}.", f"Why: {_failure_reason(execution_arn, steps)}"], links)
    return Message(f"{pipeline}: run {run} {status.lower()}", [f"Pipeline {pipeline} run {name} ended {status}{took}: someone stopped it."], links)


def _steps(execution_arn: str) -> list[dict]:
    sagemaker = _client("sagemaker")
    pages = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=execution_arn)
    return [step for page in pages for step in page["PipelineExecutionSteps"]]


def _failure_reason(execution_arn: str, steps: list[dict]) -> str:
    # The execution's own FailureReason only says that a step failed; each failed step says why.
    failed = [f"step {step['StepName']} failed: {step['FailureReason']}" for step in steps if step.get("StepStatus") == "Failed" and step.get("FailureReason")]
    if failed:
        return "; ".join(failed)
    described = _client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    return described.get("FailureReason") or "SageMaker gave no reason."


def _duration(start: str | None, end: str | None) -> str:
    if not (start and end):
        return ""
    seconds = int((datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)).total_seconds())
    return f" after {seconds // 60} min {seconds % 60} s"


# -- model packages ----------------------------------------------------------------------------------


def package_change(event: dict) -> Message:
    detail = event["detail"]
    package_arn = detail["ModelPackageArn"]
    group, version = _package_name(package_arn)
    status = detail["ModelApprovalStatus"]
    links = [(f"Model version {version}", console_url(package_arn))]
    note = f" The reviewer wrote: {detail['ApprovalDescription']}" if detail.get("ApprovalDescription") else ""
    if status == "Approved":
        endpoint = _model_of_group(group)["endpoint"]
        opening = (
            f"Model version {version} of {group} was approved.{note} The canary deployer deploys it to endpoint {endpoint} "
            "if it is newer than the version serving there; an older version is deployed only by an explicit rollback."
        )
        subject = f"{group}: version {version} approved"
    elif status == "Rejected":
        opening = f"Model version {version} of {group} was rejected; it will not be deployed.{note}"
        subject = f"{group}: version {version} rejected"
    else:
        opening = f"Model version {version} of {group} was registered and awaits review: approving it deploys it."
        subject = f"{group}: version {version} registered, awaiting review"
    return Message(subject, [opening, model_quality(package_arn)], links)


def _models() -> list[dict]:
    """Every model of the environment: its group, its deployer's ARN and its endpoint."""
    first = {
        "name": os.environ.get("MODEL_NAME", ""),
        "group": os.environ["MODEL_PACKAGE_GROUP"],
        "deployer": os.environ["DEPLOYER_ARN"],
        "endpoint": os.environ["ENDPOINT_NAME"],
    }
    return [first, *json.loads(os.environ.get("OTHER_MODELS") or "[]")]


def _model_of_group(group: str) -> dict:
    """The model whose package group is `group`; the first model for a group of none."""
    models = _models()
    return next((model for model in models if model["group"] == group), models[0])


def _command_selector(endpoint: str) -> str:
    """What `mlops deploy` is given to reach the deployer of `endpoint`: the environment, and the model
    where the environment has several."""
    environment, models = os.environ.get("ENVIRONMENT", "ENV"), _models()
    model = next((model for model in models if model["endpoint"] == endpoint), models[0])
    return f"--env {environment}" + (f" --model {model['name']}" if len(models) > 1 else "")


def _package_name(package_arn: str) -> tuple[str, str]:
    """``arn:...:model-package/<group>/<version>`` -> (group, version)."""
    group, version = package_arn.split(":model-package/", 1)[1].rsplit("/", 1)
    return group, version


def model_quality(package_arn: str) -> str:
    """The model's AUC, accuracy and top features from its evaluation report, or what is wrong with the report."""
    try:
        described = _client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    except ClientError as error:
        return f"Model package {package_arn} could not be described ({error.response['Error']['Code']}), so its quality is unknown."
    uri = described.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    if not uri:
        return "No evaluation report is attached to this model version, so its quality is unknown."
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        body = _client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        return f"Its evaluation report {uri} could not be read ({error.response['Error']['Code']}), so its quality is unknown."
    try:
        report = json.loads(body)
        metrics = report["binary_classification_metrics"]
        auc, accuracy = float(metrics["auc"]["value"]), float(metrics["accuracy"]["value"])
        features = [(str(f["feature"]), float(f["importance"])) for f in report.get("feature_importances", [])]
    except (ValueError, TypeError, KeyError) as error:
        return f"Its evaluation report {uri} is malformed ({type(error).__name__}: {error}), so its quality is unknown."
    rows = f" on {report['test_rows']} held-out rows" if isinstance(report.get("test_rows"), int) else ""
    sentence = f"On the test split it scored AUC {auc:.3f} and accuracy {accuracy:.3f}{rows}."
    top = features[: int(os.environ.get("TOP_FEATURES", "5"))]
    if top:
        sentence += " Most important features: " + ", ".join(f"{name} ({importance:.3f})" for name, importance in top) + "."
    return sentence


# -- the canary deployer ------------------------------------------------------------------------------

# What the deployer reports (its event's "event"), as (subject, opening sentence, whether "detail" is a reason).
_DEPLOYER_OUTCOMES = {
    "released": ("version {version} released", "The canary deployer released model version {version} of {group} on the new endpoint {endpoint}: it serves all traffic.", False),
    "promoted": ("version {version} promoted", "The canary deployer promoted model version {version} of {group} on endpoint {endpoint}: after a healthy canary it serves all traffic.", False),
    # The release stands, but its record (what a promotion to another environment requires) could not be written.
    "released (not recorded)": (
        "version {version} released, but not recorded for promotion",
        "The canary deployer released model version {version} of {group} on the new endpoint {endpoint}: it serves all traffic. "
        "Its release record could not be written, so the version cannot be promoted to another environment until it is released again.",
        True,
    ),
    "promoted (not recorded)": (
        "version {version} promoted, but not recorded for promotion",
        "The canary deployer promoted model version {version} of {group} on endpoint {endpoint}: after a healthy canary it serves all traffic. "
        "Its release record could not be written, so the version cannot be promoted to another environment until it is released again.",
        True,
    ),
    "rolled back": ("version {version} rolled back", "The canary deployer rolled back model version {version} of {group} on endpoint {endpoint}: the previous model serves all traffic again.", True),
    "rollback failed": (
        "rollback of version {version} failed, act now",
        "The canary deployer could not roll back model version {version} of {group} on endpoint {endpoint}: the endpoint needs someone to look at it now.",
        True,
    ),
    "deployment failed": ("deployment of version {version} failed", "The canary deployer could not deploy model version {version} of {group} to endpoint {endpoint}; nothing on the endpoint changed.", True),
    "first release failed": ("first release of version {version} failed", "The canary deployer could not create endpoint {endpoint} with model version {version} of {group}.", True),
    # Serving moved to the other mode's endpoint (instances or serverless), and the old one could not be deleted.
    "retiring the old endpoint failed": (
        "version {version} serves, but the old endpoint is still there",
        "The canary deployer released model version {version} of {group} on endpoint {endpoint}, but could not delete the endpoint "
        "of the serving mode the environment used before: it still exists, and bills, until someone deletes it.",
        True,
    ),
}


def deployment(event: dict) -> Message:
    detail = event["detail"]
    package_arn, endpoint, execution = detail["modelPackageArn"], detail["endpoint"], detail["execution"]
    try:
        group, version = _package_name(package_arn)
    except (ValueError, IndexError):
        group, version = "an unknown group", package_arn
    links = [("Deployment run", console_url(execution)), (f"Model version {version}", console_url(package_arn))]
    if detail["event"] == "approval requested":
        # The request carries no task token: answering takes the approver's permission, never this message.
        # The approver policy is named after the model's stem, which its endpoint's name starts with.
        stem, selector = endpoint.removesuffix("-endpoint"), _command_selector(endpoint)
        paragraphs = [
            f"Model version {version} of {group} has served as a canary on endpoint {endpoint} with its alarms quiet, and awaits approval to take all traffic. "
            f"Without an answer {_within_minutes(detail.get('detail'))}, it is rolled back.",
            model_quality(package_arn),
            f"To approve: mlops deploy approve {selector}",
            f"To reject: mlops deploy deny {selector}",
            f"Only roles with the {stem}-deployment-approver policy can answer: it reads the waiting deployment's history, where the approval request is, and answers it.",
        ]
        return Message(f"{endpoint}: approve version {version}?", paragraphs, links)
    subject, opening, is_reason = _DEPLOYER_OUTCOMES[detail["event"]]
    names = {"version": version, "group": group, "endpoint": endpoint}
    paragraphs = [opening.format(**names)]
    if is_reason:
        paragraphs.append(f"Why: {detail['detail']}")
    else:
        paragraphs.append(f"The endpoint runs SageMaker model {detail['detail']}.")
    paragraphs.append(model_quality(package_arn))
    return Message(f"{endpoint}: {subject.format(**names)}", paragraphs, links)


def _within_minutes(minutes: object) -> str:
    """The approval's timeout as the deployer announces it (minutes, as text)."""
    return f"within {minutes} minutes" if isinstance(minutes, str) and minutes.isdigit() else "before the approval times out"


# -- alarms -------------------------------------------------------------------------------------------

# What an alarm's metric counts, where its raw number is not what people read: ModelLatency is in microseconds.
_METRIC_UNITS = {"ModelLatency": (1000, " ms")}
_STATE_SUBJECTS = {"ALARM": "is in ALARM", "OK": "is OK again", "INSUFFICIENT_DATA": "has too little data"}


def alarm_change(event: dict) -> Message:
    """An alarm that went into or out of ALARM, from what CloudWatch puts in the event; a field that is
    missing or malformed leaves out what it would have said, never the message."""
    detail = event.get("detail") or {}
    state, previous = detail.get("state") or {}, detail.get("previousState") or {}
    arn = _alarm_arn(event)
    name = detail.get("alarmName") or arn.rsplit(":alarm:", 1)[-1]
    now_in, was_in = state.get("value") or "an unknown state", previous.get("value") or "an unknown state"
    metric = _alarm_metric(detail)
    dimensions = (metric.get("metric") or {}).get("dimensions") or {}
    endpoint, variant = dimensions.get("EndpointName"), dimensions.get("VariantName")
    configured = os.environ.get("ENDPOINT_NAME")
    if endpoint is None and configured and name.startswith(f"{configured}-"):
        # The endpoint's own alarms that watch no endpoint metric (the data-quality alarm) are named after it.
        endpoint = configured
    where = f" on variant {variant} of endpoint {endpoint}" if endpoint and variant else f" of endpoint {endpoint}" if endpoint else ""
    changed_at = state.get("timestamp") or event.get("time")
    paragraphs = [f"Alarm {name}{where} went from {was_in} to {now_in}{f' at {_alarm_time(str(changed_at))}' if changed_at else ''}."]
    description = (detail.get("configuration") or {}).get("description")
    if description:
        paragraphs.append(f"What it watches: {str(description).rstrip('.')}.")
    paragraphs.append(_alarm_numbers(metric, state.get("reasonData")))
    if state.get("reason"):
        paragraphs.append(f"Why: {state['reason']}")
    if variant and now_in == "ALARM":
        paragraphs.append(f"A deployment that is moving traffic to variant {variant} rolls back on this alarm.")
    links = [("Alarm", console_url(arn))]
    if endpoint:
        _, partition, _, region, account, _ = arn.split(":", 5)
        links.append((f"Endpoint {endpoint}", console_url(f"arn:{partition}:sagemaker:{region}:{account}:endpoint/{endpoint}")))
    return Message(f"Alarm {name} {_STATE_SUBJECTS.get(now_in, f'changed to {now_in}')}", paragraphs, links)


def _alarm_arn(event: dict) -> str:
    """The alarm's ARN: the event's resource, or built from its account, region and name."""
    resources = [r for r in event.get("resources") or [] if isinstance(r, str) and r.startswith("arn:") and ":alarm:" in r and len(r.split(":")) >= 7]
    if resources:
        return resources[0]
    partition = os.environ["TOPIC_ARN"].split(":")[1]
    region = event.get("region") or os.environ.get("AWS_REGION", "")
    return f"arn:{partition}:cloudwatch:{region}:{event.get('account', '')}:alarm:{(event.get('detail') or {}).get('alarmName', 'unknown')}"


def _alarm_metric(detail: dict) -> dict:
    """The metric the alarm compares with its threshold (the first one that returns data)."""
    metrics = (detail.get("configuration") or {}).get("metrics") or []
    stats = [m["metricStat"] for m in metrics if isinstance(m, dict) and isinstance(m.get("metricStat"), dict) and m.get("returnData", True)]
    return stats[0] if stats else {}


def _alarm_time(timestamp: str) -> str:
    # CloudWatch writes state timestamps as 2026-11-25T07:04:40.989+0000, EventBridge event times as 2026-11-25T07:04:40Z.
    for parse in (lambda text: datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z"), datetime.datetime.fromisoformat):
        try:
            return f"{parse(timestamp).astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC"
        except ValueError:
            continue
    return timestamp


def _alarm_numbers(metric: dict, reason_data: str | None) -> str:
    """The metric, its statistic and period, the threshold and the latest values CloudWatch evaluated."""
    name = (metric.get("metric") or {}).get("name")
    scale, unit = _METRIC_UNITS.get(name, (1, ""))
    try:
        data = json.loads(reason_data) if reason_data else {}
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}

    def amount(value: object) -> str:
        return f"{value / scale:g}{unit}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "unknown"

    what = f"{name} ({metric.get('stat', 'value')} per {metric.get('period', '?')} s)" if name else "Its metric"
    sentence = f"{what}: threshold {amount(data.get('threshold'))}"
    recent = [amount(v) for v in data.get("recentDatapoints") or [] if isinstance(v, (int, float))]
    if recent:
        sentence += f", latest {'value' if len(recent) == 1 else 'values'} {', '.join(recent)}"
    return sentence + "."


# -- data-quality monitoring --------------------------------------------------------------------------


def data_quality_run(event: dict) -> Message:
    """A Model Monitor run of the endpoint's data-quality schedule that found violations."""
    detail = event.get("detail") or {}
    job = detail.get("ProcessingJobName", "an unnamed run")
    schedule = (detail.get("MonitoringScheduleArn") or "an unknown schedule").rsplit("/", 1)[-1]
    # A model's schedule is <stem>-data-quality and its endpoint <stem>-endpoint.
    endpoints = [model["endpoint"] for model in _models()]
    endpoint = next((name for name in endpoints if f"{name.removesuffix('-endpoint')}-data-quality" == schedule), endpoints[0])
    paragraphs = [f"Model Monitor's run {job} of schedule {schedule} found data-quality violations in the traffic endpoint {endpoint} captured."]
    paragraphs.append(f"What it reported: {detail.get('ExitMessage') or 'nothing'}")
    outputs = (detail.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    reports = [o["S3Output"]["S3Uri"] for o in outputs if isinstance(o, dict) and isinstance(o.get("S3Output"), dict) and o["S3Output"].get("S3Uri")]
    if reports:
        paragraphs.append(f"Its report, constraint_violations.json with each violated feature and check, is under {reports[0]}.")
    links = [("Monitoring run", console_url(detail["ProcessingJobArn"]))] if detail.get("ProcessingJobArn") else []
    return Message(f"{endpoint}: data-quality violations found", paragraphs, links)


# -- batch inference runs ------------------------------------------------------------------------------

_BATCH_ENDINGS = {"FAILED": "failed", "TIMED_OUT": "timed out", "ABORTED": "was stopped"}


def batch_run(event: dict) -> Message:
    """A run of the batch inference workflow that failed, timed out or was stopped. The reason comes from the
    event where Step Functions puts it there, otherwise from the execution itself."""
    detail = event.get("detail") or {}
    execution_arn = detail["executionArn"]
    # arn:<partition>:states:<region>:<account>:execution:<workflow>:<run>
    workflow = execution_arn.split(":")[6]
    status = detail.get("status") or "an unknown status"
    ending = _BATCH_ENDINGS.get(status, f"ended {status}")
    run = detail.get("name") or execution_arn.rsplit(":", 1)[-1]
    took = _duration(_epoch_ms(detail.get("startDate")), _epoch_ms(detail.get("stopDate")))
    error, cause = detail.get("error"), detail.get("cause")
    if not (error or cause):
        error, cause = _execution_failure(execution_arn)
    paragraphs = [f"Batch inference run {run} of {workflow} {ending}{took}.", f"Why: {error or 'no error name'}: {cause or 'Step Functions gave no reason.'}"]
    request = _json_or_none(detail.get("input"))
    if isinstance(request, dict):
        chosen = ", ".join(f"{key} {value}" for key, value in sorted(request.items()) if isinstance(value, (str, int, float)))
        if chosen:
            paragraphs.append(f"It was started with {chosen}.")
    return Message(f"{workflow}: run {run} {ending}", paragraphs, [("Batch run", console_url(execution_arn))])


def _epoch_ms(value: object) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value / 1000, datetime.UTC).isoformat()
    return None


def _json_or_none(text: object) -> object:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _execution_failure(execution_arn: str) -> tuple[str | None, str | None]:
    try:
        described = _client("stepfunctions").describe_execution(executionArn=execution_arn)
    except ClientError as error:
        return None, f"the run could not be described ({error.response['Error']['Code']})"
    return described.get("error"), described.get("cause")


# -- the daily digest ---------------------------------------------------------------------------------


def digest() -> Message:
    since = now() - datetime.timedelta(hours=DIGEST_HOURS)
    prefix = os.environ["PREFIX"]
    runs = _recent_runs(since)
    deployments = _recent_deployments(since)
    paragraphs = [f"What happened in {prefix} in the {DIGEST_HOURS} hours up to {now():%Y-%m-%d %H:%M} UTC."]
    paragraphs.extend(_latest_approved(model["group"]) for model in _models())
    paragraphs.append(f"Training runs: {len(runs)}." + "".join(f"\n- {line}" for line in runs))
    paragraphs.append(f"Deployments: {len(deployments)}." + "".join(f"\n- {line}" for line in deployments))
    # The group is in the topic's partition, region and account.
    _, partition, _, region, account, _ = os.environ["TOPIC_ARN"].split(":")
    groups = [model["group"] for model in _models()]
    links = [
        ("Model registry" if len(groups) == 1 else f"Model registry: {group}", console_url(f"arn:{partition}:sagemaker:{region}:{account}:model-package-group/{group}"))
        for group in groups
    ]
    return Message(f"{prefix} daily digest: {len(runs)} training runs, {len(deployments)} deployments", paragraphs, links)


def _latest_approved(group: str) -> str:
    sagemaker = _client("sagemaker")
    packages = sagemaker.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending", MaxResults=1
    )["ModelPackageSummaryList"]
    if not packages:
        return f"No model version of {group} is approved yet."
    arn = packages[0]["ModelPackageArn"]
    return f"The latest approved model is version {_package_name(arn)[1]} of {group}. {model_quality(arn)}"


def _recent_runs(since: datetime.datetime) -> list[str]:
    sagemaker = _client("sagemaker")
    lines = []
    for pipeline in json.loads(os.environ["PIPELINES"]):
        pages = sagemaker.get_paginator("list_pipeline_executions").paginate(
            PipelineName=pipeline, CreatedAfter=since, SortBy="CreationTime", SortOrder="Descending"
        )
        for summary in (s for page in pages for s in page["PipelineExecutionSummaries"]):
            if summary["StartTime"] < since:
                continue
            arn, status = summary["PipelineExecutionArn"], summary["PipelineExecutionStatus"]
            line = f"{pipeline} run {arn.rsplit('/', 1)[-1]} started {summary['StartTime']:%Y-%m-%d %H:%M} UTC: {status}"
            if status == "Failed":
                line += f" ({_failure_reason(arn, _steps(arn))})"
            lines.append(f"{line}. {console_url(arn)}")
    return lines


def _recent_deployments(since: datetime.datetime) -> list[str]:
    sfn = _client("stepfunctions")
    lines = []
    for model in _models():
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=model["deployer"]):
            recent = [e for e in page["executions"] if e["startDate"] >= since]
            for execution in recent:
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                package = json.loads(described.get("input") or "{}").get("ModelPackageArn", "an unknown model package")
                line = f"{execution['name']} started {execution['startDate']:%Y-%m-%d %H:%M} UTC, deploying {package}: {execution['status']}"
                if described.get("error"):
                    line += f" ({described['error']}: {described.get('cause', '')})"
                lines.append(f"{line}. {console_url(execution['executionArn'])}")
            # Executions are listed newest first: once one is older than the window, the rest are too.
            if len(recent) < len(page["executions"]):
                break
    return lines


# -- console links -------------------------------------------------------------------------------------

_CONSOLES = {"aws": "{region}.console.aws.amazon.com", "aws-cn": "{region}.console.amazonaws.cn", "aws-us-gov": "console.amazonaws-us-gov.com"}


def console_url(arn: str) -> str:
    """The console page of a pipeline execution, model package (group), endpoint, processing job, alarm or
    Step Functions execution, in its region."""
    _, partition, service, region, _, resource = arn.split(":", 5)
    host = _CONSOLES.get(partition, _CONSOLES["aws"]).format(region=region)
    if service == "states":
        return f"https://{host}/states/home?region={region}#/v2/executions/details/{urllib.parse.quote(arn, safe=':')}"
    if service == "cloudwatch":
        return f"https://{host}/cloudwatch/home?region={region}#alarmsV2:alarm/{urllib.parse.quote(resource.removeprefix('alarm:'), safe='')}"
    kind, _, name = resource.partition("/")
    if kind == "pipeline":
        pipeline, _, run = name.partition("/execution/")
        return f"https://{host}/sagemaker/home?region={region}#/pipelines/{pipeline}/executions/{run}"
    if kind in ("model-package", "model-package-group"):
        return f"https://{host}/sagemaker/home?region={region}#/model-packages/{name}"
    if kind in ("endpoint", "processing-job"):
        return f"https://{host}/sagemaker/home?region={region}#/{kind}s/{name}"
    return f"https://{host}/sagemaker/home?region={region}"

