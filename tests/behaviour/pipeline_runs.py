"""Ended SageMaker pipeline runs as SageMaker reports them, where moto 5.2.5 cannot.

moto starts every pipeline execution as Succeeded, with no steps, and lacks or simplifies the calls that
read how a run ended. Inside `pipeline_runs()`, `PipelineRuns.end()` gives a run its outcome, its times and
its steps, and these calls answer as SageMaker does:
- ListPipelineExecutionSteps (not implemented by moto): the run's steps, newest first (SageMaker's default
  sort order), each with its StepStatus and, for a failed step, its FailureReason (a Fail step's is its
  error message); ResourceNotFound for a run that does not exist.
- DescribePipelineExecution: the run's FailureReason (moto always answers ""), which for a failed step
  is SageMaker's generic "Step failure: One or multiple steps failed.".
- ListPipelineExecutions: CreatedAfter, CreatedBefore and SortOrder are honoured (moto ignores them) and
  a run without a failure has no PipelineExecutionFailureReason (moto answers "None").
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ResourceNotFound
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemaker.utils import get_pipeline_execution_from_arn, get_pipeline_from_name

STEP_FAILURE = "Step failure: One or multiple steps failed."


class PipelineRuns:
    def __init__(self, account: str, region: str) -> None:
        self._backend = sagemaker_backends[account][region]
        self.steps: dict[str, list[dict[str, Any]]] = {}

    def end(self, execution_arn: str, status: str, steps: list[dict[str, Any]], *, started: datetime.datetime, ended: datetime.datetime) -> None:
        """The run ended with `status` after `steps` (oldest first, each with StepName and StepStatus)."""
        execution = get_pipeline_execution_from_arn(self._backend.pipelines, execution_arn)
        execution.pipeline_execution_status = status
        execution.pipeline_execution_failure_reason = STEP_FAILURE if status == "Failed" else None
        execution.creation_time = execution.start_time = started
        execution.last_modified_time = ended
        self.steps[execution_arn] = [{"StartTime": started, "EndTime": ended, **step} for step in steps]


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime.datetime) else float(value)


@contextlib.contextmanager
def pipeline_runs(account: str, region: str) -> Iterator[PipelineRuns]:
    runs = PipelineRuns(account, region)
    original_describe = SageMakerModelBackend.describe_pipeline_execution

    def list_steps(response: SageMakerResponse) -> ActionResult:
        arn = response._get_param("PipelineExecutionArn")
        if arn not in runs.steps:
            raise ResourceNotFound(f"Pipeline execution {arn} does not exist")
        return ActionResult({"PipelineExecutionSteps": list(reversed(runs.steps[arn]))})

    def describe(backend: SageMakerModelBackend, pipeline_execution_arn: str) -> dict[str, Any]:
        described = original_describe(backend, pipeline_execution_arn)
        reason = get_pipeline_execution_from_arn(backend.pipelines, pipeline_execution_arn).pipeline_execution_failure_reason
        return {**{k: v for k, v in described.items() if k != "FailureReason"}, **({"FailureReason": reason} if reason else {})}

    def list_executions(response: SageMakerResponse) -> ActionResult:
        pipeline = get_pipeline_from_name(response.sagemaker_backend.pipelines, response._get_param("PipelineName"))
        after, before = response._get_param("CreatedAfter"), response._get_param("CreatedBefore")
        summaries = []
        for arn, execution in pipeline.pipeline_executions.items():
            created = execution.creation_time.timestamp()
            if (after is not None and created <= _epoch(after)) or (before is not None and created >= _epoch(before)):
                continue
            reason = execution.pipeline_execution_failure_reason
            summaries.append(
                {
                    "PipelineExecutionArn": arn,
                    "StartTime": execution.start_time,
                    "PipelineExecutionStatus": execution.pipeline_execution_status,
                    "PipelineExecutionDisplayName": execution.pipeline_execution_display_name,
                    **({"PipelineExecutionFailureReason": reason} if reason else {}),
                }
            )
        summaries.sort(key=lambda s: s["StartTime"], reverse=response._get_param("SortOrder", "Descending") == "Descending")
        return ActionResult({"PipelineExecutionSummaries": summaries})

    with (
        mock.patch.object(SageMakerResponse, "list_pipeline_execution_steps", list_steps, create=True),
        mock.patch.object(SageMakerResponse, "list_pipeline_executions", list_executions),
        mock.patch.object(SageMakerModelBackend, "describe_pipeline_execution", describe),
    ):
        yield runs
