"""The batch inference workflow as synthesized, run by moto's Step Functions interpreter against moto's
model registry and the processing-job shim (jobs go InProgress, then end as each test scripts them)."""

from __future__ import annotations

import hashlib
import time

import pytest

from mlops_constructs.batch_inference_workflow.jobs import CREATE_ATTEMPTS
from tests.behaviour.processing_job_shim import SFN_ERROR_NAME
from tests.behaviour.sfn_harness import Fault, injected_faults

from mlops_constructs.batch_inference_workflow.check_input import INPUT_KEYS
from mlops_constructs.batch_inference_workflow.jobs import CODE_DIR, DATA_DIR, DROP_ROOT, MODEL_DIR, OUTPUT_DIR
from pipeline_code.settings import scikit_learn_image_uri
from tests.behaviour import sfn_harness
from tests.behaviour.batch_world import ARTIFACTS_BUCKET, DEV, GROUPS, IMAGE_TAG, INPUT_URI, OUTPUT_URI, PROCESSING_ROLE, REGION, WORK_URI, batch_world

CODE_URI = f"s3://{ARTIFACTS_BUCKET}/batch-inference/code/"
SCIKIT_IMAGE = scikit_learn_image_uri(REGION)


def _inputs(job: dict) -> dict[str, dict]:
    return {i["InputName"]: i["S3Input"] for i in job["ProcessingInputs"]}


def _output(job: dict) -> str:
    (output,) = job["ProcessingOutputConfig"]["Outputs"]
    return output["S3Output"]["S3Uri"]


def test_the_three_jobs_run_in_order_with_their_images_inputs_outputs_and_arguments(batch_template):
    with batch_world(batch_template) as world:
        _, artifact = world.register()

        execution = world.score()

    assert execution.status == "SUCCEEDED"
    jobs = world.jobs()
    assert list(jobs) == ["pre", "infer", "post"]
    pre, infer, post = jobs["pre"], jobs["infer"], jobs["post"]
    run = f"{WORK_URI}{execution.output['run_id']}"
    assert [job["AppSpecification"]["ImageUri"] for job in (pre, infer, post)] == [SCIKIT_IMAGE, f"{world.repository_uri}:{IMAGE_TAG}", SCIKIT_IMAGE]
    assert [job["AppSpecification"]["ContainerEntrypoint"] for job in (pre, infer, post)] == [
        ["python3", f"{CODE_DIR}/preprocessing.py"],
        [DROP_ROOT, "python3", f"{CODE_DIR}/predict.py"],
        ["python3", f"{CODE_DIR}/postprocessing.py"],
    ]
    assert pre["AppSpecification"]["ContainerArguments"] == ["--input-dir", DATA_DIR, "--output-dir", OUTPUT_DIR]
    assert infer["AppSpecification"]["ContainerArguments"] == ["--input-dir", DATA_DIR, "--model-dir", MODEL_DIR, "--output-dir", OUTPUT_DIR]
    assert post["AppSpecification"]["ContainerArguments"] == ["--input-dir", DATA_DIR, "--output-dir", OUTPUT_DIR]
    # Each job's output prefix is the next one's input.
    assert [_inputs(job)["data"]["S3Uri"] for job in (pre, infer, post)] == [INPUT_URI, f"{run}/preprocessed/", f"{run}/predictions/"]
    assert [_output(job) for job in (pre, infer, post)] == [f"{run}/preprocessed/", f"{run}/predictions/", OUTPUT_URI]
    assert {job["ProcessingJobName"]: _inputs(job)["code"]["S3Uri"] for job in (pre, infer, post)} == {job["ProcessingJobName"]: CODE_URI for job in (pre, infer, post)}
    assert _inputs(infer)["model"] == {
        "S3Uri": artifact, "LocalPath": MODEL_DIR, "S3DataType": "S3Prefix", "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"
    }
    assert "model" not in _inputs(pre) and "model" not in _inputs(post)
    assert {job["RoleArn"] for job in (pre, infer, post)} == {PROCESSING_ROLE}


def test_the_jobs_encrypt_outputs_and_volumes_and_stop_at_the_maximum_runtime(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        world.score(max_runtime=1200)

    for job in world.jobs().values():
        cluster = job["ProcessingResources"]["ClusterConfig"]
        assert job["ProcessingOutputConfig"]["KmsKeyId"] == cluster["VolumeKmsKeyId"]
        assert cluster["VolumeKmsKeyId"].startswith("arn:aws:kms:")
        assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 1200}


