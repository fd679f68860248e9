"""AWS calls from state machines that retry what is transient and nothing else.

Step Functions names a service's error `<Service>.<Code>` only for codes the service's API model declares.
Codes it does not declare arrive under one generic name per service, the code and message only in `Cause`:
throttling ("Rate exceeded", S3's `SlowDown`, CloudWatch's `Throttling`, Application Auto Scaling's
`RateExceeded`), internal faults, and the refusals (`ValidationException`, `AccessDenied`, a missing resource
the model does not name). A Retry on the generic name would retry a permanent refusal for about two minutes
before its Catch saw it, and a Retry cannot look at `Cause`. So a call catches its service's generic name
first and decides on its `Cause`:

    <task> --<generic name>--> "Retry <task>?"
        transient, retried fewer than MAX_RETRIES times -> "Count the first retry of <task>" (or "Count retries of
            <task>", which picks the next wait of BACKOFF_SECONDS) -> "Wait before retrying <task>" -> <task>
        anything else -> the handler the task's own Catch names (with the error where that Catch puts it),
                         or, for a task without one, a Fail state that ends as the error would have

The errors a service's model declares for throttling and faults keep an ordinary Retry rule (`ServiceErrors.retried`).

Retries are counted per state at `$.retries.<state key>`, for the whole execution. A call polled in a loop
counts them inside the loop's own counter instead (`retries_within`, e.g. `$.polls.retries.<state key>`),
which the loop rewrites after every poll: like a Retry rule, each poll gets MAX_RETRIES of its own.

The same decision serves `aws-sdk:<service>:<action>` tasks (`SdkCall`, or `RawSdkCall` for a task whose
statement is granted elsewhere) and the optimised EventBridge and DynamoDB integrations (`PutEventsCall`,
`PutItemCall`, `GetItemCall`, `DeleteItemCall`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops_constructs.json_paths import DISCARD, states_math_add


@dataclass(frozen=True)
class ServiceErrors:
    """How Step Functions names one service's errors: `generic`, the name of every code its API model does not
    declare; `retried`, the declared names of its throttling and faults (a Retry rule retries them); and
    `transient_causes`, what else a transient failure's Cause may hold beyond the shapes every service shares."""

    generic: str
    retried: tuple[str, ...] = ()
    transient_causes: tuple[str, ...] = ()


# What a transient failure's Cause holds in any service, in the shapes it may come in: the SDK's text
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
SAGEMAKER = ServiceErrors(
    "SageMaker.SageMakerException",
    # The names a throttle or a fault would get if SageMaker's API model declared them.
    retried=("SageMaker.ThrottlingException", "SageMaker.InternalFailureException"),
)
# CloudWatch throttles with the undeclared code `Throttling`; its declared fault is the shape InternalServiceFault.
CLOUDWATCH = ServiceErrors("CloudWatch.CloudWatchException", retried=("CloudWatch.InternalServiceFaultException",))
APPLICATION_AUTOSCALING = ServiceErrors(
    "ApplicationAutoScaling.ApplicationAutoScalingException",
    retried=("ApplicationAutoScaling.ConcurrentUpdateException", "ApplicationAutoScaling.InternalServiceException"),
    # Its throttle is the undeclared code `RateExceeded`; ConcurrentUpdate in case a model leaves it out.
    transient_causes=("*RateExceeded*", "*ConcurrentUpdate*"),
)
# Step Functions' own throttling (`ThrottlingException`) is undeclared; only the KMS throttle of encrypted
# execution data is declared.
SFN = ServiceErrors("Sfn.SfnException", retried=("Sfn.KmsThrottlingException",))
# S3's API model declares no throttling or internal error: `SlowDown` ("Please reduce your request rate.", 503)
# and `InternalError` (500) arrive under the generic name.
S3 = ServiceErrors("S3.S3Exception", transient_causes=("*SlowDown*", "*reduce your request rate*", "*InternalError*"))
# The optimised PutEvents integration fails with EventBridge.FailedEntry when an entry was refused, most often
# throttled, as EventBridge's guide on PutEvents says to retry; request-level errors are named EventBridge.<Code>,
# the generic name for codes the model does not declare.
EVENTBRIDGE = ServiceErrors(
    "EventBridge.AmazonEventBridgeException",
    retried=("EventBridge.FailedEntry", "EventBridge.ThrottlingException", "EventBridge.InternalException"),
    transient_causes=("*InternalException*",),
)
# The optimised DynamoDB integrations name declared codes DynamoDB.<Code>, with or without an added
# "Exception" depending on the SDK behind them: both spellings are retried. An SDK whose model predates
# ThrottlingException reports an on-demand table's throttle under the generic name, "Error Code:
# ThrottlingException" in the Cause.
DYNAMODB = ServiceErrors(
    "DynamoDB.AmazonDynamoDBException",
    retried=(
        "DynamoDB.ThrottlingException",
        "DynamoDB.ProvisionedThroughputExceededException",
        "DynamoDB.RequestLimitExceeded",
        "DynamoDB.RequestLimitExceededException",
        "DynamoDB.InternalServerError",
        "DynamoDB.InternalServerErrorException",
    ),
    transient_causes=("*ProvisionedThroughputExceeded*", "*RequestLimitExceeded*"),
)
# By the service name of `aws-sdk:<service>:<action>` (and of the optimised integrations' resources).
SERVICE_ERRORS = {
    "sagemaker": SAGEMAKER,
    "cloudwatch": CLOUDWATCH,
    "applicationautoscaling": APPLICATION_AUTOSCALING,
    "sfn": SFN,
    "s3": S3,
    "events": EVENTBRIDGE,
    "dynamodb": DYNAMODB,
}
# Seconds to wait before each retry: the backoff of the Retry rules (2 s, doubling, at most 60 s).
BACKOFF_SECONDS = (2, 4, 8, 16, 32, 60)
MAX_RETRIES = len(BACKOFF_SECONDS)
MAX_STATE_NAME = 80
# Errors a Catch matches that include a generic name (States.TaskFailed matches every error but States.Timeout).
_COVERING = {"States.ALL", "States.TaskFailed"}


