"""Run synthesized Step Functions definitions in moto's interpreter, in-process.

Use inside `mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`. Executions run
in a background thread: `run()` starts one and polls until it is no longer RUNNING; `start()` and
`wait()` split that for tests that run executions side by side.

Driving time and faults from the test, never from the wall clock:
- `held_before()` holds an execution just before it enters a named state until the test lets it go,
  so a test decides what happens first instead of racing the interpreter's thread;
- `state_clock()` moves the clock states read (`$$.State.EnteredTime`) forward, so a definition that
  measures a time window sees the window the test says has passed;
- `retry_waits()` records the waits of Retry blocks instead of sleeping through their backoff;
- `state_waits()` records the seconds each Wait state asks for, by state, instead of sleeping through them;
- `timeout_passes_at_once()` lets a named state's wait for its task token run out as soon as the
  token has been sent, as if its TimeoutSeconds had passed;
- `injected_faults()` makes the AWS call of a named task state fail, once, for good or with several
  faults in turn (`FaultsInTurn`), with the exception boto3 raises for that error code, so Step Functions
  names the error as it would on AWS;
- `recorded_calls()` records every AWS call a task state makes (service, operation, parameters), for
  the permission checks of `tests/behaviour/iam_calls.py`;
- `put_events_partly_failing()` makes PutEvents of a named state answer HTTP 200 with refused entries, as
  EventBridge does when it refuses some of them;
- `eventbridge_errors_named()` names the errors of the optimised EventBridge PutEvents integration as
  Step Functions does (`EventBridge.<Code>`, or the generic `EventBridge.AmazonEventBridgeException` for a
  code the API model does not declare), where moto 5.2.5 reports an uncatchable States.Runtime;
  `dynamodb_errors_named()` names undeclared codes of the optimised DynamoDB integrations
  `DynamoDB.AmazonDynamoDBException`, where moto names every code `DynamoDB.<Code>`.
`uncatchable_as_on_aws()` refuses the catches AWS refuses: no Retry or Catch matches States.Runtime,
and States.ALL does not match States.DataLimitExceeded (moto matches both).
`string_matches_as_on_aws()` matches Choice's StringMatches as the States language defines it: only `*` is a
wildcard, `\\*` a literal asterisk and `\\\\` a backslash (moto uses fnmatch, where `?` and `[...]` match too).
`listing_lags()` makes ListExecutions not show running executions yet, as its eventual consistency allows;
`ended_executions_seem_running()` makes DescribeExecution answer RUNNING for executions that had ended
when the block began, as a status read seconds after the end may.
`parsed_once()` parses each definition once instead of at every execution, as moto does (three
quarters of an execution's time here), and keeps the program for later runs of the same moto (a definition
takes about half a second of CPU to parse, a fiftieth of that to read back). Task states reuse one boto3 client per service and region where
moto would build a new one for every call (a client costs more to build than the call it makes), and
each JSONPath is parsed once (jsonpath-ng builds its whole parser for every parse); states' data is copied
level by level rather than through `copy.deepcopy`; and a task state runs in its execution's thread, without
the timer thread moto starts for each (a state's TimeoutSeconds never pass here: nothing sleeps).

Waiting is driven by the executions themselves: every history event moto records and every end of an
execution wakes the waiters (`until()`), so a test neither sleeps on a timer nor spends the interpreter's
time asking whether anything happened.

`resolve()` turns the CloudFormation values of a synthesized template (`Ref`, `Fn::GetAtt`,
`Fn::Join`, ...) into concrete strings, so a definition can be run as it was synthesized.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import functools
import hashlib
import json
import pickle
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from botocore.exceptions import ClientError
import boto3
import botocore
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl as _retrier_module
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import StateTaskServiceCallback
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import StateTaskServiceDynamoDB
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events import StateTaskServiceEvents
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.exceptions import ExecutionDoesNotExist
from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.events import models as events_models
from moto.stepfunctions.parser.models import stepfunctions_parser_backends
from moto.stepfunctions.parser.asl.component.state import state as _state_module
from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.string_operators import StringMatches
from moto.stepfunctions.parser.asl.component.state.wait.state_wait import StateWait
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.seconds import Seconds
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.seconds_path import SecondsPath
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.asl.utils import boto_client as _task_client_module
from moto.stepfunctions.parser.asl.utils import json_path as _json_path_module
from moto.stepfunctions.parser.asl.component.common.path import result_path as _result_path_module
from moto.stepfunctions.parser.asl.component.common.string import string_expression as _string_expression_module
from moto.stepfunctions.parser.asl.component.state.exec import execute_state as _execute_state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker import BranchWorker
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory as _state_task_factory_module
from moto.stepfunctions.parser.utils import TMP_THREADS
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service as _task_service_module
from moto.stepfunctions.parser.asl.eval import states as _states_data_module
from moto.stepfunctions.parser.asl.eval.event import event_manager as _event_manager_module

from tests import installed
from tests.json_values import copy_of
from tests.kept_results import digest_files, folder_for, write_atomically

PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
}
DEFAULT_ROLE_ARN = "arn:aws:iam::123456789012:role/sfn-harness"
TERMINAL_EVENTS = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED_OUT",
}
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


# ---------------------------------------------------------------------------------------------
# CloudFormation values.
# ---------------------------------------------------------------------------------------------


def _lookup_ref(logical_id: str, refs: dict[str, Any]) -> Any:
    if logical_id in PSEUDO_PARAMETERS and logical_id not in refs:
        return PSEUDO_PARAMETERS[logical_id]
    if logical_id not in refs:
        raise KeyError(f"unresolved Ref {logical_id!r}")
    value = refs[logical_id]
    if isinstance(value, dict):
        if "Ref" not in value:
            raise KeyError(f"unresolved Ref {logical_id!r} (refs has attributes {sorted(value)})")
        return value["Ref"]
    return value


def _lookup_attr(logical_id: str, attribute: str, refs: dict[str, Any]) -> Any:
    value = refs.get(logical_id)
    if not isinstance(value, dict) or attribute not in value:
        raise KeyError(f"unresolved Fn::GetAtt {logical_id}.{attribute}")
    return value[attribute]


def _sub(template: str, variables: dict[str, Any], refs: dict[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return str(variables[name])
        if "." in name and name.split(".", 1)[0] not in PSEUDO_PARAMETERS:
            return str(_lookup_attr(*name.split(".", 1), refs))
        return str(_lookup_ref(name, refs))

    return _SUB_VARIABLE.sub(replace, template).replace("${!", "${")


def resolve(value: Any, refs: dict[str, Any]) -> Any:
    """A concrete value for a CloudFormation value of a synthesized template.

    `refs` maps logical ids (and output names) to what they resolve to: a string for `Ref`, or a
    dict of attribute -> value for `Fn::GetAtt` (with an optional "Ref" key for `Ref`). Pseudo
    parameters resolve to aws / eu-west-1 / 123456789012 / amazonaws.com unless `refs` names them
    (e.g. "AWS::AccountId" for a template of another account). Strings, numbers and
    booleans pass through; lists and plain objects are resolved element by element. An unknown
    reference raises KeyError naming it; an unknown intrinsic function raises ValueError.
    """
    if isinstance(value, list):
        return [resolve(item, refs) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return _lookup_ref(arg, refs)
        if key == "Fn::GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return _lookup_attr(logical_id, resolve(attribute, refs), refs)
        if key == "Fn::Join":
            separator, parts = arg
            parts = resolve(parts, refs)
            return resolve(separator, refs).join(str(part) for part in parts)
        if key == "Fn::GetStackOutput":
            output = resolve(arg["OutputName"], refs)
            if output not in refs:
                raise KeyError(f"unresolved Fn::GetStackOutput {output!r}")
            return refs[output]
        if key == "Fn::Sub":
            template, variables = (arg, {}) if isinstance(arg, str) else arg
            return _sub(template, {k: resolve(v, refs) for k, v in variables.items()}, refs)
        if key == "Fn::Select":
            index, items = arg
            return resolve(items, refs)[int(resolve(index, refs))]
        if key == "Fn::Split":
            separator, text = arg
            return resolve(text, refs).split(resolve(separator, refs))
        if key.startswith("Fn::") or key == "Condition":
            raise ValueError(f"resolve() does not support {key}")
    return {k: resolve(v, refs) for k, v in value.items()}


def state_machine_definition(
    template: dict[str, Any], refs: dict[str, Any], name: str | None = None
) -> dict[str, Any]:
    """The parsed definition of the template's only AWS::StepFunctions::StateMachine (or the only
    one named `name`), resolved with `refs` (DefinitionSubstitutions applied)."""
    machines = [
        (logical_id, resource)
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::StepFunctions::StateMachine"
        and name in (None, resource.get("Properties", {}).get("StateMachineName"))
    ]
    if len(machines) != 1:
        raise ValueError(
            f"expected one AWS::StepFunctions::StateMachine{f' named {name}' if name else ''}, "
            f"found {len(machines)}: {[logical_id for logical_id, _ in machines]}"
        )
    properties = machines[0][1]["Properties"]
    if "Definition" in properties:
        definition = resolve(properties["Definition"], refs)
        text = json.dumps(definition)
    else:
        text = resolve(properties["DefinitionString"], refs)
    substitutions = {
        k: resolve(v, refs) for k, v in (properties.get("DefinitionSubstitutions") or {}).items()
    }
    for key, replacement in substitutions.items():
        text = text.replace("${" + key + "}", str(replacement))
    return json.loads(text)


# ---------------------------------------------------------------------------------------------
# Executions.
# ---------------------------------------------------------------------------------------------


@dataclass
class Execution:
    arn: str
    status: str
    error: str | None = None
    cause: str | None = None
    output: Any = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def states_entered(self) -> list[str]:
        """Names of the states entered, in order (a state entered twice appears twice)."""
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.history
            if e["type"].endswith("StateEntered")
        ]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        """History events of one type, e.g. "TaskScheduled", in order."""
        return [e for e in self.history if e["type"] == event_type]


def create_state_machine(
    sfn_client: Any, definition: dict[str, Any] | str, name: str, role_arn: str = DEFAULT_ROLE_ARN
) -> str:
    """Create a STANDARD state machine from a definition, parsed or as its JSON text; returns its ARN."""
    text = definition if isinstance(definition, str) else json.dumps(definition)
    response = sfn_client.create_state_machine(name=name, definition=text, roleArn=role_arn)
    return response["stateMachineArn"]


def start(sfn_client: Any, state_machine_arn: str, input: dict[str, Any], name: str) -> str:
    """Start an execution named `name` without waiting; returns the execution ARN."""
    response = sfn_client.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(input)
    )
    return response["executionArn"]


def _backend_of(execution_arn: str) -> Any:
    """moto's Step Functions backend in this process for the execution's account and region."""
    _, _, _, region, account, *_ = execution_arn.split(":")
    return stepfunctions_parser_backends[account][region]


def history(sfn_client: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The execution's events. Read from moto's backend when it runs in this process: serialising a long
    history through the API costs as much as running the execution."""
    try:
        events = list(_backend_of(execution_arn).get_execution_history(execution_arn)["events"])
    except ExecutionDoesNotExist:
        pass
    else:
        # The backend keeps ISO 8601 text where the API answers a timestamp, which boto3 parses.
        return [{**event, "timestamp": datetime.datetime.fromisoformat(event["timestamp"])} for event in events]
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn}
    while True:
        page = sfn_client.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def _status_from_history(events: list[dict[str, Any]]) -> tuple[str, str | None, str | None, Any]:
    for event in reversed(events):
        status = TERMINAL_EVENTS.get(event["type"])
        if status is None:
            continue
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        output = details.get("output")
        return status, details.get("error"), details.get("cause"), output
    return "RUNNING", None, None, None


