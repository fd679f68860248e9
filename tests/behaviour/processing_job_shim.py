"""SageMaker processing jobs run from Step Functions with `createProcessingJob.sync`, for moto 5.2.5.

moto's interpreter does not run the optimised SageMaker integration's `.sync` pattern (it forwards the
request and refuses `.sync`), and moto's processing jobs are `Completed` the moment they are created, keep
no `ProcessingResources` and silently replace a job of the same name. `processing_job_shim()` patches both
sides so a state machine meets processing jobs the way it does on AWS:

- `arn:aws:states:::sagemaker:createProcessingJob.sync` creates the job through boto3 (so botocore checks the
  request against SageMaker's API model), then waits for it to end. `Completed`: the task's result is
  DescribeProcessingJob's answer. `Failed` or `Stopped`: the task fails with `States.TaskFailed` and that
  answer, FailureReason and ExitMessage included, as JSON in the Cause, as AWS documents for `.sync` jobs; or, with
  `ProcessingJobShim.failed_jobs_raise(SFN_ERROR_NAME)`, in the other shape AWS may use, with the
  optimised integration's generic error name and a Cause that is no job description. A refused create
  call fails the task with `SageMaker.AmazonSageMakerException` (the optimised integration's name for every
  SageMaker error code) and the code in the Cause; Step Functions does not retry it.
- A job's ExitMessage is what its container left in /opt/ml/output/message (`next_job(exit_message=...)`), as
  DescribeProcessingJob reports it after the job ended; SageMaker's own FailureReason for a script that exits
  non-zero says only that.
- `answer_500_after_create()` makes the next create call start its job and then answer InternalFailure (500).
- ListProcessingJobs reports the status and FailureReason the test scripted.
- Stopping the execution while a job runs stops the job (StopProcessingJob), as Step Functions does for `.sync`.
- A job is `InProgress` for one DescribeProcessingJob read, then ends as the test scripted it with
  `ProcessingJobShim.next_job()` (default `Completed`); `hold()` keeps the jobs of a step `InProgress` until
  the test releases them. Nothing depends on the wall clock.
- CreateProcessingJob refuses a name that is not SageMaker's pattern of at most 63 characters, or a tag
  key or value outside SageMaker's tag pattern (ValidationException), or a name that exists already
  (ResourceInUse), and keeps the whole request; `create_calls` lists every call's job name, refused or not.

Other `arn:aws:states:::sagemaker:*` resources keep moto's request/response forwarding.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from botocore.exceptions import ClientError
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.core.exceptions import JsonRESTError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent, FailureEventException
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import StateTaskServiceCallback
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported import StateTaskServiceUnsupported
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.stepfunctions.parser.asl.utils.json_path import extract_json
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from tests.behaviour import sfn_harness

JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
# SageMaker's tag pattern, ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$: \w stands for letters, digits and _, \s for spaces.
TAG_TEXT = re.compile(r"[\w\s.:/=+\-@]*")
ENDED = ("Completed", "Failed", "Stopped")
DEFAULT_FAILURE_REASON = "AlgorithmError: the job's script exited with a non-zero code"
# What AWS answers for the optimised SageMaker integration whatever the code: the Java SDK's exception class.
SFN_ERROR_NAME = "SageMaker.AmazonSageMakerException"


class ResourceInUse(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("ResourceInUse", message)


class InternalFailure(JsonRESTError):
    code = 500

    def __init__(self) -> None:
        super().__init__("InternalFailure", "We encountered an internal error. Please try again.")


@dataclass
class Job:
    """A processing job as SageMaker keeps it: the request, and the status the test scripted."""

    request: dict[str, Any]
    outcome: str = "Completed"
    reason: str | None = None
    exit_message: str | None = None
    reads: int = 0
    held: bool = False
    stopped: bool = False

    @property
    def name(self) -> str:
        return self.request["ProcessingJobName"]

    def status(self) -> str:
        if self.stopped:
            return "Stopped"
        if self.held or self.reads <= 1:
            return "InProgress"
        return self.outcome


@dataclass
class ProcessingJobShim:
    jobs: dict[str, Job] = field(default_factory=dict)
    stop_calls: list[str] = field(default_factory=list)
    create_calls: list[str] = field(default_factory=list)
    failed_job_error: str = StatesErrorNameType.StatesTaskFailed.to_name()
    _answers_500: int = 0
    _scripts: list[tuple[Callable[[str], bool], str, str | None, str | None]] = field(default_factory=list)
    _holds: dict[str, threading.Event] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def next_job(
        self,
        outcome: str,
        *,
        named: Callable[[str], bool] = lambda name: True,
        reason: str | None = None,
        exit_message: str | None = None,
    ) -> None:
        """The next job created whose name satisfies `named` ends `outcome` ("Completed" or "Failed"), with the
        ExitMessage its script left, if any."""
        reason = reason if reason is not None or outcome != "Failed" else DEFAULT_FAILURE_REASON
        self._scripts.append((named, outcome, reason, exit_message))

    def failed_jobs_raise(self, error: str) -> None:
        """A `.sync` task whose job ended Failed or Stopped fails with `error`; other than States.TaskFailed,
        its Cause is SageMaker's exception text, not the job's description."""
        self.failed_job_error = error

    def answer_500_after_create(self, times: int = 1) -> None:
        """The next `times` create calls start their job, then answer InternalFailure (HTTP 500)."""
        self._answers_500 += times

    def hold(self, suffix: str) -> threading.Event:
        """Jobs whose name ends with `-<suffix>` stay InProgress until the returned event is set."""
        self._holds[suffix] = threading.Event()
        return self._holds[suffix]

    def created(self) -> list[dict[str, Any]]:
        """Every accepted CreateProcessingJob request, oldest first."""
        return [copy.deepcopy(job.request) for job in self.jobs.values()]

    def status(self, name: str) -> str:
        return self.jobs[name].status()

    # -- SageMaker's side ----------------------------------------------------------------------------

    def _create(self, request: dict[str, Any]) -> bool:
        """Keep the job; whether its create call answers 500 now that the job exists."""
        name = request.get("ProcessingJobName", "")
        self.create_calls.append(name)
        for tag in request.get("Tags") or []:
            if not (TAG_TEXT.fullmatch(tag["Key"]) and TAG_TEXT.fullmatch(tag["Value"])):
                raise ValidationError(
                    f"1 validation error detected: Value '{tag['Value']}' at 'tags.{tag['Key']}.member.value' failed to satisfy "
                    "constraint: Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$"
                )
        if not JOB_NAME.fullmatch(name):
            raise ValidationError(
                f"1 validation error detected: Value '{name}' at 'processingJobName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
            )
        with self._lock:
            if name in self.jobs:
                raise ResourceInUse(f"Job name must be unique within an AWS account and region, and a job with this name already exists ({name})")
            job = Job(request=copy.deepcopy(request))
            for index, (named, outcome, reason, exit_message) in enumerate(self._scripts):
                if named(name):
                    job.outcome, job.reason, job.exit_message = outcome, reason, exit_message
                    del self._scripts[index]
                    break
            self.jobs[name] = job
            answers_500 = self._answers_500 > 0
            self._answers_500 -= answers_500
        return answers_500

    def _summaries(self, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """ListProcessingJobs' summaries with the status (and reason) the test scripted, as a read sees it."""
        with self._lock:
            listed = []
            for summary in summaries:
                job = self.jobs.get(summary["ProcessingJobName"])
                if job is not None:
                    job.reads += 1
                    status = job.status()
                    summary = {**summary, "ProcessingJobStatus": status}
                    if status == "Failed":
                        summary["FailureReason"] = job.reason
                    elif status == "Stopped":
                        summary["ExitMessage"] = "Stopped by the caller"
                    if status in ENDED and job.exit_message is not None:
                        summary["ExitMessage"] = job.exit_message
                listed.append(summary)
            return listed

    def _describe(self, name: str, answer: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                return answer
            hold = next((event for suffix, event in self._holds.items() if name.endswith(f"-{suffix}")), None)
            job.held = hold is not None and not hold.is_set()
            job.reads += 1
            status = job.status()
            described = {**answer, **{k: v for k, v in job.request.items() if k not in ("Tags",)}, "ProcessingJobStatus": status}
            if status == "Failed":
                described["FailureReason"] = job.reason
            elif status == "Stopped":
                described["ExitMessage"] = "Stopped by the caller"
            if status in ENDED and job.exit_message is not None:
                described["ExitMessage"] = job.exit_message
            return described

    def _stop(self, name: str) -> None:
        with self._lock:
            self.stop_calls.append(name)
            job = self.jobs.get(name)
            if job is not None and job.status() not in ENDED:
                job.stopped = True


class StateTaskServiceSageMaker(StateTaskServiceUnsupported):
    """The optimised SageMaker integration, with `.sync` for createProcessingJob.

    A task state is made when its definition is parsed, and the parsed program is kept for later executions
    (`sfn_harness.parsed_once`), in later worlds too: so it finds the shim of the world that runs it when it
    runs (`_active`), never the one active when it was parsed."""

    def __init__(self) -> None:
        # moto's callback machinery expects the task-token pattern among the supported ones.
        StateTaskServiceCallback.__init__(self, supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})

    def _before_eval_execution(self, env, resource_runtime_part, raw_parameters, state_credentials) -> None:
        # moto's lexer reads "RoleArn.$" as the Credentials keyword, so inside Parameters it arrives as a plain
        # field holding the path; Step Functions evaluates it like any other "<field>.$".
        if isinstance(raw_parameters.get("RoleArn.$"), str):
            raw_parameters["RoleArn"] = extract_json(raw_parameters.pop("RoleArn.$"), env.states.get_input())
        super()._before_eval_execution(env, resource_runtime_part, raw_parameters, state_credentials)

    def _validate_service_integration_is_supported(self) -> None:
        if self.resource.condition == ResourceCondition.Sync and self.resource.api_action != "createProcessingJob":
            raise ValueError(f"the processing job shim runs createProcessingJob.sync only, not {self.resource.resource_arn}")

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials) -> None:
        # The client moto's own task states call a service with (`sfn_harness` keeps one per region and service):
        # Step Functions reports the service's answer, without botocore's retries, which would hide a 500.
        client = boto_client.boto_client_for(resource_runtime_part.region, "sagemaker")
        response = getattr(client, self._get_boto_service_action())(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        env.stack.append(response)

    def _from_error(self, env, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            error = ex.response["Error"]
            cause = (
                f"{error['Message']} (Service: AmazonSageMaker; Status Code: {ex.response['ResponseMetadata'].get('HTTPStatusCode', 400)}; "
                f"Error Code: {error['Code']}; Request ID: {ex.response['ResponseMetadata'].get('RequestId', '')}; Proxy: null)"
            )
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(SFN_ERROR_NAME),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=SFN_ERROR_NAME, cause=cause, resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type()
                    )
                ),
            )
        return super()._from_error(env=env, ex=ex)

    def _build_sync_resolver(self, env, resource_runtime_part, normalised_parameters, state_credentials) -> Callable[[], Any]:
        client = sfn_harness.world_client("sagemaker", resource_runtime_part.region)
        shim = _active_shim()
        env.stack.pop()
        name = normalised_parameters["ProcessingJobName"]

        def resolve() -> dict | None:
            described = client.describe_processing_job(ProcessingJobName=name)
            described.pop("ResponseMetadata", None)
            described = json.loads(json.dumps(described, default=str))
            if described["ProcessingJobStatus"] == "Completed":
                return described
            if described["ProcessingJobStatus"] in ("Failed", "Stopped"):
                error = shim.failed_job_error
                if error == StatesErrorNameType.StatesTaskFailed.to_name():
                    error_name, cause = StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed), json.dumps(described)
                else:
                    error_name = CustomErrorName(error)
                    cause = f"Processing job {name} ended {described['ProcessingJobStatus']} (Service: AmazonSageMaker; Status Code: 400; Request ID: sync-poll; Proxy: null)"
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=error_name,
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(
                            taskFailedEventDetails=TaskFailedEventDetails(
                                error=error,
                                cause=cause,
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                            )
                        ),
                    )
                )
            return None

        resolve.job_name = name  # type: ignore[attr-defined]
        resolve.client = client  # type: ignore[attr-defined]
        return resolve

    def _eval_sync(self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint) -> Any:
        try:
            return super()._eval_sync(env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint)
        finally:
            if not env.is_running():
                # The execution was stopped (or timed out) while the job ran: Step Functions stops the job.
                sync_resolver.client.stop_processing_job(ProcessingJobName=sync_resolver.job_name)


