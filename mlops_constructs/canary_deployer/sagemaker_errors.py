"""SageMaker calls that retry what is transient and nothing else.

Step Functions names an SDK error `SageMaker.<Code>` only for codes SageMaker's API model declares. Its
throttling (`ThrottlingException`, "Rate exceeded") and its internal faults are not declared, and neither is
`ValidationException`, the answer to a bad name or a request SageMaker refuses: all of them arrive under the
one generic name `SageMaker.SageMakerException`, the code and message only in `Cause`. A Retry on that name
would retry a permanent refusal for about two minutes before its Catch saw it, and a Retry cannot look at
`Cause`. So a SageMaker call catches the generic name first and decides on its `Cause`:

    <task> --SageMaker.SageMakerException--> "Retry <task>?"
        transient, retried fewer than MAX_RETRIES times -> "Count the first retry of <task>" (or "Count retries of
            <task>", which picks the next wait of BACKOFF_SECONDS) -> "Wait before retrying <task>" -> <task>
        anything else -> the handler the task's own Catch names (with the error where that Catch puts it),
                         or, for a task without one, a Fail state that ends as the error would have

Retries are counted per state at `$.retries.<state key>`, for the whole execution. A call polled in a loop
counts them inside the loop's own counter instead (`retries_within`, e.g. `$.polls.retries.<state key>`),
which the loop rewrites after every poll: like a Retry rule, each poll gets MAX_RETRIES of its own.
"""

from __future__ import annotations

import functools
import re

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

GENERIC_ERROR = "SageMaker.SageMakerException"
# The named errors Step Functions would give a throttle or a fault if SageMaker's API model declared them;
# retried by the state's own Retry.
NAMED_TRANSIENT_ERRORS = ["SageMaker.ThrottlingException", "SageMaker.InternalFailureException"]
# What a transient failure's Cause holds, in the shapes it may come in: the SDK's text
# ("Rate exceeded (Service: SageMaker, Status Code: 400, Request ID: ...)"), the older SDK's text with
# "Error Code: ThrottlingException", or the code inside JSON. A status of 429 or 5xx is the service's own
# fault or limit, never the request's. StringMatches is case-sensitive and knows only the `*` wildcard.
TRANSIENT_CAUSES = (
    "*Rate exceeded*",
    "*Rate Exceeded*",
    "*Throttl*",
    "*TooManyRequests*",
    "*Too Many Requests*",
    "*Status Code: 429*",
    "*Status Code: 5*",
    "*InternalFailure*",
    "*InternalServerError*",
    "*ServiceUnavailable*",
)
# Seconds to wait before each retry: the backoff of the deployer's Retry rules (2 s, doubling, at most 60 s).
BACKOFF_SECONDS = (2, 4, 8, 16, 32, 60)
MAX_RETRIES = len(BACKOFF_SECONDS)
MAX_STATE_NAME = 80
# Errors a Catch matches that include the generic name (States.TaskFailed matches every error but States.Timeout).
_COVERING = {GENERIC_ERROR, "States.ALL", "States.TaskFailed"}


def retries_path(name: str, within: str = "$") -> str:
    """Where the retries of the state `name` are counted: `<within>.retries.<its words joined>`."""
    key = "".join(word[:1].upper() + word[1:] for word in re.findall(r"[A-Za-z0-9]+", name))
    return f"{within}.retries.{key}"