def _described_in_process(execution_arn: str) -> tuple[str, str | None, str | None, Any] | None:
    """What DescribeExecution answers for the execution (status, error, cause, output), read from moto's backend
    when it runs in this process, as `history()` reads the events: the waits here ask after every execution's
    end, and each answer through the API cost a request's round trip. None for an execution moto runs elsewhere."""
    try:
        execution = _backend_of(execution_arn).describe_execution(execution_arn)
    except ExecutionDoesNotExist:
        return None
    output = execution.output if execution.status == "SUCCEEDED" else None
    if output is not None and not isinstance(output, str):
        output = json.dumps(output)
    return execution.status, execution.error, execution.cause, output


def _poll(sfn_client: Any, execution_arn: str) -> tuple[str, str | None, str | None, Any]:
    try:
        described = _described_in_process(execution_arn)
        if described is not None:
            return described
        described = sfn_client.describe_execution(executionArn=execution_arn)
    except (TypeError, ValueError, ClientError) as err:
        # moto fails to serialise an output holding raw SDK timestamps ("datetime is not JSON
        # serializable": a TypeError in-process, a 500 from a moto server); the history carries
        # the same facts as JSON strings.
        if isinstance(err, ClientError):
            if err.response["ResponseMetadata"].get("HTTPStatusCode", 0) < 500:
                raise
        return _status_from_history(history(sfn_client, execution_arn))
    return (
        described["status"],
        described.get("error"),
        described.get("cause"),
        described.get("output"),
    )