def retries_path(name: str, within: str = "$") -> str:
    """Where the retries of the state `name` are counted: `<within>.retries.<its words joined>`."""
    key = "".join(word[:1].upper() + word[1:] for word in re.findall(r"[A-Za-z0-9]+", name))
    return f"{within}.retries.{key}"


class RetriesWhatIsTransient:
    """Mixed into a task state class, before it: the task's generic errors go through the transient-or-not
    decision above, and its service's declared transient errors get a Retry rule.

    The decision is made by the first Catch that covers the generic name (States.ALL, States.TaskFailed or
    the name itself): its handler and ResultPath are where a failure that is not retried goes. A task that
    is never given such a Catch gets one from `end_uncaught_sdk_errors`."""

    # The errors of the service a class always calls; classes whose service varies pass `errors`.
    service_errors: ServiceErrors | None = None

    def __init__(
        self, scope: Construct, name: str, *, retry: dict, errors: ServiceErrors | None = None, retries_within: str = "$", **kwargs: object
    ) -> None:
        errors = errors or type(self).service_errors
        if errors is None:
            raise TypeError(f"{type(self).__name__} names no service errors: pass errors= or set the class's service_errors")
        super().__init__(scope, name, **kwargs)
        self._scope = scope
        self._name = name
        self.service_errors = errors
        self.counted = retries_path(name, retries_within)
        self.decides_generic_errors = False
        if errors.retried:
            self.add_retry(errors=list(errors.retried), **retry)

    def add_catch(self, handler: sfn.IChainable, *, errors: list[str] | None = None, result_path: str | None = None, **kwargs: object) -> sfn.TaskStateBase:
        generic = self.service_errors.generic
        covered = set(errors or ["States.ALL"]) & {generic, *_COVERING}
        if covered and not self.decides_generic_errors:
            self.decide_generic_errors(handler, result_path if result_path and result_path != DISCARD else "$.error")
            if set(errors or []) == {generic}:
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
        counter_absent, counter_below_max, wait_time = _counter_rules(counted)
        wait = sfn.Wait(self._scope, wait_name, time=wait_time)
        wait.next(self)
        first = sfn.Pass(self._scope, first_name, result=_first_retry(), result_path=counted)
        again = sfn.Pass(
            self._scope,
            count_name,
            parameters={
                # Written out (json_paths): JsonPath.math_add and number_at would cost two round trips to
                # aws-cdk-lib's node process for each of some 120 calls.
                "count.$": states_math_add(f"{counted}.count", 1),
                # The count before this retry indexes the backoff: the second retry waits BACKOFF_SECONDS[1].
                "seconds.$": f"States.ArrayGetItem(States.Array({_BACKOFF}), {counted}.count)",
            },
            result_path=counted,
        )
        first.next(wait)
        again.next(wait)
        no_cause, not_transient = _cause_conditions(f"{error_path}.Cause", self.service_errors.transient_causes)
        # One path per rule: a rule that reads an absent path is a States.Runtime error, which nothing catches.
        decision = (
            sfn.Choice(self._scope, decide)
            .when(no_cause, give_up)
            .when(not_transient, give_up)
            .when(counter_absent, first)
            .when(counter_below_max, again)
            .otherwise(give_up)
        )
        super().add_catch(decision, errors=[self.service_errors.generic], result_path=error_path)


