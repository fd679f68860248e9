"""The three processing jobs: Preprocess -> Inference -> Postprocess, each a `createProcessingJob.sync` task
that fails the execution with the job's own FailureReason and the ExitMessage its script left."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops_constructs.canary_deployer.states import RETRY
from mlops_constructs.json_paths import string_at

# Container paths, shared with the scripts in pipeline_code/batch_inference/ (their argument defaults).
CODE_DIR = "/opt/ml/processing/input/code"
DATA_DIR = "/opt/ml/processing/input/data"
MODEL_DIR = "/opt/ml/processing/input/model"
OUTPUT_DIR = "/opt/ml/processing/output"
# What the optimised SageMaker integration reports for throttling and transient faults: the Java SDK's
# generic exception for codes the API model does not declare, which is where ThrottlingException lands.
JOB_TRANSIENT_ERRORS = ["SageMaker.AmazonSageMakerException", "SageMaker.ThrottlingException", "SageMaker.InternalFailureException"]


@dataclass(frozen=True)
class JobStep:
    """One of the three jobs. `name` is its state's name and the error prefix; `suffix` ends its job name."""

    name: str
    suffix: str
    script: str
    image_path: str
    data_path: str
    output_path: str
    sharded: bool
    with_model: bool = False


STEPS = (
    JobStep("Preprocess", "pre", "preprocessing.py", "$.config.scikit_image_uri", "$.config.input_uri", "$.run.preprocessed", sharded=True),
    JobStep("Inference", "infer", "predict.py", "$.config.custom_image_uri", "$.run.preprocessed", "$.run.predictions", sharded=True, with_model=True),
    # One instance reads every shard's predictions and writes the combined result.
    JobStep("Postprocess", "post", "postprocessing.py", "$.config.scikit_image_uri", "$.run.predictions", "$.config.output_uri", sharded=False),
)


def job_name_path(step: JobStep) -> str:
    return f"$.run.jobs.{step.suffix}"


def _s3_input(name: str, uri_path: str, local_path: str, *, sharded: bool) -> dict:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri.$": uri_path,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "ShardedByS3Key" if sharded else "FullyReplicated",
        },
    }


def processing_job(
    scope: Construct,
    step: JobStep,
    *,
    key_arn: str,
    network: dict,
    tags: dict[str, str],
) -> sfn.CustomState:
    """The task state that runs `step`'s job and waits for it; its result is the job's name and status."""
    stack = cdk.Stack.of(scope)
    arguments = ["--input-dir", DATA_DIR]
    if step.with_model:
        arguments += ["--model-dir", MODEL_DIR]
    arguments += ["--output-dir", OUTPUT_DIR]
    inputs = [
        _s3_input("data", step.data_path, DATA_DIR, sharded=step.sharded),
        _s3_input("code", "$.config.code_uri", CODE_DIR, sharded=False),
    ]
    if step.with_model:
        inputs.append(_s3_input("model", "$.model.model_data_url", MODEL_DIR, sharded=False))
    parameters = {
        "ProcessingJobName.$": job_name_path(step),
        "RoleArn.$": "$.config.role",
        "AppSpecification": {
            "ImageUri.$": step.image_path,
            "ContainerEntrypoint": ["python3", f"{CODE_DIR}/{step.script}"],
            "ContainerArguments": arguments,
        },
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {
            "Outputs": [{"OutputName": "output", "S3Output": {"S3Uri.$": step.output_path, "LocalPath": OUTPUT_DIR, "S3UploadMode": "EndOfJob"}}],
            "KmsKeyId": key_arn,
        },
        "ProcessingResources": {
            "ClusterConfig": {
                **({"InstanceCount.$": "$.config.instance_count"} if step.sharded else {"InstanceCount": 1}),
                "InstanceType.$": "$.config.instance_type",
                "VolumeSizeInGB.$": "$.config.volume_size",
                "VolumeKmsKeyId": key_arn,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds.$": "$.config.max_runtime"},
        "Tags": [
            *({"Key": k, "Value": v} for k, v in tags.items()),
            {"Key": "batch-inference-execution", "Value.$": "$$.Execution.Id"},
            {"Key": "batch-inference-step", "Value": step.name},
        ],
        **network,
    }
    state = sfn.CustomState(
        scope,
        step.name,
        state_json={
            "Type": "Task",
            "Comment": f"Run {step.script} as a processing job and wait for it to end",
            "Resource": f"arn:{stack.partition}:states:::sagemaker:createProcessingJob.sync",
            "Parameters": parameters,
            "ResultSelector": {"Name.$": "$.ProcessingJobName", "Status.$": "$.ProcessingJobStatus"},
            "ResultPath": f"$.jobs.{step.name}",
        },
    )
    state.add_retry(errors=JOB_TRANSIENT_ERRORS, **RETRY)
    return state


def fail_with_the_jobs_reason(scope: Construct, step: JobStep, state: sfn.CustomState) -> None:
    """A job that ended Failed or Stopped fails the execution with `<Step>Failed`, the job's FailureReason and the
    ExitMessage its script left in /opt/ml/output/message (the file and column at fault); a job that could not
    be started (after retries) with the service's error."""
    failed = sfn.Fail(scope, f"{step.name} failed", error=f"{step.name}Failed", cause_path="$.failure.reason")
    read = sfn.Pass(
        scope,
        f"Read why {step.name} failed",
        parameters={"job": sfn.JsonPath.string_to_json(string_at("$.error.Cause"))},
        result_path="$.failed",
    )

    def reason(name: str, template: str, *paths: str) -> sfn.Pass:
        return sfn.Pass(
            scope,
            name,
            parameters={"reason": sfn.JsonPath.format(template, *(string_at(path) for path in paths))},
            result_path="$.failure",
        )

    job = ("$.failed.job.ProcessingJobName", "$.failed.job.ProcessingJobStatus")
    failure_reason, exit_message = "$.failed.job.FailureReason", "$.failed.job.ExitMessage"
    prefix = f"{step.name} job {{}} ended {{}}"
    with_both = reason(f"Quote what {step.name} and its script said", f"{prefix}: {{}} ({{}})", *job, exit_message, failure_reason)
    with_message = reason(f"Quote what the {step.name} script said", f"{prefix}: {{}}", *job, exit_message)
    with_reason = reason(f"Quote the reason {step.name} gave", f"{prefix}: {{}}", *job, failure_reason)
    without_reason = reason(f"Say {step.name} ended without a reason", f"{prefix} without a FailureReason", *job)
    read.next(
        sfn.Choice(scope, f"Did {step.name} give a reason?")
        .when(sfn.Condition.and_(sfn.Condition.is_present(exit_message), sfn.Condition.is_present(failure_reason)), with_both.next(failed))
        .when(sfn.Condition.is_present(exit_message), with_message.next(failed))
        .when(sfn.Condition.is_present(failure_reason), with_reason.next(failed))
        .otherwise(without_reason.next(failed))
    )
    not_started = reason(f"Record why {step.name} could not run", f"{step.name} job could not run: {{}}: {{}}", "$.error.Error", "$.error.Cause")
    not_started.next(failed)
    # Which error a `.sync` job that ended Failed raises is not documented (States.TaskFailed, or the
    # integration's SageMaker.AmazonSageMakerException): whatever its name, a Cause that is the job's description
    # as JSON is read as one, and anything else (a task that failed before its job existed) is quoted as it is.
    described = (
        sfn.Choice(scope, f"Did the {step.name} job run?")
        .when(sfn.Condition.string_matches("$.error.Cause", "{*"), read)
        .otherwise(not_started)
    )
    state.add_catch(described, errors=["States.ALL"], result_path="$.error")