def running(sfn_client: Any, execution_arn: str) -> bool:
    """Whether the execution has not ended yet."""
    return _poll(sfn_client, execution_arn)[0] == "RUNNING"


# ---------------------------------------------------------------------------------------------
# Waiting for executions to move.
# ---------------------------------------------------------------------------------------------


class _Progress:
    """What moto's executions in this process have done, counted: history events recorded and executions
    ended. A change wakes whoever waits for that kind of change: an execution records a few events per state,
    and a test waiting for its end is not woken by each of them."""

    def __init__(self) -> None:
        self.changed = {"events": threading.Condition(), "ends": threading.Condition()}
        self.counts = {"events": 0, "ends": 0}

    def step(self, kind: str) -> None:
        with self.changed[kind]:
            self.counts[kind] += 1
            self.changed[kind].notify_all()


_progress = _Progress()
# Whoever waits for a change that nothing here announces (an execution in another process) looks again
# after this long; an execution in this process wakes its waiters at once.
_UNANNOUNCED_CHANGE_S = 0.5


def _announcing(method: Any, kind: str) -> Any:
    def announced(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            _progress.step(kind)

    announced.__wrapped__ = method
    return announced


# Installed once, at import: they only count, and any test in the process may wait on the counts.
if not hasattr(EventManager.add_event, "__wrapped__"):
    EventManager.add_event = _announcing(EventManager.add_event, "events")
    BaseExecutionWorkerCommunication.terminated = _announcing(BaseExecutionWorkerCommunication.terminated, "ends")


def until(condition: Callable[[], Any], what: str, timeout_s: float = 120, wake_on: str = "events") -> Any:
    """The first true value of `condition()`, asked again each time an execution records a history event
    (`wake_on="events"`) or ends (`"ends"`). TimeoutError naming `what` after `timeout_s`: a deadlock
    guard far above what any execution here takes, even under load, never a timing assumption."""
    deadline = time.monotonic() + timeout_s
    while True:
        changed = _progress.changed[wake_on]
        with changed:
            seen = _progress.counts[wake_on]
        value = condition()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what}: not after {timeout_s}s")
        with changed:
            changed.wait_for(lambda: _progress.counts[wake_on] != seen, timeout=min(remaining, _UNANNOUNCED_CHANGE_S))


