"""What fault injection at every task state of a state machine shares, whichever state machine it is.

A fault test runs named scenarios once (the baseline: how each ends, which task states it enters and the
calls they make), checks that together they enter every task state of the definition, then runs them with
every call throttled once and with one state's call failing for good (`sfn_harness.injected_faults`). Where
faults, retried, change neither how a scenario ends nor the task states it enters, the baseline is the run
with every call throttled once and the calls it is the one to cover failing transiently to the bound
(`throttled_baseline`), checked against how the scenario declares it ends: one run instead of three. Faults
carry the message AWS answers with, which Step Functions puts in the Cause: a call that meets its service's
generic error decides on it whether to retry (`mlops_constructs.sdk_errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mlops_constructs.sdk_errors import BACKOFF_SECONDS, MAX_RETRIES
from tests.behaviour.sfn_harness import Call, Execution, Fault, FaultsInTurn, injected_faults, recorded_calls

# Error codes as each service answers them. Throttling codes are undeclared in most API models, so
# Step Functions reports them under the service's generic exception name; EventBridge's and DynamoDB's models
# declare theirs, which a Retry rule retries by name.
THROTTLED = {"sagemaker": "ThrottlingException", "cloudwatch": "Throttling", "application-autoscaling": "ThrottlingException", "stepfunctions": "ThrottlingException", "events": "ThrottlingException", "dynamodb": "ThrottlingException", "s3": "SlowDown"}
THROTTLE_DECLARED = {"events", "dynamodb"}
# What AWS services answer a throttled request with; Step Functions puts it in the error's Cause, where a call
# that met its service's generic error looks for it (the name says nothing).
THROTTLE_MESSAGE = "Rate exceeded"
# A request SageMaker refuses for good: a ValidationException, under the generic name in Step Functions.
REFUSAL_MESSAGE = "1 validation error detected: Value 'x!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern"
DENIED = {"sagemaker": "AccessDeniedException", "cloudwatch": "AccessDenied", "application-autoscaling": "AccessDeniedException", "stepfunctions": "AccessDeniedException", "events": "AccessDeniedException", "dynamodb": "AccessDeniedException", "s3": "AccessDenied"}
# Refusals that no retry changes and that each service's API model does not declare: they arrive under the
# service's generic error name, where only the Cause tells them from a throttle.
REFUSED = {
    "sagemaker": ("ValidationException", REFUSAL_MESSAGE),
    "cloudwatch": ("AccessDenied", "User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized to perform: cloudwatch:DescribeAlarms"),
    "application-autoscaling": ("AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized to perform: application-autoscaling:RegisterScalableTarget"),
    "stepfunctions": ("AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized to perform: states:DescribeExecution"),
    "events": ("ValidationException", "1 validation error detected: Value at 'entries' failed to satisfy constraint"),
    "dynamodb": ("AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized to perform: dynamodb:PutItem"),
    "s3": ("AllAccessDisabled", "All access to this object has been disabled"),
}
_BOTO_NAMES = {"sfn": "stepfunctions", "applicationautoscaling": "application-autoscaling"}


def decides_on_cause(state: dict) -> bool:
    """Whether a task state meets its service's generic error with a decision on the Cause (`sdk_errors`):
    every SDK call, and the optimised EventBridge and DynamoDB integrations; the optimised SageMaker jobs are
    left as they are."""
    return ":aws-sdk:" in state["Resource"] or service_of(state) in ("events", "dynamodb")


def throttled(service: str, times: int | None = None) -> Fault:
    """`service`'s throttling answer, `times` times or for good."""
    return Fault(THROTTLED[service], times=times, message=THROTTLE_MESSAGE)


def throttle_decided_on_cause(state: dict) -> bool:
    """Whether `throttled` at this state arrives under its service's generic error, to be decided on."""
    return decides_on_cause(state) and service_of(state) not in THROTTLE_DECLARED


def transient(service: str, times: int | None = None) -> Fault:
    """A transient answer under `service`'s generic error name, `times` times or for good: its throttle, or
    where its API model declares the throttle, the service being unavailable."""
    if service in THROTTLE_DECLARED:
        return Fault("ServiceUnavailable", times=times, message="Service Unavailable", status=503)
    return throttled(service, times)