def test_inference_splits_the_files_between_its_instances_and_one_postprocess_instance_sees_every_shard(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        world.score(instance_count=4)

    jobs = world.jobs()
    assert {step: jobs[step]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] for step in jobs} == {"pre": 4, "infer": 4, "post": 1}
    assert {step: _inputs(jobs[step])["data"]["S3DataDistributionType"] for step in jobs} == {
        "pre": "ShardedByS3Key", "infer": "ShardedByS3Key", "post": "FullyReplicated"
    }


def test_the_latest_approved_package_is_scored_and_recorded_in_the_output(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        newest_approved, artifact = world.register()
        world.register("PendingManualApproval")
        world.register("Rejected")

        execution = world.score()

    assert execution.status == "SUCCEEDED"
    assert _inputs(world.jobs()["infer"])["model"]["S3Uri"] == artifact
    assert execution.output["model"] == {"package_arn": newest_approved, "approval_status": "Approved", "model_data_url": artifact}


def test_without_a_model_the_environment_named_models_latest_approved_package_is_scored(batch_template):
    with batch_world(batch_template) as world:
        tabular, artifact = world.register()
        world.register(group=GROUPS["churn"])

        execution = world.score()

    assert execution.status == "SUCCEEDED"
    assert (execution.output["model_name"], execution.output["model"]["package_arn"]) == ("tabular", tabular)
    assert _inputs(world.jobs()["infer"])["model"]["S3Uri"] == artifact


def test_a_named_model_scores_its_own_groups_latest_approved_package(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        churn, artifact = world.register(group=GROUPS["churn"])
        world.register("PendingManualApproval", group=GROUPS["churn"])
        world.register()

        execution = world.score(model="churn")

    assert execution.status == "SUCCEEDED"
    assert (execution.output["model_name"], execution.output["model"]["package_arn"]) == ("churn", churn)
    assert _inputs(world.jobs()["infer"])["model"]["S3Uri"] == artifact


def test_a_named_package_of_the_named_models_group_is_scored(batch_template):
    with batch_world(batch_template) as world:
        older, artifact = world.register(group=GROUPS["churn"])
        world.register(group=GROUPS["churn"])

        execution = world.score(model="churn", model_package_arn=older)

    assert execution.status == "SUCCEEDED"
    assert execution.output["model"]["model_data_url"] == artifact


@pytest.mark.parametrize(("model", "package_of"), [("churn", "tabular"), (None, "churn")], ids=["churn given a tabular package", "no model given a churn package"])
def test_a_package_of_another_models_group_is_refused_naming_both_groups(batch_template, model, package_of):
    with batch_world(batch_template) as world:
        package, _ = world.register(group=GROUPS[package_of])

        execution = world.score(model_package_arn=package, **({"model": model} if model else {}))

    scored = model or "tabular"
    assert (execution.status, execution.error) == ("FAILED", "InvalidInput")
    assert f"is a version of {GROUPS[package_of]}, not of {GROUPS[scored]}, the group of model {scored}" in execution.cause
    assert world.shim.created() == []


def test_no_approved_version_of_the_named_model_fails_naming_its_group(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        world.register("PendingManualApproval", group=GROUPS["churn"])

        execution = world.score(model="churn")

    assert (execution.status, execution.error) == ("FAILED", "NoApprovedModel")
    assert f"no model package of {GROUPS['churn']} (model churn) is Approved" in execution.cause
    assert world.shim.created() == []


def test_a_named_model_package_or_model_artifact_is_used_instead_of_the_latest(batch_template):
    with batch_world(batch_template) as world:
        older, older_artifact = world.register()
        world.register()

        by_package = world.score(model_package_arn=older)
        by_artifact = world.score(model_uri=f"s3://{ARTIFACTS_BUCKET}/models/hand-made/model.tar.gz")

    assert (by_package.status, by_artifact.status) == ("SUCCEEDED", "SUCCEEDED")
    assert by_package.output["model"]["model_data_url"] == older_artifact
    assert by_artifact.output["model"] == {"model_data_url": f"s3://{ARTIFACTS_BUCKET}/models/hand-made/model.tar.gz", "source": "model_uri"}
    assert "Find the latest approved model package" not in by_package.states_entered + by_artifact.states_entered


def test_defaults_fill_the_omitted_keys_and_given_keys_win(batch_template):
    with batch_world(batch_template) as world:
        world.register()

        world.score(instance_type="ml.c5.xlarge", volume_size=100, custom_image_uri=f"{world.repository_uri}:other")

    infer = world.jobs()["infer"]
    cluster = infer["ProcessingResources"]["ClusterConfig"]
    assert (cluster["InstanceType"], cluster["VolumeSizeInGB"], cluster["InstanceCount"]) == ("ml.c5.xlarge", 100, 1)
    assert infer["AppSpecification"]["ImageUri"] == f"{world.repository_uri}:other"
    assert infer["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert _inputs(infer)["code"]["S3Uri"] == CODE_URI
    assert world.jobs()["pre"]["AppSpecification"]["ImageUri"] == SCIKIT_IMAGE


def test_failed_inference_job_stops_the_workflow_with_its_reason(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        reason = "AlgorithmError: data.csv: missing feature column 'mean radius'"
        world.shim.next_job("Failed", named=lambda name: name.endswith("-infer"), reason=reason)

        execution = world.score()

    assert (execution.status, execution.error) == ("FAILED", "InferenceFailed")
    assert reason in execution.cause and world.jobs()["infer"]["ProcessingJobName"] in execution.cause
    assert list(world.jobs()) == ["pre", "infer"], "a job started after the failed one"


def test_the_scripts_message_reaches_the_executions_failure(batch_template):
    """A script's reason (file and column) reaches DescribeProcessingJob only as ExitMessage."""
    message = "Inference failed: clinic-b.csv lacks feature column(s) the model needs: worst symmetry"
    with batch_world(batch_template) as world:
        world.register()
        world.shim.next_job("Failed", named=lambda name: name.endswith("-infer"), reason="AlgorithmError: See job logs for more information", exit_message=message)

        execution = world.score()

    assert (execution.status, execution.error) == ("FAILED", "InferenceFailed")
    name = world.jobs()["infer"]["ProcessingJobName"]
    assert execution.cause == f"Inference job {name} ended Failed: {message} (AlgorithmError: See job logs for more information)"
    assert list(world.jobs()) == ["pre", "infer"]


def test_a_failed_job_without_a_script_message_still_fails_with_sagemakers_reason(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        world.shim.next_job("Failed", named=lambda name: name.endswith("-post"), reason="ClientError: ran out of disk")

        execution = world.score()

    assert (execution.status, execution.error) == ("FAILED", "PostprocessFailed")
    assert execution.cause == f"Postprocess job {world.jobs()['post']['ProcessingJobName']} ended Failed: ClientError: ran out of disk"


def test_a_preprocess_job_that_fails_starts_no_inference(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        world.shim.next_job("Failed", named=lambda name: name.endswith("-pre"), reason="ClientError: no input files")

        execution = world.score()

    assert (execution.status, execution.error) == ("FAILED", "PreprocessFailed")
    assert "ClientError: no input files" in execution.cause
    assert list(world.jobs()) == ["pre"]


def test_stopping_the_execution_stops_the_running_job_and_starts_no_other(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        release = world.shim.hold("infer")
        execution_arn = world.start()
        name = _wait_for_job(world, "infer")

        world.sfn.stop_execution(executionArn=execution_arn, error="Cancelled", cause="stopped by the test")
        execution = sfn_harness.wait(world.sfn, execution_arn)
        release.set()

    assert execution.status == "ABORTED"
    assert world.shim.stop_calls == [name]
    assert world.shim.status(name) == "Stopped"
    assert list(world.jobs()) == ["pre", "infer"]


def _wait_for_job(world, suffix: str) -> str:
    """The name of the step's job once it is InProgress (the deadline is a deadlock guard, not a timing assumption)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if suffix in world.jobs() and world.shim.jobs[world.jobs()[suffix]["ProcessingJobName"]].reads > 0:
            return world.jobs()[suffix]["ProcessingJobName"]
        time.sleep(0.01)
    raise TimeoutError(f"no {suffix} job started")


def test_job_names_carry_the_execution_and_fit_sagemakers_limit(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        first, second = world.score(), world.score()

    names = [job["ProcessingJobName"] for job in world.shim.created()]
    assert len(set(names)) == 6
    assert all(len(name) <= 63 for name in names)
    for execution in (first, second):
        digest = hashlib.md5(execution.arn.encode()).hexdigest()
        assert {job["Name"] for job in execution.output["jobs"].values()} == {f"{DEV.prefix}-{digest}-{s}" for s in ("pre", "infer", "post")}
    tags = {t["Key"]: t["Value"] for t in world.shim.created()[0]["Tags"]}
    assert tags["batch-inference-run"] == hashlib.md5(first.arn.encode()).hexdigest()


def test_intermediate_files_go_under_the_work_prefix_and_only_the_result_under_output_uri(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        execution = world.score(output_uri=f"{OUTPUT_URI}/")

    jobs = world.jobs()
    assert [_output(jobs[step]) for step in ("pre", "infer")] == [f"{WORK_URI}{execution.output['run_id']}/{folder}/" for folder in ("preprocessed", "predictions")]
    assert _output(jobs["post"]) == f"{OUTPUT_URI}/"


def test_an_execution_name_with_characters_tags_refuse_still_creates_its_jobs(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        arn = sfn_harness.start(world.sfn, world.state_machine, {"input_uri": INPUT_URI, "output_uri": OUTPUT_URI}, "nightly(rerun)!-o'brien")
        execution = sfn_harness.wait(world.sfn, arn)

    assert execution.status == "SUCCEEDED", execution.cause
    tags = {t["Key"]: t["Value"] for t in world.shim.created()[0]["Tags"]}
    assert tags["batch-inference-run"] == hashlib.md5(execution.arn.encode()).hexdigest() == execution.output["run_id"]


BAD_INPUTS = {
    "missing input_uri": ({"output_uri": OUTPUT_URI}, "input_uri is missing"),
    "missing output_uri": ({"input_uri": INPUT_URI}, "output_uri is missing"),
    "input_uri not on S3": ({"input_uri": "https://example.com/data/", "output_uri": OUTPUT_URI}, "input_uri must be an s3:// URI"),
    "output_uri not on S3": ({"input_uri": INPUT_URI, "output_uri": "/tmp/out"}, "output_uri must be an s3:// URI"),
    "output_uri in another bucket": (
        {"input_uri": INPUT_URI, "output_uri": "s3://someone-elses-bucket/out"},
        f"output_uri must be under s3://{ARTIFACTS_BUCKET}/batch-inference/output/",
    ),
    "output_uri over the delivered code": (
        {"input_uri": INPUT_URI, "output_uri": f"s3://{ARTIFACTS_BUCKET}/batch-inference/code/"},
        f"output_uri must be under s3://{ARTIFACTS_BUCKET}/batch-inference/output/",
    ),
    "output_uri over registered model artifacts": (
        {"input_uri": INPUT_URI, "output_uri": f"s3://{ARTIFACTS_BUCKET}/pipelines/mlops-dev-training/run-1/"},
        f"output_uri must be under s3://{ARTIFACTS_BUCKET}/batch-inference/output/",
    ),
    "an image of another repository": (
        {"input_uri": INPUT_URI, "output_uri": OUTPUT_URI, "custom_image_uri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mine:latest"},
        "custom_image_uri must be an image of this environment's batch inference repository",
    ),
    "another role": (
        {"input_uri": INPUT_URI, "output_uri": OUTPUT_URI, "role": "arn:aws:iam::111111111111:role/admin"},
        'input key "role" is not one this workflow takes',
    ),
    "other code": (
        {"input_uri": INPUT_URI, "output_uri": OUTPUT_URI, "code_uri": f"s3://{ARTIFACTS_BUCKET}/mine/"},
        'input key "code_uri" is not one this workflow takes',
    ),
    "another preprocessing image": (
        {"input_uri": INPUT_URI, "output_uri": OUTPUT_URI, "scikit_image_uri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mine:latest"},
        'input key "scikit_image_uri" is not one this workflow takes',
    ),
    "a misspelt key": (
        {"model_package": "version 3, please", "input_uri": INPUT_URI, "output_uri": OUTPUT_URI},
        'input key "model_package" is not one this workflow takes',
    ),
    "too long a runtime": ({"input_uri": INPUT_URI, "output_uri": OUTPUT_URI, "max_runtime": 86400}, "max_runtime must be a number of seconds from 1 to 3600"),
    "no instances": ({"input_uri": INPUT_URI, "output_uri": OUTPUT_URI, "instance_count": 0}, "instance_count must be a number from 1 to 100"),
    "a package of another environment's group": (
        {"input_uri": INPUT_URI, "output_uri": OUTPUT_URI, "model_package_arn": f"arn:aws:sagemaker:{REGION}:123456789012:model-package/other-models/1"},
        f"model_package_arn must be a version of a model package group of this environment: {', '.join(GROUPS.values())}",
    ),
    "an unknown model": (
        {"input_uri": INPUT_URI, "output_uri": OUTPUT_URI, "model": "fraud"},
        f"model must be the name of one of this environment's models: {', '.join(GROUPS)}",
    ),
    "a model that is not a name": (
        {"input_uri": INPUT_URI, "output_uri": OUTPUT_URI, "model": 3},
        f"model must be the name of one of this environment's models: {', '.join(GROUPS)}",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=str)
def test_bad_input_fails_before_any_job_is_created(batch_template, case):
    given, message = BAD_INPUTS[case]
    with batch_world(batch_template) as world:
        world.register()

        execution = world.start_exactly(given)

    assert (execution.status, execution.error) == ("FAILED", "InvalidInput")
    assert message in execution.cause
    assert world.shim.created() == []
    assert not [e for e in execution.history if e["type"] == "TaskScheduled"], "an AWS call was made for a bad input"


def test_without_an_image_tag_in_config_the_input_must_name_the_custom_image(untagged_batch_template):
    with batch_world(untagged_batch_template) as world:
        world.register()

        refused = world.score()
        named = world.score(custom_image_uri=f"{world.repository_uri}:4f2c1e9")

    assert (refused.status, refused.error) == ("FAILED", "InvalidInput")
    assert "custom_image_uri is missing and batch_inference.image_tag is not set" in refused.cause
    assert named.status == "SUCCEEDED"


def test_no_approved_model_fails_before_any_job(batch_template):
    with batch_world(batch_template) as world:
        world.register("PendingManualApproval")

        execution = world.score()

    assert (execution.status, execution.error) == ("FAILED", "NoApprovedModel")
    assert world.shim.created() == []


def test_the_unknown_key_message_lists_every_key_the_input_takes(batch_template):
    with batch_world(batch_template) as world:
        execution = world.score(model_package="x")

    assert execution.error == "InvalidInput"
    assert execution.cause.endswith(", ".join(INPUT_KEYS))


def test_an_image_of_the_environments_repository_by_digest_is_accepted(batch_template):
    digest = "sha256:" + "0" * 64
    with batch_world(batch_template) as world:
        world.register()
        execution = world.score(custom_image_uri=f"{world.repository_uri}@{digest}")

    assert execution.status == "SUCCEEDED", execution.cause
    assert world.jobs()["infer"]["AppSpecification"]["ImageUri"] == f"{world.repository_uri}@{digest}"


# -- which models may score ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_a_named_package_that_is_not_approved_is_refused_before_any_job(approved_only_batch_template, status):
    with batch_world(approved_only_batch_template) as world:
        world.register()
        unapproved, _ = world.register(status)

        execution = world.score(model_package_arn=unapproved)

    assert (execution.status, execution.error) == ("FAILED", "ModelNotApproved")
    assert unapproved in execution.cause and status in execution.cause
    assert world.shim.create_calls == []


def test_a_named_approved_package_scores_where_only_approved_ones_may(approved_only_batch_template):
    with batch_world(approved_only_batch_template) as world:
        approved, artifact = world.register()
        world.register()

        execution = world.score(model_package_arn=approved)

    assert execution.status == "SUCCEEDED", execution.cause
    assert _inputs(world.jobs()["infer"])["model"]["S3Uri"] == artifact


def test_a_model_artifact_is_refused_where_only_approved_packages_may_score(approved_only_batch_template):
    with batch_world(approved_only_batch_template) as world:
        world.register()

        execution = world.score(model_uri=f"s3://{ARTIFACTS_BUCKET}/models/hand-made/model.tar.gz")

    assert (execution.status, execution.error) == ("FAILED", "InvalidInput")
    assert "batch_inference.allow_unapproved_models is off" in execution.cause
    assert world.shim.create_calls == []


def test_where_config_allows_it_a_package_pending_approval_scores(batch_template):
    with batch_world(batch_template) as world:
        pending, artifact = world.register("PendingManualApproval")

        execution = world.score(model_package_arn=pending)

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["model"]["approval_status"] == "PendingManualApproval"


# -- a job is never created twice under one name -----------------------------------------------------------


@pytest.mark.parametrize("error", ["States.TaskFailed", SFN_ERROR_NAME])
def test_a_failed_job_ends_the_run_with_its_reason_whichever_error_the_sync_task_raises(batch_template, error):
    reason = "AlgorithmError: part-0.csv: missing feature column 'mean radius'"
    with batch_world(batch_template) as world:
        world.register()
        world.shim.failed_jobs_raise(error)
        world.shim.next_job("Failed", named=lambda name: name.endswith("-infer"), reason=reason)

        execution = world.score()

    assert (execution.status, execution.error) == ("FAILED", "InferenceFailed")
    assert reason in execution.cause and world.jobs()["infer"]["ProcessingJobName"] in execution.cause
    assert [name.rsplit("-", 1)[1] for name in world.shim.create_calls] == ["pre", "infer"], "the failed job was created again"


def test_a_failed_job_raises_the_error_its_own_world_chose_after_another_world_ran_the_workflow(batch_template):
    # The program a definition is parsed into is kept for later worlds (sfn_harness.parsed_once): its task
    # states must meet the shim of the world that runs them, or a later world's choice would never be tested.
    raised = {}
    for error in ("States.TaskFailed", SFN_ERROR_NAME):
        with batch_world(batch_template) as world:
            world.register()
            world.shim.failed_jobs_raise(error)
            world.shim.next_job("Failed", named=lambda name: name.endswith("-infer"))
            execution = world.score()
        raised[error] = [event["taskFailedEventDetails"]["error"] for event in execution.events("TaskFailed")]

    assert raised == {"States.TaskFailed": ["States.TaskFailed"], SFN_ERROR_NAME: [SFN_ERROR_NAME]}


def test_a_create_that_answered_500_after_starting_its_job_waits_for_that_job(batch_template):
    with batch_world(batch_template) as world:
        world.register()
        world.shim.answer_500_after_create()

        execution = world.score()

    assert execution.status == "SUCCEEDED", execution.cause
    assert [name.rsplit("-", 1)[1] for name in world.shim.create_calls] == ["pre", "infer", "post"]
    assert "Look up the Preprocess job" in execution.states_entered
    assert execution.output["jobs"]["Preprocess"] == {"Name": world.jobs()["pre"]["ProcessingJobName"], "Status": "Completed"}


@pytest.mark.parametrize("error", ["States.TaskFailed", SFN_ERROR_NAME])
def test_a_create_that_answered_500_keeps_the_reason_its_job_failed_with(batch_template, error):
    with batch_world(batch_template) as world:
        world.register()
        world.shim.failed_jobs_raise(error)
        world.shim.answer_500_after_create()
        world.shim.next_job("Failed", named=lambda name: name.endswith("-pre"), reason="ClientError: no input files")

        execution = world.score()

    assert (execution.status, execution.error) == ("FAILED", "PreprocessFailed")
    assert "ClientError: no input files" in execution.cause
    assert len(world.shim.create_calls) == 1


FOUND = {
    "the .sync task's job description": lambda shim: shim.failed_jobs_raise("States.TaskFailed"),
    "a lookup after the integration's generic error": lambda shim: shim.failed_jobs_raise(SFN_ERROR_NAME),
    "a lookup after a create that answered 500": lambda shim: shim.answer_500_after_create(),
}


@pytest.mark.parametrize("found", FOUND, ids=str)
def test_the_scripts_message_and_the_reason_arrive_however_the_failed_job_is_found(batch_template, found):
    message = "part-0.csv: column 'mean radius' is missing"
    with batch_world(batch_template) as world:
        world.register()
        FOUND[found](world.shim)
        world.shim.next_job("Failed", named=lambda name: name.endswith("-pre"), reason="AlgorithmError: see the job's logs", exit_message=message)

        execution = world.score()

    assert (execution.status, execution.error) == ("FAILED", "PreprocessFailed")
    assert message in execution.cause and "AlgorithmError: see the job's logs" in execution.cause
    assert len(world.shim.create_calls) == 1


def test_a_create_refused_as_invalid_is_not_tried_again(batch_template):
    with batch_world(batch_template) as world, injected_faults() as faults:
        world.register()
        faults["Preprocess"] = Fault("ValidationException")

        execution = world.score()

    assert (execution.status, execution.error) == ("FAILED", "PreprocessFailed")
    assert "ValidationException" in execution.cause
    assert faults["Preprocess"].calls == 1


def test_a_create_that_keeps_failing_without_a_job_is_given_up_after_its_attempts(batch_template):
    with batch_world(batch_template) as world, injected_faults() as faults:
        world.register()
        faults["Preprocess"] = Fault("ThrottlingException")

        execution = world.score()

    assert (execution.status, execution.error) == ("FAILED", "PreprocessFailed")
    assert execution.cause.startswith("Preprocess job could not run: SageMaker.AmazonSageMakerException: ")
    assert "ThrottlingException" in execution.cause
    assert faults["Preprocess"].calls == CREATE_ATTEMPTS