def wait(sfn_client: Any, execution_arn: str, timeout_s: float = 120) -> Execution:
    """Wait until the execution is no longer RUNNING; TimeoutError (naming the states entered so
    far) after `timeout_s`, a deadlock guard far above what any execution here takes, even under load."""

    def ended() -> tuple[str, str | None, str | None, Any] | None:
        polled = _poll(sfn_client, execution_arn)
        return polled if polled[0] != "RUNNING" else None

    try:
        status, error, cause, output = until(ended, execution_arn, timeout_s, wake_on="ends")
    except TimeoutError:
        partial = Execution(execution_arn, "RUNNING", history=history(sfn_client, execution_arn))
        raise TimeoutError(
            f"{execution_arn} still RUNNING after {timeout_s}s; "
            f"states entered: {partial.states_entered}"
        ) from None
    return Execution(
        arn=execution_arn,
        status=status,
        error=error,
        cause=cause,
        output=json.loads(output) if output is not None else None,
        history=history(sfn_client, execution_arn),
    )


def run(
    sfn_client: Any,
    state_machine_arn: str,
    input: dict[str, Any],
    name: str,
    timeout_s: float = 120,
) -> Execution:
    """Start an execution named `name` and wait for it to end."""
    return wait(sfn_client, start(sfn_client, state_machine_arn, input, name), timeout_s)


# ---------------------------------------------------------------------------------------------
# What moto builds anew for every state it runs, built once.
# ---------------------------------------------------------------------------------------------


def _unsigned(**_: Any) -> Any:
    return botocore.UNSIGNED


# Services whose moto handlers take the request's region from the endpoint's host and read nothing else of its
# signature. Not SQS (its handlers read the region from the signature) nor S3 (to its access checks a request
# without a signature is anonymous).
_REGION_FROM_THE_HOST = frozenset({"sagemaker", "dynamodb", "events", "monitoring", "application-autoscaling", "states", "sns"})


def unsigned_where_moto_ignores_it(client: Any) -> Any:
    """`client`, sending its requests unsigned if moto reads nothing of their signature for its service; for
    clients of the default account (credentials of no account of their own) whose requests moto answers in this
    process.

    moto checks no signature: it takes the account from the request's access key, and a request without one is
    the default account's too; and for the services `_REGION_FROM_THE_HOST` names, the region from the endpoint's
    host. Signing was about a fifth of what each request to moto cost."""
    if client.meta.service_model.endpoint_prefix in _REGION_FROM_THE_HOST:
        client.meta.events.register_first("choose-signer", _unsigned)
    return client


_world_clients: dict[tuple[str, str], Any] = {}


def world_client(service: str, region: str) -> Any:
    """A test world's client of `service` in `region`, one per process (building a client costs more than the
    calls a world makes with it), unsigned where moto reads nothing of a signature
    (`unsigned_where_moto_ignores_it`): the default account's. Clients keep nothing of moto's backends, whose
    state each `mock_aws` block resets, so every world of the process can use them."""
    if (service, region) not in _world_clients:
        _world_clients[service, region] = unsigned_where_moto_ignores_it(boto3.client(service, region_name=region))
    return _world_clients[service, region]


_build_task_client = getattr(_task_client_module.boto_client_for, "__wrapped__", _task_client_module.boto_client_for)
_task_clients: dict[tuple[str, str], Any] = {}
_task_clients_lock = threading.Lock()


def _reused_task_client(region: str, service: str, state_credentials: Any = None) -> Any:
    """The client moto's task states call `service` with, when moto runs in this process: built once per
    region and service instead of once per call (moto gives every client the same made-up credentials,
    whatever role the state names), unsigned where moto reads nothing of a signature
    (`unsigned_where_moto_ignores_it`). Clients hold no state of the mock's backends and are safe to share
    between threads. With a moto server, each call gets a new one, as before."""
    if not _task_client_module.botocore_stubber.enabled:
        return _build_task_client(region, service, state_credentials)
    key = (region, service)
    with _task_clients_lock:
        if key not in _task_clients:
            _task_clients[key] = unsigned_where_moto_ignores_it(_build_task_client(region, service))
        return _task_clients[key]


_reused_task_client.__wrapped__ = _build_task_client
# Every module of moto's interpreter that imported the builder by name, and those imported later.
for _module in [_task_client_module, *(m for name, m in list(sys.modules.items()) if name.startswith("moto.stepfunctions.parser"))]:
    if getattr(_module, "boto_client_for", None) is _build_task_client:
        _module.boto_client_for = _reused_task_client


# Parsed JSONPath expressions are immutable: `find()` only reads them.
for _module in (_json_path_module, _result_path_module):
    if not hasattr(_module.parse, "cache_info"):
        _module.parse = functools.lru_cache(maxsize=None)(_module.parse)


# The modules of moto's interpreter whose copies are of states' data (input, results, parameters, history).
# moto copies a state's input, result and parameters several times per state, and `deepcopy`'s bookkeeping was
# about a tenth of an execution's time.
_copy_of_values = type("CopyOfValues", (), {"deepcopy": staticmethod(copy_of)})
for _module in (_states_data_module, _string_expression_module, _result_path_module, _event_manager_module, _task_service_module, _execute_state_module):
    if _module.copy is copy:
        _module.copy = _copy_of_values


class _InTheStartersThread:
    """What moto's task states start as their thread: the target runs when started, in the thread that starts it
    (the execution's), and moto's own code around it is unchanged.

    moto starts a thread for every task state only to stop waiting for it once the state's TimeoutSeconds have
    passed on the wall clock. Nothing here runs for real seconds (waits and retry intervals are recorded, not
    slept; a callback's wait for its token times out through its own wait, `timeout_passes_at_once`), so that
    timer never fired, and the thread and its hand-overs were about a seventh of an execution's CPU. The target
    has ended when `start` returns, so moto's wait for it returns at once, and moto's code then does what it
    did: the same order, the same result and the same errors raised."""

    def __init__(self, target: Callable[[], None], daemon: bool | None = None) -> None:
        self._target: Callable[[], None] | None = target

    def start(self) -> None:
        # moto keeps every thread it starts in a list nothing reads: the target (and the state's data it holds)
        # is let go once it has run.
        target, self._target = self._target, None
        target()