class SageMakerCall(tasks.CallAwsService):
    """An `aws-sdk:sagemaker` task whose generic errors go through the transient-or-not decision above.

    The decision is made by the first Catch that covers the generic name (States.ALL, States.TaskFailed or
    the name itself): its handler and ResultPath are where a failure that is not retried goes. A task that
    is never given such a Catch gets one from `end_uncaught_sagemaker_errors`."""

    def __init__(
        self, scope: Construct, name: str, *, action: str, parameters: dict, resources: list[str], retry: dict, retries_within: str = "$", **kwargs: object
    ) -> None:
        super().__init__(scope, name, service="sagemaker", action=action, parameters=parameters, iam_resources=resources, **kwargs)
        self._scope = scope
        self._name = name
        self.counted = retries_path(name, retries_within)
        self.decides_generic_errors = False
        self.add_retry(errors=NAMED_TRANSIENT_ERRORS, **retry)

    def add_catch(self, handler: sfn.IChainable, *, errors: list[str] | None = None, result_path: str | None = None, **kwargs: object) -> sfn.TaskStateBase:
        covered = set(errors or ["States.ALL"]) & _COVERING
        if covered and not self.decides_generic_errors:
            self.decide_generic_errors(handler, result_path if result_path and result_path != sfn.JsonPath.DISCARD else "$.error")
            if set(errors or []) == {GENERIC_ERROR}:
                # The decision already leads every generic error that is not retried to this handler.
                return self
        return super().add_catch(handler, errors=errors, result_path=result_path, **kwargs)

    def decide_generic_errors(self, give_up: sfn.IChainable, error_path: str) -> None:
        """Catch the generic name at `error_path`: retry it if transient, else go to `give_up`."""
        self.decides_generic_errors = True
        name = self._name
        names = (f"Retry {name}?", f"Count the first retry of {name}", f"Count retries of {name}", f"Wait before retrying {name}")
        too_long = [n for n in names if len(n) > MAX_STATE_NAME]
        if too_long:
            raise ValueError(f"state names longer than Step Functions' {MAX_STATE_NAME} characters: {too_long}; shorten the task name {name!r}")
        decide, first_name, count_name, wait_name = names
        counted = self.counted
        cause = f"{error_path}.Cause"
        wait = sfn.Wait(self._scope, wait_name, time=sfn.WaitTime.seconds_path(f"{counted}.seconds"))
        wait.next(self)
        first = sfn.Pass(self._scope, first_name, result=sfn.Result.from_object({"count": 1, "seconds": BACKOFF_SECONDS[0]}), result_path=counted)
        backoff = ", ".join(str(seconds) for seconds in BACKOFF_SECONDS)
        again = sfn.Pass(
            self._scope,
            count_name,
            parameters={
                "count": sfn.JsonPath.math_add(sfn.JsonPath.number_at(f"{counted}.count"), 1),
                # The count before this retry indexes the backoff: the second retry waits BACKOFF_SECONDS[1].
                "seconds.$": f"States.ArrayGetItem(States.Array({backoff}), {counted}.count)",
            },
            result_path=counted,
        )
        first.next(wait)
        again.next(wait)
        no_cause, not_transient = _cause_conditions(cause)
        # One path per rule: a rule that reads an absent path is a States.Runtime error, which nothing catches.
        decision = (
            sfn.Choice(self._scope, decide)
            .when(no_cause, give_up)
            .when(not_transient, give_up)
            .when(sfn.Condition.is_not_present(f"{counted}.count"), first)
            .when(sfn.Condition.number_less_than(f"{counted}.count", MAX_RETRIES), again)
            .otherwise(give_up)
        )
        super().add_catch(decision, errors=[GENERIC_ERROR], result_path=error_path)


@functools.cache
def _cause_conditions(cause: str) -> tuple[sfn.Condition, sfn.Condition]:
    """The rules "no Cause at `cause`" and "a Cause that is not transient". Conditions are values, not
    constructs: every call whose error lands at the same path shares them, which spares each call a dozen
    round trips to aws-cdk-lib's node process (a tenth of a synth for some sixty calls)."""
    transient = sfn.Condition.or_(*(sfn.Condition.string_matches(cause, pattern) for pattern in TRANSIENT_CAUSES))
    return sfn.Condition.is_not_present(cause), sfn.Condition.not_(transient)


def end_uncaught_sagemaker_errors(scope: Construct) -> None:
    """Give every SageMakerCall in `scope` without a Catch of its generic errors one that retries what is
    transient and otherwise fails as the error would have (a Fail state with the error and its cause):
    inside a Parallel or Map, the enclosing state's own Catch then sees the same error. Two calls whose
    names would share a retry counter are refused."""
    calls = [construct for construct in scope.node.find_all() if isinstance(construct, SageMakerCall)]
    counters: dict[str, str] = {}
    for call in calls:
        name = call.node.id
        other = counters.setdefault(call.counted, name)
        if other != name:
            raise ValueError(f"SageMaker calls {other!r} and {name!r} would count their retries at one path, {call.counted}: rename one")
    for construct in calls:
        if not construct.decides_generic_errors:
            name = construct.node.id
            fail = sfn.Fail(scope, f"Fail as {name} did", error_path="$.error.Error", cause_path="$.error.Cause")
            construct.decide_generic_errors(fail, "$.error")