def refused_for_good(service: str) -> Fault:
    """A refusal that no retry changes, under the service's generic error name (`REFUSED`)."""
    code, message = REFUSED[service]
    return Fault(code, message=message)


def waits_before_retrying(state_waits: dict[str, list[int]], state: str) -> list[int]:
    """The waits before retrying the call `state` after a transient failure under its generic name (`sdk_errors`)."""
    return state_waits.get(f"Wait before retrying {state}", [])


def service_of(state: dict) -> str:
    """The boto3 name of the service a task state calls, for SDK (`aws-sdk:<service>:`) and optimised
    (`arn:aws:states:::<service>:`) integrations alike."""
    resource = state["Resource"]
    if ":aws-sdk:" in resource:
        name = resource.split(":aws-sdk:")[1].split(":")[0]
        return _BOTO_NAMES.get(name, name)
    return resource.split(":::")[1].split(":")[0]


# How a scenario ends: (execution status, error).
Outcome = tuple[str, str | None]


@dataclass
class Baseline:
    execution: Execution
    entered: list[str]
    # Every AWS call the scenario's task states made (`sfn_harness.recorded_calls()`).
    calls: list[Call]


def baseline(execution: Execution, tasks: Iterable[str], calls: Iterable[Call] = ()) -> Baseline:
    """How a scenario ended, the task states it entered (each once, in order) and the calls they made."""
    names = set(tasks)
    return Baseline(execution, [s for s in dict.fromkeys(execution.states_entered) if s in names], list(calls))


@dataclass
class ThrottledBaseline(Baseline):
    """A baseline run with every task state's call throttled once, and the states given to it failing
    transiently to the bound (`throttled_baseline`): its calls hold each failed attempt as well as its retry,
    as AWS authorizes each."""

    # The definition's task states by name; each one's throttle (none where the transient failures are its
    # throttles), and the transient failures of the states given them.
    tasks: dict[str, dict]
    throttles: dict[str, Fault]
    transients: dict[str, Fault]
    # The waits of Retry blocks and of Wait states while the scenario acted.
    retry_waits: list[float]
    state_waits: dict[str, list[int]]


def throttled_baseline(
    tasks: dict[str, dict],
    act: Callable[[], Execution],
    retry_waits: list[float],
    state_waits: dict[str, list[int]],
    transient_at: Iterable[str] = (),
) -> ThrottledBaseline:
    """`act` (a scenario's own execution, its world prepared) with every task state of `tasks` throttled once,
    and each state of `transient_at` (states that decide on their generic error) failing transiently as often
    as the bound allows (`transient`, MAX_RETRIES times) and then answering: where its service's throttle comes
    under the generic name, those failures are its throttles; where the API model declares the throttle (a
    Retry rule retries it), the throttle comes first and the failures after it. Records the calls, the faults
    and the waits: `retry_waits` and `state_waits` are the world's, cleared first so that what the baseline
    keeps is the act's.

    Only for a state machine whose faults, retried, leave the task states it enters as they are: then this one
    run is the scenario's baseline, its throttle test and its transient test. (A workflow that looks a job up
    after a failed create enters more states when its creates are throttled: it needs a baseline without faults.)"""
    transient_at = set(transient_at)
    throttles = {name: throttled(service_of(state), times=1) for name, state in tasks.items() if name not in transient_at or not throttle_decided_on_cause(state)}
    transients = {name: transient(service_of(tasks[name]), times=MAX_RETRIES) for name in transient_at}
    retry_waits.clear()
    state_waits.clear()
    # Faults first: the recording wraps them, so a failed attempt is recorded as well as its retry.
    with injected_faults() as faults, recorded_calls() as calls:
        for name in tasks:
            in_turn = tuple(fault for fault in (throttles.get(name), transients.get(name)) if fault is not None)
            faults[name] = in_turn[0] if len(in_turn) == 1 else FaultsInTurn(in_turn)
        execution = act()
    plain = baseline(execution, tasks, calls)
    waits = {state: list(seconds) for state, seconds in state_waits.items()}
    return ThrottledBaseline(plain.execution, plain.entered, plain.calls, tasks, throttles, transients, list(retry_waits), waits)