# The one thread execute_state starts is a task state's.
_execute_state_module.Thread = _InTheStartersThread


def _start_branch(self: BranchWorker) -> None:
    """A Parallel branch's thread started as moto starts it, named without the branch's whole program: moto
    wrote the program's representation, every state of it, into each branch thread's name."""
    if self._worker_thread is not None:
        raise RuntimeError("Attempted to rerun a BranchWorker.")
    self._worker_thread = threading.Thread(target=self._thread_routine, name="BranchWorker", daemon=True)
    TMP_THREADS.append(self._worker_thread)
    self._worker_thread.start()


BranchWorker.start = _start_branch


# ---------------------------------------------------------------------------------------------
# Holding an execution at a state.
# ---------------------------------------------------------------------------------------------


class Hold:
    """An execution held before a state: `reached()` blocks until it is there, `release()` lets it on."""

    def __init__(self, state: str, timeout_s: float) -> None:
        self.state = state
        self._timeout_s = timeout_s
        self._reached = threading.Event()
        self._released = threading.Event()

    def reached(self) -> None:
        """Return once an execution waits at the state; TimeoutError if none arrives (a deadlock guard,
        not a timing assumption: the execution is not expected to take this long)."""
        if not self._reached.wait(self._timeout_s):
            raise TimeoutError(f"no execution reached {self.state!r} within {self._timeout_s}s")

    def arrived(self) -> bool:
        """Whether an execution waits at the state now (or did)."""
        return self._reached.is_set()

    def release(self) -> None:
        self._released.set()

    def _arrive(self) -> None:
        self._reached.set()
        # Whoever waits for the hold or for the execution's end (`until`) looks again at once.
        _progress.step("events")
        self._released.wait()


@contextlib.contextmanager
def held_before(state: str, timeout_s: float = 60) -> Iterator[Hold]:
    """Hold every execution moto interprets just before it enters `state` (before its StateEntered
    event and `$$.State.EnteredTime`), until `release()` or the end of the block."""
    hold = Hold(state, timeout_s)
    original = CommonStateField._eval_body

    def eval_body(self: CommonStateField, env: Any) -> None:
        if self.name == state:
            hold._arrive()
        original(self, env)

    try:
        with mock.patch.object(CommonStateField, "_eval_body", eval_body):
            yield hold
    finally:
        hold.release()


class StateClock:
    """The time states are entered at: the real time plus what the test has advanced it by."""

    def __init__(self) -> None:
        self._offset = datetime.timedelta()
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += datetime.timedelta(seconds=seconds)

    def now(self, tz: datetime.tzinfo | None = None) -> datetime.datetime:
        with self._lock:
            return datetime.datetime.now(tz=tz) + self._offset


@contextlib.contextmanager
def state_clock() -> Iterator[StateClock]:
    """Within the block, `$$.State.EnteredTime` of every state moto enters comes from the returned clock."""
    clock = StateClock()
    clocked = type("ClockedDatetime", (), {"now": staticmethod(clock.now)})
    module = type("ClockedDatetimeModule", (), {"datetime": clocked, "timezone": datetime.timezone})
    with mock.patch.object(_state_module, "datetime", module):
        yield clock


@contextlib.contextmanager
def retry_waits() -> Iterator[list[float]]:
    """Within the block, a Retry's interval is recorded in the returned list instead of slept: the test
    sees the backoff the definition asks for, without waiting for it."""
    waits: list[float] = []
    clock = type("RecordingTime", (), {"sleep": staticmethod(waits.append)})
    with mock.patch.object(_retrier_module, "time", clock):
        yield waits


@contextlib.contextmanager
def state_waits() -> Iterator[dict[str, list[int]]]:
    """Within the block, a Wait state of Seconds or SecondsPath records the seconds it asks for under its
    name in the returned dict and goes on at once: the test sees every wait the definition makes, by state."""
    waits: dict[str, list[int]] = {}
    original = StateWait._eval_state

    def eval_state(self: StateWait, env: Any) -> None:
        if not isinstance(self.wait_function, (Seconds, SecondsPath)):
            return original(self, env)
        waits.setdefault(self.name, []).append(self.wait_function._get_wait_seconds(env))
        if self.assign_decl:
            self.assign_decl.eval(env=env)

    with mock.patch.object(StateWait, "_eval_state", eval_state):
        yield waits


def aws_string_matches(text: str, pattern: str) -> bool:
    """StringMatches as the States language defines it: `*` matches any run of characters (line breaks
    included), `\\*` is a literal asterisk, `\\\\` a literal backslash, and every other character is itself."""
    parts, literal, chars = [], [], iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "\\")
            literal.append(escaped)
        elif char == "*":
            parts.append(re.escape("".join(literal)))
            literal = []
            parts.append(".*")
        else:
            literal.append(char)
    parts.append(re.escape("".join(literal)))
    return re.fullmatch("".join(parts), text, flags=re.DOTALL) is not None