@functools.cache
def _first_retry() -> sfn.Result:
    """The counter of a first retry; a value every call shares, made once."""
    return sfn.Result.from_object({"count": 1, "seconds": BACKOFF_SECONDS[0]})


_BACKOFF = ", ".join(str(seconds) for seconds in BACKOFF_SECONDS)


@functools.cache
def _counter_rules(counted: str) -> tuple[sfn.Condition, sfn.Condition, sfn.WaitTime]:
    """The rules "no retry counted at `counted` yet" and "fewer than MAX_RETRIES counted", and the wait the
    counter names. Values, not constructs: calls of the same name in two state machines (each model's
    deployer) count at the same path and share them, three round trips to aws-cdk-lib's node process fewer."""
    count = f"{counted}.count"
    return sfn.Condition.is_not_present(count), sfn.Condition.number_less_than(count, MAX_RETRIES), sfn.WaitTime.seconds_path(f"{counted}.seconds")


@functools.cache
def _cause_conditions(cause: str, service_causes: tuple[str, ...]) -> tuple[sfn.Condition, sfn.Condition]:
    """The rules "no Cause at `cause`" and "a Cause that is not transient" (for a service whose own transient
    shapes are `service_causes`). Conditions are values, not constructs: every call of a service whose error
    lands at the same path shares them, which spares each call a dozen round trips to aws-cdk-lib's node
    process (a tenth of a synth for some sixty calls)."""
    transient = sfn.Condition.or_(*(sfn.Condition.string_matches(cause, pattern) for pattern in (*TRANSIENT_CAUSES, *service_causes)))
    return sfn.Condition.is_not_present(cause), sfn.Condition.not_(transient)


class SdkCall(RetriesWhatIsTransient, tasks.CallAwsService):
    """An `aws-sdk:<service>:<action>` task that retries what is transient."""

    def __init__(
        self, scope: Construct, name: str, *, service: str, action: str, parameters: dict, resources: list[str], retry: dict, retries_within: str = "$", **kwargs: object
    ) -> None:
        super().__init__(
            scope, name, errors=SERVICE_ERRORS[service], retry=retry, retries_within=retries_within,
            service=service, action=action, parameters=parameters, iam_resources=resources, **kwargs,
        )


class RawSdkCall(RetriesWhatIsTransient, sfn.CustomState):
    """An `aws-sdk` task written as its state JSON (`state_json`, whose Resource names the service), for a call
    whose permission is granted elsewhere: CDK generates no statement for it."""

    def __init__(self, scope: Construct, name: str, *, service: str, state_json: dict, retry: dict) -> None:
        super().__init__(scope, name, errors=SERVICE_ERRORS[service], retry=retry, state_json=state_json)


class PutEventsCall(RetriesWhatIsTransient, tasks.EventBridgePutEvents):
    """The optimised `events:putEvents` task that retries what is transient."""

    service_errors = EVENTBRIDGE


class PutItemCall(RetriesWhatIsTransient, tasks.DynamoPutItem):
    """The optimised `dynamodb:putItem` task that retries what is transient."""

    service_errors = DYNAMODB


class GetItemCall(RetriesWhatIsTransient, tasks.DynamoGetItem):
    """The optimised `dynamodb:getItem` task that retries what is transient."""

    service_errors = DYNAMODB


class DeleteItemCall(RetriesWhatIsTransient, tasks.DynamoDeleteItem):
    """The optimised `dynamodb:deleteItem` task that retries what is transient."""

    service_errors = DYNAMODB


def end_uncaught_sdk_errors(scope: Construct) -> None:
    """Give every call in `scope` that retries what is transient, and has no Catch of its generic errors, one
    that retries what is transient and otherwise fails as the error would have (a Fail state with the error
    and its cause): inside a Parallel or Map, the enclosing state's own Catch then sees the same error. Two
    calls whose names would share a retry counter are refused."""
    calls = [construct for construct in scope.node.find_all() if isinstance(construct, RetriesWhatIsTransient)]
    counters: dict[str, str] = {}
    for call in calls:
        # The name the call was made with is its construct ID, known here without asking aws-cdk-lib.
        other = counters.setdefault(call.counted, call._name)
        if other != call._name:
            raise ValueError(f"calls {other!r} and {call._name!r} would count their retries at one path, {call.counted}: rename one")
    for call in calls:
        if not call.decides_generic_errors:
            fail = sfn.Fail(scope, f"Fail as {call._name} did", error_path="$.error.Error", cause_path="$.error.Cause")
            call.decide_generic_errors(fail, "$.error")