def _state_task_service_for(original: Callable[..., Any]) -> Callable[..., Any]:
    def service_for(service_name: str) -> Any:
        if service_name == "sagemaker":
            return StateTaskServiceSageMaker()
        return original(service_name=service_name)

    return service_for


# The shim of the block that runs now (`processing_job_shim`).
_active: ProcessingJobShim | None = None


def _active_shim() -> ProcessingJobShim:
    if _active is None:  # pragma: no cover - the task class is only made while a shim is active
        raise RuntimeError("a processing job task ran outside processing_job_shim()")
    return _active


@contextlib.contextmanager
def processing_job_shim() -> Iterator[ProcessingJobShim]:
    """Within the block (inside `mock_aws`), processing jobs behave as the module docstring says."""
    global _active
    shim = ProcessingJobShim()
    original_create = SageMakerModelBackend.create_processing_job
    original_describe = SageMakerModelBackend.describe_processing_job
    original_list = SageMakerModelBackend.list_processing_jobs

    def create_processing_job(backend: SageMakerModelBackend, **kwargs: Any) -> Any:
        request = {
            "ProcessingJobName": kwargs["processing_job_name"],
            "RoleArn": kwargs["role_arn"],
            "AppSpecification": kwargs["app_specification"],
            "ProcessingInputs": kwargs["processing_inputs"],
            "ProcessingOutputConfig": kwargs["processing_output_config"],
            "StoppingCondition": kwargs["stopping_condition"],
            "Tags": kwargs["tags"],
            **({"NetworkConfig": kwargs["network_config"]} if kwargs.get("network_config") else {}),
        }
        request.update(_pending_resources.pop(kwargs["processing_job_name"], {}))
        answers_500 = shim._create(request)
        created = original_create(backend, **kwargs)
        if answers_500:
            raise InternalFailure()
        return created

    def describe_processing_job(backend: SageMakerModelBackend, processing_job_name: str) -> dict[str, Any]:
        return shim._describe(processing_job_name, original_describe(backend, processing_job_name))

    def stop_processing_job(backend: SageMakerModelBackend, processing_job_name: str) -> None:
        original_describe(backend, processing_job_name)
        shim._stop(processing_job_name)

    def list_processing_jobs(backend: SageMakerModelBackend, **kwargs: Any) -> dict[str, Any]:
        listed = original_list(backend, **kwargs)
        return {**listed, "ProcessingJobSummaries": shim._summaries(listed["ProcessingJobSummaries"])}

    with (
        mock.patch.object(state_task_factory, "state_task_service_for", _state_task_service_for(state_task_factory.state_task_service_for)),
        mock.patch.object(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", 0.01),
        mock.patch.object(SageMakerModelBackend, "create_processing_job", create_processing_job),
        mock.patch.object(SageMakerModelBackend, "describe_processing_job", describe_processing_job),
        mock.patch.object(SageMakerModelBackend, "stop_processing_job", stop_processing_job),
        mock.patch.object(SageMakerModelBackend, "list_processing_jobs", list_processing_jobs),
        _keeping_processing_resources(),
    ):
        _active = shim
        try:
            yield shim
        finally:
            _active = None


# moto's SageMakerResponse drops ProcessingResources before the backend sees it; the response layer hands
# it over here, by job name.
_pending_resources: dict[str, dict[str, Any]] = {}


@contextlib.contextmanager
def _keeping_processing_resources() -> Iterator[None]:
    from moto.sagemaker.responses import SageMakerResponse

    original = SageMakerResponse.create_processing_job

    def create_processing_job(response: SageMakerResponse) -> Any:
        _pending_resources[response._get_param("ProcessingJobName")] = {"ProcessingResources": response._get_param("ProcessingResources")}
        return original(response)

    with mock.patch.object(SageMakerResponse, "create_processing_job", create_processing_job):
        yield