@contextlib.contextmanager
def string_matches_as_on_aws() -> Iterator[None]:
    """Within the block, Choice's StringMatches follows `aws_string_matches` instead of fnmatch."""

    def compare(variable: Any, comparison_value: Any) -> bool:
        return isinstance(variable, str) and aws_string_matches(variable, comparison_value)

    with mock.patch.object(StringMatches, "_compare", staticmethod(compare)):
        yield


@dataclass
class Fault:
    """The AWS call of one task state fails with `code`: `times` times, or every time (None).

    `after_the_call`: the service did what was asked and then answered the error (a create that succeeded on
    the server but answered 500, so the retry meets what the first attempt made). `status` is the HTTP status
    of the answer: 400 for a refusal, 500 for a fault of the service. `message` is the answer's message
    (the service's own words where a test decides on them, as Step Functions puts it in the error's Cause).
    `passes`: the attempts (counted from 1, failed or not) the service answers as usual, as between two
    bursts of throttling; `calls` counts the failed ones."""

    code: str
    times: int | None = None
    after_the_call: bool = False
    status: int = 400
    message: str | None = None
    passes: tuple[int, ...] = ()
    calls: int = 0
    attempts: int = 0

    def fires(self) -> bool:
        self.attempts += 1
        if self.attempts in self.passes or (self.times is not None and self.calls >= self.times):
            return False
        self.calls += 1
        return True


@dataclass
class FaultsInTurn:
    """Faults that one state's call meets one after the other: the first as long as it fires, then the next, ...
    (a throttle a Retry rule retries, then transient failures under the service's generic name). Each keeps
    its own count; `code`, `status`, `message` and `after_the_call` are those of the one that fired last."""

    faults: tuple[Fault, ...]
    fired: Fault | None = None

    def fires(self) -> bool:
        self.fired = next((fault for fault in self.faults if fault.fires()), None)
        return self.fired is not None

    @property
    def code(self) -> str:
        return self._fired.code

    @property
    def status(self) -> int:
        return self._fired.status

    @property
    def message(self) -> str | None:
        return self._fired.message

    @property
    def after_the_call(self) -> bool:
        return self._fired.after_the_call

    @property
    def _fired(self) -> Fault:
        if self.fired is None:
            raise LookupError("no fault has fired yet")
        return self.fired


def _service_task_types() -> list[type]:
    """Every class of service task moto (or a test shim) defines that makes its own AWS call: SDK
    integrations, optimised integrations such as SNS, and shims that stand in for missing ones."""
    found, pending = [], list(StateTaskService.__subclasses__())
    while pending:
        task_type = pending.pop()
        pending.extend(task_type.__subclasses__())
        if "_eval_service_task" in vars(task_type):
            found.append(task_type)
    return found


