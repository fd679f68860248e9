"""The three processing jobs: Preprocess -> Inference -> Postprocess, each a `createProcessingJob.sync` task
that fails the execution with the job's own FailureReason.

A job is never created twice under one name. AWS does not document which error a failed `.sync` job raises
(`States.TaskFailed` with the job's description as the Cause, or `SageMaker.AmazonSageMakerException`,
the name the optimised integration gives every SageMaker error), and a create call can answer 500 after
the job was created. So the task has no Retry: a failure whose Cause is not the job's description looks
the job up by name. A job that exists decides the outcome (waited for while it runs, its FailureReason
quoted when it failed); only when none exists is the create tried again, a few times with a pause, and
not at all when SageMaker refused the request as invalid or not permitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops_constructs.canary_deployer.states import aws_call
from mlops_constructs.json_paths import list_at, states_format, string_at

# Container paths, shared with the scripts in pipeline_code/batch_inference/ (their argument defaults).
CODE_DIR = "/opt/ml/processing/input/code"
DATA_DIR = "/opt/ml/processing/input/data"
MODEL_DIR = "/opt/ml/processing/input/model"
OUTPUT_DIR = "/opt/ml/processing/output"
# The inference image's launcher that runs a command as its unprivileged user (pipeline_code/batch_inference/).
DROP_ROOT = "/usr/local/bin/run-as-inference-user"
# How often a create that left no job behind is tried again, and the pause before each new try.
CREATE_ATTEMPTS = 3
CREATE_BACKOFF_SECONDS = 30
# How often a job found running (a create that answered an error after it had started the job) is looked at.
JOB_POLL_SECONDS = 60
# Causes of a create that SageMaker refused outright: trying again cannot help.
REFUSED_CAUSES = ("*ValidationException*", "*AccessDenied*")


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
    # What runs the script: the ContainerEntrypoint replaces the image's ENTRYPOINT, so an image that drops
    # root in its entrypoint needs it named here too.
    launcher: tuple[str, ...] = ()


STEPS = (
    JobStep("Preprocess", "pre", "preprocessing.py", "$.config.scikit_image_uri", "$.config.input_uri", "$.run.preprocessed", sharded=True),
    JobStep(
        "Inference", "infer", "predict.py", "$.config.custom_image_uri", "$.run.preprocessed", "$.run.predictions",
        sharded=True, with_model=True, launcher=(DROP_ROOT,),
    ),
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
            "ContainerEntrypoint": [*step.launcher, "python3", f"{CODE_DIR}/{step.script}"],
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
        # Tag values allow only letters, digits, spaces and _.:/=+-@; an execution's name may hold ( ) ! ',
        # so the run is tagged with its id (the MD5 of the execution ARN), which the output reports.
        "Tags": [
            *({"Key": k, "Value": v} for k, v in tags.items()),
            {"Key": "batch-inference-run", "Value.$": "$.run.id"},
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
    return state


def handle_the_outcome(scope: Construct, step: JobStep, state: sfn.CustomState, *, then: sfn.IChainable) -> None:
    """After `state`: `then` once the job Completed; `<Step>Failed` when it ended Failed or Stopped, with its
    FailureReason and the ExitMessage its script left in /opt/ml/output/message (the file and column at
    fault); or with the service's error when no job could be created."""
    name = step.name
    failed = sfn.Fail(scope, f"{name} failed", error=f"{name}Failed", cause_path="$.failure.reason")

    def reason(state_name: str, template: str, *paths: str) -> sfn.Pass:
        return sfn.Pass(
            scope,
            state_name,
            parameters={"reason.$": states_format(template, *paths)},
            result_path="$.failure",
        ).next(failed)

    # $.failed.job: what the job said about itself, from its description or from the lookup below.
    job = ("$.failed.job.ProcessingJobName", "$.failed.job.ProcessingJobStatus")
    failure_reason, exit_message = "$.failed.job.FailureReason", "$.failed.job.ExitMessage"
    ended = f"{name} job {{}} ended {{}}"
    quote = (
        sfn.Choice(scope, f"Did {name} give a reason?")
        .when(
            sfn.Condition.and_(sfn.Condition.is_present(exit_message), sfn.Condition.is_present(failure_reason)),
            reason(f"Quote what {name} and its script said", f"{ended}: {{}} ({{}})", *job, exit_message, failure_reason),
        )
        .when(sfn.Condition.is_present(exit_message), reason(f"Quote what the {name} script said", f"{ended}: {{}}", *job, exit_message))
        .when(sfn.Condition.is_present(failure_reason), reason(f"Quote the reason {name} gave", f"{ended}: {{}}", *job, failure_reason))
        .otherwise(reason(f"Say {name} ended without a reason", f"{ended} without a FailureReason", *job))
    )
    read = sfn.Pass(
        scope, f"Read why {name} failed", parameters={"job": sfn.JsonPath.string_to_json(string_at("$.error.Cause"))}, result_path="$.failed"
    ).next(quote)
    not_run = reason(f"Record why {name} could not run", f"{name} job could not run: {{}}: {{}}", "$.error.Error", "$.error.Cause")

    # Otherwise the job is looked up by name: whatever the error, a job that exists tells what happened.
    look_up = aws_call(
        scope,
        f"Look up the {name} job",
        "sagemaker",
        "listProcessingJobs",
        {"NameContains": string_at(job_name_path(step))},
        ["*"],
        iam_action="sagemaker:ListProcessingJobs",
        result_selector={
            "count": sfn.JsonPath.array_length(list_at("$.ProcessingJobSummaries")),
            "statuses": list_at("$.ProcessingJobSummaries[*].ProcessingJobStatus"),
            # Absent fields are left out of these lists, so each holds one item or none.
            "reasons": list_at("$.ProcessingJobSummaries[*].FailureReason"),
            "messages": list_at("$.ProcessingJobSummaries[*].ExitMessage"),
        },
        result_path="$.lookup",
    )
    look_up.add_catch(
        reason(
            f"Record why the {name} job could not be looked up",
            f"{name} job could not run: {{}}: {{}}; looking it up failed: {{}}: {{}}",
            "$.error.Error",
            "$.error.Cause",
            "$.lookup_error.Error",
            "$.lookup_error.Cause",
        ),
        errors=["States.ALL"],
        result_path="$.lookup_error",
    )
    attempts = f"$.run.attempts.{step.suffix}"
    create_again = (
        sfn.Choice(scope, f"May the {name} job be created again?")
        .when(
            sfn.Condition.number_less_than(f"{attempts}.made", CREATE_ATTEMPTS),
            sfn.Pass(
                scope,
                f"Count the {name} attempt",
                parameters={"made": sfn.JsonPath.math_add(sfn.JsonPath.number_at(f"{attempts}.made"), 1)},
                result_path=attempts,
            )
            .next(sfn.Wait(scope, f"Pause before creating the {name} job again", time=sfn.WaitTime.duration(cdk.Duration.seconds(CREATE_BACKOFF_SECONDS))))
            .next(state),
        )
        .otherwise(not_run)
    )
    refused = sfn.Condition.or_(*(sfn.Condition.string_matches("$.error.Cause", pattern) for pattern in REFUSED_CAUSES))
    no_job = sfn.Choice(scope, f"Did SageMaker refuse the {name} job?").when(refused, not_run).otherwise(create_again)

    def first(path: str) -> str:
        return sfn.JsonPath.array_get_item(list_at(path), 0)

    def what_it_said(label: str, **fields: str) -> sfn.Pass:
        """$.failed.job from the lookup, with the fields the job reported."""
        return sfn.Pass(
            scope,
            f"Take the {name} job's {label}",
            parameters={"job": {"ProcessingJobName": string_at(job_name_path(step)), "ProcessingJobStatus": string_at("$.lookup.status"), **fields}},
            result_path="$.failed",
        ).next(quote)

    has_reason = sfn.Condition.number_greater_than("$.lookup.reason_count", 0)
    has_message = sfn.Condition.number_greater_than("$.lookup.message_count", 0)
    take_what_it_said = (
        sfn.Choice(scope, f"What did the {name} job say?")
        .when(
            sfn.Condition.and_(has_reason, has_message),
            what_it_said("reason and message", FailureReason=first("$.lookup.reasons"), ExitMessage=first("$.lookup.messages")),
        )
        .when(has_message, what_it_said("message", ExitMessage=first("$.lookup.messages")))
        .when(has_reason, what_it_said("reason", FailureReason=first("$.lookup.reasons")))
        .otherwise(what_it_said("status"))
    )
    status = sfn.Pass(
        scope,
        f"Read the {name} job's status",
        parameters={
            "status": first("$.lookup.statuses"),
            "reasons": list_at("$.lookup.reasons"),
            "reason_count": sfn.JsonPath.array_length(list_at("$.lookup.reasons")),
            "messages": list_at("$.lookup.messages"),
            "message_count": sfn.JsonPath.array_length(list_at("$.lookup.messages")),
        },
        result_path="$.lookup",
    )
    status.next(
        sfn.Choice(scope, f"How did the {name} job end?")
        .when(
            sfn.Condition.string_equals("$.lookup.status", "Completed"),
            sfn.Pass(
                scope,
                f"Record the {name} job",
                parameters={"Name": string_at(job_name_path(step)), "Status": string_at("$.lookup.status")},
                result_path=f"$.jobs.{step.name}",
            ).next(then),
        )
        .when(
            sfn.Condition.or_(sfn.Condition.string_equals("$.lookup.status", "Failed"), sfn.Condition.string_equals("$.lookup.status", "Stopped")),
            take_what_it_said,
        )
        .otherwise(
            sfn.Wait(scope, f"Wait for the {name} job", time=sfn.WaitTime.duration(cdk.Duration.seconds(JOB_POLL_SECONDS))).next(look_up)
        )
    )
    look_up.next(
        sfn.Choice(scope, f"Does the {name} job exist?").when(sfn.Condition.number_equals("$.lookup.count", 0), no_job).otherwise(status)
    )

    # Which error a `.sync` job that ended Failed raises is not documented (States.TaskFailed, or the
    # integration's SageMaker.AmazonSageMakerException): whatever its name, a Cause that is the job's
    # description as JSON is read as one, and anything else is settled by looking the job up.
    state.add_catch(
        sfn.Choice(scope, f"Did the {name} job run?").when(sfn.Condition.string_matches("$.error.Cause", "{*"), read).otherwise(look_up),
        errors=["States.ALL"],
        result_path="$.error",
    )
    state.next(then)