def covering(scenarios: Iterable[str], baselines: dict[str, Baseline]) -> dict[str, list[str]]:
    """Each task state under the first scenario that enters it: scenario name -> its states."""
    order = list(scenarios)
    owner: dict[str, str] = {}
    for scenario in order:
        for state in baselines[scenario].entered:
            owner.setdefault(state, scenario)
    by_scenario: dict[str, list[str]] = {name: [] for name in order}
    for state, scenario in owner.items():
        by_scenario[scenario].append(state)
    return by_scenario


def assert_throttles_changed_nothing(execution: Execution, ends: Outcome, tasks: dict[str, dict], faults: dict, retry_waits: list[float], state_waits: dict[str, list[int]]) -> None:
    """With every call throttled once, the execution ended as `ends` says (as the scenario declares, or as it
    ended without faults), each task state it entered that `faults` throttles met its throttle exactly once,
    and the retries backed off: a call whose throttle came under its service's generic error waited the first
    backoff once before its retry."""
    entered = [name for name in dict.fromkeys(execution.states_entered) if name in faults]
    assert (execution.status, execution.error) == ends, execution.cause
    assert [name for name in entered if faults[name].calls != 1] == []
    decided = [name for name in entered if throttle_decided_on_cause(tasks[name])]
    assert retry_waits or decided, "the throttles were retried without backing off"
    assert {name: waits_before_retrying(state_waits, name) for name in decided} == {name: [BACKOFF_SECONDS[0]] for name in decided}


def assert_retried_to_the_bound_with_the_whole_backoff(execution: Execution, ends: Outcome, faults: dict[str, Fault], state_waits: dict[str, list[int]]) -> None:
    """With each state of `faults` failing transiently MAX_RETRIES times and then answering, the execution ended
    as its scenario declares (`ends`), each of those states met every one of its failures, and each waited the
    whole backoff before its retries: one retry fewer, or one wait shorter, and the state would have given up or
    not waited."""
    assert (execution.status, execution.error) == ends, execution.cause
    assert {state: fault.calls for state, fault in faults.items()} == dict.fromkeys(faults, MAX_RETRIES)
    assert {state: waits_before_retrying(state_waits, state) for state in faults} == dict.fromkeys(faults, list(BACKOFF_SECONDS))


def assert_throttle_retried_until_the_bound(state: str, fault: Fault, state_waits: dict[str, list[int]]) -> None:
    """A call that failed transiently for good was tried once and retried MAX_RETRIES times, waiting the whole
    backoff and no more, before its failure handling took over."""
    assert fault.calls == 1 + MAX_RETRIES, f"{state} was tried {fault.calls} times"
    assert waits_before_retrying(state_waits, state) == list(BACKOFF_SECONDS)


def error_caught_at(definition: dict, state: str) -> str:
    """The error of the Fail state that `state`'s catch-all leads to, through the states between: past a
    Choice the way a handler goes when nothing else is wrong (its default, then its rules in order), never
    round a polling loop twice. A Pass state that notes which end it is (`$.ending`, on the way through the
    lock's release) decides the Choice that reads it."""
    states = definition["States"]
    (catch,) = [c for c in states[state]["Catch"] if "States.ALL" in c["ErrorEquals"]]
    visited: set[str] = set()

    def walk(name: str, ending: str | None) -> str | None:
        if name in visited:
            return None
        visited.add(name)
        here = states[name]
        if here["Type"] == "Fail":
            return here["Error"]
        if here["Type"] == "Pass" and here.get("ResultPath") == "$.ending":
            ending = here["Result"]
        chosen = [c["Next"] for c in here.get("Choices", []) if c.get("Variable") == "$.ending" and c.get("StringEquals") == ending]
        if here["Type"] == "Choice" and ending is not None and any(c.get("Variable") == "$.ending" for c in here["Choices"]):
            ways = chosen or [here["Default"]]
        else:
            ways = [here["Next"]] if "Next" in here else [here.get("Default"), *(c["Next"] for c in here.get("Choices", []))]
        return next((error for way in ways if way and (error := walk(way, ending))), None)

    error = walk(catch["Next"], None)
    if error is None:
        raise AssertionError(f"{state}'s catch leads to no Fail state")
    return error