def _service_error(service: str, action: str, code: str, status: int = 400, message: str | None = None) -> Exception:
    """The exception boto3 raises when `service` answers `code`: a modeled class for codes the API
    declares, a plain ClientError otherwise, exactly as a real answer would be parsed."""
    client = world_client(service, PSEUDO_PARAMETERS["AWS::Region"])
    response = {
        "Error": {"Code": code, "Message": message or f"injected {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "injected-fault"},
    }
    operation = action[:1].upper() + action[1:]
    return client.exceptions.from_code(code)(response, operation)


@contextlib.contextmanager
def injected_faults() -> Iterator[dict[str, Fault | FaultsInTurn]]:
    """Within the block, a task state named in the returned dict fails its AWS call as the Fault (or the
    FaultsInTurn) says; other states call moto as usual. Fill the dict before starting executions."""
    faults: dict[str, Fault | FaultsInTurn] = {}
    task_types = _service_task_types()
    originals = {task_type: vars(task_type)["_eval_service_task"] for task_type in task_types}

    def faulty(task_type: type) -> Any:
        def eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
            fault = faults.get(self.name)
            if fault is not None and fault.fires():
                error = _service_error(self._get_boto_service_name(), self._get_boto_service_action(), fault.code, fault.status, fault.message)
                if fault.after_the_call:
                    originals[task_type](self, env, *args, **kwargs)
                    # What the call answered never reaches the state.
                    env.stack.pop()
                raise error
            return originals[task_type](self, env, *args, **kwargs)

        return eval_service_task

    with contextlib.ExitStack() as stack:
        for task_type in task_types:
            stack.enter_context(mock.patch.object(task_type, "_eval_service_task", faulty(task_type)))
        yield faults


@dataclass(frozen=True)
class Call:
    """One AWS call a task state made: the boto3 service and operation names and the request's parameters."""

    state: str
    service: str
    operation: str
    parameters: dict[str, Any]


@contextlib.contextmanager
def recorded_calls() -> Iterator[list[Call]]:
    """Within the block, every AWS call a task state makes is appended to the returned list before it is
    made (a call that then fails is recorded too: AWS authorizes a request before it answers it)."""
    calls: list[Call] = []
    task_types = _service_task_types()
    originals = {task_type: vars(task_type)["_eval_service_task"] for task_type in task_types}

    def recording(task_type: type) -> Any:
        def eval_service_task(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict, *args: Any, **kwargs: Any) -> Any:
            calls.append(Call(self.name, self._get_boto_service_name(), self._get_boto_service_action(), json.loads(json.dumps(normalised_parameters, default=str))))
            return originals[task_type](self, env, resource_runtime_part, normalised_parameters, *args, **kwargs)

        return eval_service_task

    with contextlib.ExitStack() as stack:
        for task_type in task_types:
            stack.enter_context(mock.patch.object(task_type, "_eval_service_task", recording(task_type)))
        yield calls


@contextlib.contextmanager
def put_events_partly_failing() -> Iterator[dict[str, Fault]]:
    """Within the block, PutEvents from a task state named in the returned dict answers as EventBridge does
    when it refuses entries: HTTP 200 with `FailedEntryCount` > 0 and an error code per refused entry (the
    Fault's code), `times` times or every time. The refused entries are not delivered. Other states and other
    callers are answered as usual."""
    faults: dict[str, Fault] = {}
    refusing = threading.local()
    original_eval = StateTaskServiceEvents._eval_service_task
    original_put = events_models.EventsBackend.put_events

    def eval_service_task(self: StateTaskServiceEvents, env: Any, *args: Any, **kwargs: Any) -> Any:
        fault = faults.get(self.name)
        refusing.code = fault.code if fault is not None and fault.fires() else None
        try:
            return original_eval(self, env, *args, **kwargs)
        finally:
            refusing.code = None

    def put_events(backend: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        code = getattr(refusing, "code", None)
        if code is None:
            return original_put(backend, events)
        return [{"ErrorCode": code, "ErrorMessage": f"injected {code}"} for _ in events]

    with (
        mock.patch.object(StateTaskServiceEvents, "_eval_service_task", eval_service_task),
        mock.patch.object(events_models.EventsBackend, "put_events", put_events),
    ):
        yield faults


@contextlib.contextmanager
def eventbridge_errors_named() -> Iterator[None]:
    """Within the block, a failed events:putEvents call fails its task as Step Functions names the errors of its
    optimised integrations, instead of moto's States.Runtime: `EventBridge.<Code>` (``Exception`` appended when
    the code lacks it) for a code EventBridge's API model declares, the generic
    `EventBridge.AmazonEventBridgeException` for any other, with the code in the Cause."""
    original = StateTaskServiceEvents._from_error

    def from_error(self: StateTaskServiceEvents, env: Any, ex: Exception) -> FailureEvent:
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        code = ex.response["Error"]["Code"]
        name = f"EventBridge.{code if code.endswith('Exception') else code + 'Exception'}" if _declared(ex) else "EventBridge.AmazonEventBridgeException"
        cause = f"{ex.response['Error'].get('Message', '')} (Service: AmazonEventBridge; Status Code: {ex.response['ResponseMetadata'].get('HTTPStatusCode')}; Error Code: {code})"
        details = TaskFailedEventDetails(error=name, cause=cause, resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type())
        return FailureEvent(env=env, error_name=CustomErrorName(error_name=name), event_type=HistoryEventType.TaskFailed, event_details=EventDetails(taskFailedEventDetails=details))

    with mock.patch.object(StateTaskServiceEvents, "_from_error", from_error):
        yield


@contextlib.contextmanager
def dynamodb_errors_named() -> Iterator[None]:
    """Within the block, the optimised DynamoDB integrations name a code DynamoDB's API model does not declare
    (AccessDeniedException, ValidationException, ...) with the generic `DynamoDB.AmazonDynamoDBException`, the
    code in the Cause, as Step Functions does; moto names every code `DynamoDB.<Code>`."""
    original = StateTaskServiceDynamoDB._error_cause_from_client_error

    def error_cause(client_error: ClientError) -> tuple[str, str]:
        error, cause = original(client_error)
        return (error if _declared(client_error) else "DynamoDB.AmazonDynamoDBException"), cause

    with mock.patch.object(StateTaskServiceDynamoDB, "_error_cause_from_client_error", staticmethod(error_cause)):
        yield


def _declared(error: ClientError) -> bool:
    """Whether botocore parsed the error into a class of the service's model: a code the model declares."""
    return type(error) is not ClientError


def task_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Task state of a definition by name, including those in Parallel branches and Map processors."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        if state["Type"] == "Task":
            found[name] = state
        for branch in state.get("Branches", []):
            found.update(task_states(branch))
        for processor in (state.get("ItemProcessor"), state.get("Iterator")):
            if processor:
                found.update(task_states(processor))
    return found


@contextlib.contextmanager
def timeout_passes_at_once(state: str) -> Iterator[None]:
    """Within the block, `state`'s wait for its task token runs out as soon as the token has been sent,
    as if its TimeoutSeconds had passed, so the States.Timeout path runs without waiting for it."""
    original = StateTaskServiceCallback._wait_for_task_token_timeout

    def wait_for_task_token(self: StateTaskServiceCallback, *args: Any, **kwargs: Any) -> Any:
        if self.name == state:
            return None
        return original(self, *args, **kwargs)

    with mock.patch.object(StateTaskServiceCallback, "_wait_for_task_token_timeout", wait_for_task_token):
        yield


_programs: dict[tuple[str, str], Any] = {}
# <digest of moto's code>/<digest of a definition and its task states' factory>.pickle: the program moto's parser
# made of the definition.
PARSED_PROGRAMS = Path(__file__).resolve().parents[2] / ".cache" / "sfn-programs"
# The harness's own modules whose objects a parsed program holds (the processing job shim's task service).
_IN_PARSED_PROGRAMS = (Path(__file__).with_name("processing_job_shim.py"),)


@functools.cache
def _parsed_programs() -> Path:
    """The folder of programs parsed by the moto installed now (its files and the ANTLR runtime's, with what
    they require, and the Python version) with the harness modules of `_IN_PARSED_PROGRAMS` as they are now;
    programs parsed by any other are removed."""
    digest = installed.code_digest("moto", "antlr4-python3-runtime")
    digest_files(digest, list(_IN_PARSED_PROGRAMS))
    folder = folder_for(PARSED_PROGRAMS, digest.hexdigest()[:32])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _ParseTreeWhenRead:
    """The parse tree of a definition whose program was read from the cache: parsed the first time anything
    reads it (moto's static analysers, behind DescribeStateMachine, do)."""

    def __init__(self, definition: str, parse: Callable[[str], Any]) -> None:
        self._definition, self._parse, self._tree = definition, parse, None

    def __getattr__(self, name: str) -> Any:
        if self._tree is None:
            self._tree = self._parse(self._definition)[1]
        return getattr(self._tree, name)


def _task_states_factory() -> str:
    """The name of what makes a definition's task states as it is parsed now: moto's factory, or a shim's that
    stands in for it (the processing job shim's, for SageMaker). A program made with one is not run where
    another is installed."""
    factory = _state_task_factory_module.state_task_service_for
    return f"{factory.__module__}.{factory.__qualname__}"


def _read_or_parse(definition: str, factory: str, parse: Callable[[str], Any]) -> Any:
    """(program, tree) as moto's parser returns them. A program parsed in an earlier run of the same moto, with
    the same factory of task states, is read back; a program that does not pickle is parsed every run."""
    digest = hashlib.sha256(f"{factory}\n{definition}".encode()).hexdigest()
    kept = _parsed_programs() / f"{digest}.pickle"
    with contextlib.suppress(OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return pickle.loads(kept.read_bytes()), _ParseTreeWhenRead(definition, parse)
    program, tree = parse(definition)
    with contextlib.suppress(pickle.PicklingError, TypeError, RecursionError, OSError):
        write_atomically(kept, pickle.dumps(program))
    return program, tree


@contextlib.contextmanager
def parsed_once() -> Iterator[None]:
    """Within the block, executions of a definition moto has parsed before reuse the parsed program:
    evaluation keeps its state in each execution's environment, so only the parsing is saved. A program is
    kept on disk for later runs (`.cache/sfn-programs/`), by the digest of its definition, of the factory that
    made its task states (`_task_states_factory`) and of moto's code."""
    original = AmazonStateLanguageParser.parse

    def parse(definition: str) -> Any:
        key = (definition, _task_states_factory())
        if key not in _programs:
            _programs[key] = _read_or_parse(*key, original)
        return _programs[key]

    with mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(parse)):
        yield


# AWS: "A Retry or Catch on States.ALL does not catch States.Runtime", which always fails the execution, and
# States.DataLimitExceeded is terminal for States.ALL too.
_NEVER_CAUGHT = StatesErrorName(typ=StatesErrorNameType.StatesRuntime)
_NOT_CAUGHT_BY_ALL = StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded)
_STATES_ALL = StatesErrorName(typ=StatesErrorNameType.StatesALL)


@contextlib.contextmanager
def uncatchable_as_on_aws() -> Iterator[None]:
    """Within the block, no Retry or Catch matches States.Runtime, and a States.ALL matcher does not match
    States.DataLimitExceeded: such an error fails the execution, as it does on AWS."""
    original = ErrorEqualsDecl._eval_body

    def eval_body(self: ErrorEqualsDecl, env: Any) -> None:
        error_name = env.stack[-1]
        if error_name == _NEVER_CAUGHT or (error_name == _NOT_CAUGHT_BY_ALL and _STATES_ALL in self.error_names and error_name not in self.error_names):
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    with mock.patch.object(ErrorEqualsDecl, "_eval_body", eval_body):
        yield


@contextlib.contextmanager
def listing_lags() -> Iterator[None]:
    """Within the block, ListExecutions shows no running execution: AWS documents it as eventually
    consistent, so an execution that has just started may not be listed yet."""
    listed = StepFunctionBackend.list_executions

    def list_executions(self: StepFunctionBackend, *args: Any, **kwargs: Any) -> Any:
        executions, next_token = listed(self, *args, **kwargs)
        return [e for e in executions if e.status != "RUNNING"], next_token

    with mock.patch.object(StepFunctionBackend, "list_executions", list_executions):
        yield


class _SeemsRunning:
    """An execution as a status read that does not show its end yet describes it."""

    def __init__(self, execution: Any) -> None:
        self._execution = execution

    status = "RUNNING"
    stop_date = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._execution, name)


@contextlib.contextmanager
def ended_executions_seem_running() -> Iterator[None]:
    """Within the block, DescribeExecution answers RUNNING (and no stop date) for the executions that had
    ended when the block began: a status read moments after an execution ended may not show the end yet."""
    described = StepFunctionBackend.describe_execution
    ended = {
        execution.execution_arn
        for backend in stepfunctions_parser_backends.values()
        for regional in backend.values()
        for machine in regional.state_machines
        for execution in machine.executions
        if execution.status != "RUNNING"
    }

    def describe_execution(self: StepFunctionBackend, execution_arn: str) -> Any:
        execution = described(self, execution_arn)
        if execution_arn not in ended:
            return execution
        return _SeemsRunning(execution)

    with mock.patch.object(StepFunctionBackend, "describe_execution", describe_execution):
        yield
