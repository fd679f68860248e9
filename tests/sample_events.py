"""Events as SageMaker sends them to EventBridge, for pattern tests and for the notify function."""

from __future__ import annotations

import json


def pipeline_run_ended(pipeline_arn: str, execution_arn: str, status: str) -> dict:
    """`SageMaker Model Building Pipeline Execution Status Change` of a run that started at 06:00 and ended 14 min 5 s later."""
    _, _, _, region, account, _ = pipeline_arn.split(":", 5)
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "source": "aws.sagemaker",
        "account": account,
        "time": "2026-11-25T06:14:05Z",
        "region": region,
        "resources": [pipeline_arn, execution_arn],
        "detail": {
            "pipelineExecutionDisplayName": "execution-1795586400000",
            "pipelineExecutionArn": execution_arn,
            "executionStartTime": "2026-11-25T06:00:00Z",
            "executionEndTime": "2026-11-25T06:14:05Z",
            "pipelineExecutionDescription": "",
            "pipelineArn": pipeline_arn,
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
        },
    }


def model_package_state_change(package_arn: str, status: str, **detail: object) -> dict:
    """`SageMaker Model Package State Change` of a package version (created, or its approval status changed)."""
    _, _, _, region, account, resource = package_arn.split(":", 5)
    group, version = resource.removeprefix("model-package/").rsplit("/", 1)
    return {
        "version": "0",
        "id": "8d5c2f3a-1b4e-4c2f-9a7d-3e6f5b1c2d4e",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": account,
        "time": "2026-11-25T06:14:30Z",
        "region": region,
        "resources": [package_arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": int(version),
            "ModelPackageArn": package_arn,
            "ModelPackageName": group,
            "CreationTime": 1795587270000,
            "ModelApprovalStatus": status,
            "ModelPackageStatus": "Completed",
            **detail,
        },
    }


def alarm_state_change(
    alarm_arn: str,
    state: str,
    previous: str,
    *,
    metric: dict,
    description: str,
    threshold: float,
    datapoints: list[float],
) -> dict:
    """`CloudWatch Alarm State Change` of a single-metric alarm, as CloudWatch sends it at 07:04:40.

    `metric` is the alarm's ``metricStat`` (metric name, namespace and dimensions, period, statistic);
    `reasonData` is a JSON string, as CloudWatch writes it, holding the threshold and the evaluated datapoints.
    """
    _, _, _, region, account, resource = alarm_arn.split(":", 5)
    name = resource.removeprefix("alarm:")

    def evaluation(value: str, points: list[float], at: str) -> dict:
        reason_data = {
            "version": "1.0",
            "queryDate": f"2026-11-25T{at}.985+0000",
            "startDate": "2026-11-25T07:03:00.000+0000",
            "statistic": metric["stat"],
            "period": metric["period"],
            "recentDatapoints": points,
            "threshold": threshold,
        }
        crossed = "was greater" if value == "ALARM" else "was not greater"
        return {
            "reason": f"Threshold Crossed: 1 out of the last 1 datapoints [{points[0]} (25/11/26 07:03:00)] {crossed} than the threshold ({threshold}) (minimum 1 datapoint for {previous} -> {state} transition).",
            "reasonData": json.dumps(reason_data, separators=(",", ":")),
            "timestamp": f"2026-11-25T{at}.989+0000",
            "value": value,
        }

    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": "2026-11-25T07:04:40Z",
        "region": region,
        "resources": [alarm_arn],
        "detail": {
            "alarmName": name,
            "configuration": {
                "description": description,
                "metrics": [{"id": "30b6c6b2-a864-43a2-4877-c09a1afc3b87", "metricStat": metric, "returnData": True}],
            },
            "previousState": evaluation(previous, [threshold + 1 if previous == "ALARM" else 0.0], "06:58:40"),
            "state": evaluation(state, datapoints, "07:04:40"),
        },
    }


def monitoring_run_ended(schedule_arn: str, exit_message: str, reports_uri: str) -> dict:
    """`SageMaker Processing Job State Change` of a completed Model Monitor run of `schedule_arn` (the
    detail carries the job's description, as DescribeProcessingJob returns it)."""
    _, _, _, region, account, _ = schedule_arn.split(":", 5)
    job = "model-monitoring-202611250100-0a1b2c3d"
    job_arn = f"arn:aws:sagemaker:{region}:{account}:processing-job/{job}"
    return {
        "version": "0",
        "id": "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b",
        "detail-type": "SageMaker Processing Job State Change",
        "source": "aws.sagemaker",
        "account": account,
        "time": "2026-11-25T01:05:00Z",
        "region": region,
        "resources": [job_arn],
        "detail": {
            "ProcessingJobName": job,
            "ProcessingJobArn": job_arn,
            "ProcessingJobStatus": "Completed",
            "ExitMessage": exit_message,
            "MonitoringScheduleArn": schedule_arn,
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "result",
                        "S3Output": {"S3Uri": f"{reports_uri}2026/11/25/01", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"},
                    }
                ]
            },
            "ProcessingStartTime": 1795568520000,
            "ProcessingEndTime": 1795568700000,
        },
    }


def workflow_run_ended(state_machine_arn: str, name: str, status: str, *, input: dict, error: str | None = None, cause: str | None = None) -> dict:
    """`Step Functions Execution Status Change` of a Standard workflow's run that ended. `error` and `cause`
    None: an event without them (the reason is then only in the execution's description)."""
    _, _, _, region, account, _ = state_machine_arn.split(":", 5)
    execution_arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    detail = {
        "executionArn": execution_arn,
        "stateMachineArn": state_machine_arn,
        "name": name,
        "status": status,
        "startDate": 1795586400000,
        "stopDate": 1795587245000,
        "input": json.dumps(input),
        "inputDetails": {"included": True},
        "output": None,
        "outputDetails": None,
    }
    if error is not None or cause is not None:
        detail.update(error=error, cause=cause)
    return {
        "version": "0",
        "id": "6f1e2d3c-4b5a-4697-8a8b-9c0d1e2f3a4b",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": account,
        "time": "2026-11-25T06:14:05Z",
        "region": region,
        "resources": [execution_arn],
        "detail": detail,
    }
