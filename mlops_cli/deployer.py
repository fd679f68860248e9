"""The canary deployer as the command sees it: its executions, what the running one is doing, and the
approval it may be waiting for, read from the execution history (nobody handles a task token)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from config.naming import deployer_name
from mlops_cli.environment import Environment
from mlops_cli.errors import MlopsError

# History events after which a task's wait for its token is over.
_TASK_ENDED = {"TaskSucceeded", "TaskFailed", "TaskTimedOut", "TaskStateExited", "TaskStateAborted"}
# Where a task token can sit in a task's parameters: the deployer puts it in its announcement's detail.
_TOKEN_KEYS = {"tasktoken", "token"}


def state_machine_arn(env: Environment) -> str:
    return env.arn("states", f"stateMachine:{deployer_name(env.model.stem)}")


def executions(env: Environment, status: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The deployer's executions, newest first (at most `limit`)."""
    filters = {"statusFilter": status} if status else {}
    try:
        return env.client("stepfunctions").list_executions(stateMachineArn=state_machine_arn(env), maxResults=limit, **filters)["executions"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "StateMachineDoesNotExist":
            raise
        raise MlopsError(f"the deployer {deployer_name(env.model.stem)} does not exist in account {env.account}, {env.region}: is environment {env.name} deployed?") from None


def history(env: Environment, execution_arn: str) -> list[dict[str, Any]]:
    client = env.client("stepfunctions")
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = client.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def _tokens(value: Any) -> Iterator[str]:
    """Every task token in a task's parameters, however deeply nested, also inside JSON text (an
    EventBridge entry's Detail is a JSON string)."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                yield from _tokens(json.loads(text))
            except ValueError:
                return
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() in _TOKEN_KEYS and isinstance(item, str) and item:
                yield item
            else:
                yield from _tokens(item)
    elif isinstance(value, list):
        for item in value:
            yield from _tokens(item)


def waiting_token(events: list[dict[str, Any]]) -> str | None:
    """The token of the task that is waiting now: the last task scheduled with a token whose wait has not
    ended since."""
    token = None
    for event in events:
        if event["type"] == "TaskScheduled":
            parameters = event.get("taskScheduledEventDetails", {}).get("parameters", "")
            found = next(_tokens(parameters), None)
            if found:
                token = found
        elif event["type"] in _TASK_ENDED or event["type"].startswith("Execution") and event["type"] != "ExecutionStarted":
            token = None
    return token


def states_entered(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """(state name, when) of each state entered, in order."""
    return [
        (event["stateEnteredEventDetails"]["name"], event["timestamp"])
        for event in events
        if event["type"].endswith("StateEntered") and "stateEnteredEventDetails" in event
    ]


def execution_input(events: list[dict[str, Any]]) -> dict[str, Any]:
    for event in events:
        if event["type"] == "ExecutionStarted":
            try:
                return json.loads(event["executionStartedEventDetails"].get("input") or "{}")
            except ValueError:
                return {}
    return {}


def failure(events: list[dict[str, Any]]) -> dict[str, str] | None:
    """The error and cause an ended execution reported, if it did not succeed."""
    for event in reversed(events):
        for kind in ("executionFailedEventDetails", "executionTimedOutEventDetails", "executionAbortedEventDetails"):
            if kind in event:
                return {"error": event[kind].get("error", ""), "cause": event[kind].get("cause", "")}
    return None
