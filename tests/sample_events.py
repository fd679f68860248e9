"""Events as SageMaker sends them to EventBridge, for pattern tests and for the notify function."""

from __future__ import annotations


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
