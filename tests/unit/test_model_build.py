"""The model-build stack: the training trigger, the pipeline upsert and their permissions."""

from __future__ import annotations

import copy
import json
import re

import pytest
from moto.events.models import EventPattern

from pipeline_code import render
from tests.templates import cfn_text, only, policy_statements, resources, role_named
from tests.synth import Synthesized, environment_config, model_build_stack

DATA_BUCKET = "mlops-dev-trainingdata-1a2b3c"





@pytest.fixture
def model_build(synthesized: Synthesized, environment) -> dict:
    return synthesized.template(environment, "model-build")


def s3_object_created(bucket: str, key: str) -> dict:
    """An EventBridge "Object Created" event as S3 sends it."""
    dev = environment_config("dev")
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": dev.account,
        "time": "2026-11-22T10:00:00Z",
        "region": dev.region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 53412, "etag": "b1946ac92492d2347c6235b4d2611184", "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "00617F08299329D189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": dev.account,
            "source-ip-address": "203.0.113.15",
            "reason": "PutObject",
        },
    }


def upload_rule(template: dict, pipeline: str) -> dict | None:
    """The rule that hands uploads to the debounce function for `pipeline`, if there is one."""
    rules = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if any(f'"pipeline": "{pipeline}"' in t.get("InputTransformer", {}).get("InputTemplate", "") for t in r["Properties"]["Targets"])
    ]
    assert len(rules) <= 1
    return rules[0] if rules else None


def debounce_function(template: dict) -> tuple[str, dict]:
    ((logical_id, function),) = [
        (name, r["Properties"]) for name, r in resources(template, "AWS::Lambda::Function").items() if name.startswith("TriggersDebounce")
    ]
    return logical_id, function


def debounced_pipelines(template: dict) -> dict:
    """The debounce function's PIPELINES map, with CloudFormation values written as <LogicalId.Attribute>."""
    return json.loads(cfn_text(debounce_function(template)[1]["Environment"]["Variables"]["PIPELINES"]))


@pytest.fixture
def training_trigger(synthesized: Synthesized) -> EventPattern:
    """dev's upload rule pattern for training, with the data bucket's name as CloudFormation would resolve it."""
    pattern = copy.deepcopy(upload_rule(synthesized.template("dev", "model-build"), "training")["EventPattern"])
    pattern["detail"]["bucket"]["name"] = [DATA_BUCKET]
    return EventPattern.load(json.dumps(pattern))


@pytest.mark.parametrize("key", ["training/breast_cancer.csv", "training/2026/11/22/batch-0001.csv"])
def test_csv_uploaded_under_the_training_prefix_starts_training(training_trigger, key):
    assert training_trigger.matches_event(s3_object_created(DATA_BUCKET, key))


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        (DATA_BUCKET, "scoring/breast_cancer.csv"),
        (DATA_BUCKET, "raw/training/breast_cancer.csv"),
        (DATA_BUCKET, "training/breast_cancer.parquet"),
        (DATA_BUCKET, "training/breast_cancer.csv.tmp"),
        ("someone-elses-bucket", "training/breast_cancer.csv"),
    ],
    ids=["other-prefix", "prefix-not-at-start", "other-suffix", "suffix-not-at-end", "other-bucket"],
)
def test_other_uploads_start_nothing(training_trigger, bucket, key):
    assert not training_trigger.matches_event(s3_object_created(bucket, key))


def test_deleted_objects_start_nothing(training_trigger):
    event = s3_object_created(DATA_BUCKET, "training/breast_cancer.csv")
    event["detail-type"] = "Object Deleted"
    assert not training_trigger.matches_event(event)


def test_only_training_listens_to_uploads_unless_config_says_so(model_build, environment, pipeline):
    configured = environment_config(environment).model_build.pipelines.get(pipeline)

    assert (upload_rule(model_build, pipeline) is not None) == (pipeline == "training" or (configured is not None and configured.trigger == "upload"))


def test_uploads_under_the_training_prefix_reach_the_debounce_function_naming_training(model_build, environment):
    config = environment_config(environment).model_build
    rule = upload_rule(model_build, "training")
    (target,) = rule["Targets"]

    assert target["Arn"] == {"Fn::GetAtt": [debounce_function(model_build)[0], "Arn"]}
    assert target["InputTransformer"] == {"InputPathsMap": {"key": "$.detail.object.key"}, "InputTemplate": '{"pipeline": "training", "key": <key>}'}
    assert rule["EventPattern"]["detail"]["object"]["key"] == [{"wildcard": f"{config.training_prefix}*{config.training_suffix}"}]


def test_debounced_training_starts_with_the_training_prefix_after_five_quiet_minutes_or_an_hour_at_most(model_build, environment):
    config = environment_config(environment).model_build
    upsert_name = _upsert_logical_id(model_build, f"mlops-{environment}-training")

    training = debounced_pipelines(model_build)["training"]

    assert training["arn"] == f"<{upsert_name}.PipelineArn>"
    assert list(training["parameters"]) == ["InputDataUri"]
    assert re.fullmatch(rf"s3://<\w+TrainingData\w+>/{config.training_prefix}", training["parameters"]["InputDataUri"])
    assert (training["quiet_seconds"], training["max_wait_seconds"]) == (300, 3600)


def test_undeliverable_uploads_are_retried_then_dead_lettered(model_build):
    queue, _ = only(model_build, "AWS::SQS::Queue")
    (target,) = upload_rule(model_build, "training")["Targets"]

    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_failed_debounce_invocations_are_dead_lettered(model_build):
    queue, _ = only(model_build, "AWS::SQS::Queue")
    _, function = debounce_function(model_build)
    assert function["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue, "Arn"]}}


def test_starts_that_scheduler_cannot_deliver_are_retried_then_dead_lettered(model_build):
    queue, _ = only(model_build, "AWS::SQS::Queue")
    variables = debounce_function(model_build)[1]["Environment"]["Variables"]

    assert variables["DEAD_LETTER_QUEUE_ARN"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert int(variables["RETRY_ATTEMPTS"]) > 0


def test_start_role_can_only_start_the_triggered_pipelines_and_dead_letter(model_build, environment):
    role = role_named(model_build, "TriggersStartRole")
    statements = policy_statements(model_build, role)

    (starts,) = [s["Resource"] for s in statements if s["Action"] == "sagemaker:StartPipelineExecution"]
    started = [name for name in render.pipeline_names() if environment_config(environment).model_build.trigger(name).trigger != "none"]
    assert sorted(starts if isinstance(starts, list) else [starts], key=json.dumps) == sorted(
        ({"Fn::GetAtt": [_upsert_logical_id(model_build, f"mlops-{environment}-{name}"), "PipelineArn"]} for name in started), key=json.dumps
    )
    assert {json.dumps(s["Action"]) for s in statements} == {'"sagemaker:StartPipelineExecution"', '"sqs:SendMessage"'}


def test_debounce_function_may_only_move_the_start_schedules_of_upload_pipelines(model_build, environment):
    role = role_named(model_build, "TriggersDebounceRole")
    statements = policy_statements(model_build, role)
    uploads = [name for name in render.pipeline_names() if environment_config(environment).model_build.trigger(name).trigger == "upload"]

    (schedules,) = [s for s in statements if "scheduler:UpdateSchedule" in s["Action"]]
    assert sorted(schedules["Action"]) == ["scheduler:CreateSchedule", "scheduler:GetSchedule", "scheduler:UpdateSchedule"]
    schedule_arns = schedules["Resource"] if isinstance(schedules["Resource"], list) else [schedules["Resource"]]
    assert sorted(cfn_text(resource).rsplit("/", 1)[1] for resource in schedule_arns) == sorted(uploads)
    assert all(cfn_text(resource).rsplit("/", 2)[-2] == _schedule_group(model_build) for resource in schedule_arns)
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    assert not [s for s in statements if "sagemaker" in json.dumps(s["Action"])]


def _upsert_logical_id(template: dict, pipeline_name: str) -> str:
    (name,) = [n for n, r in resources(template, "Custom::SageMakerPipeline").items() if r["Properties"]["PipelineName"] == pipeline_name]
    return name


def _schedule_group(template: dict) -> str:
    _, group = only(template, "AWS::Scheduler::ScheduleGroup")
    return group["Name"]


def test_upsert_handler_may_change_only_this_environments_pipelines(model_build, environment):
    role = role_named(model_build, "PipelineUpsertProviderHandlerRole")
    statements = policy_statements(model_build, role)

    sagemaker = [s for s in statements if any(a.startswith("sagemaker:") for a in s["Action"])]
    assert sagemaker and all(f":pipeline/mlops-{environment}-" in json.dumps(s["Resource"]) for s in sagemaker)
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


@pytest.mark.parametrize(("environment", "removal", "strict"), [("dev", "true", "false"), ("staging", "true", "false"), ("prod", "false", "true")])
def test_pipelines_are_deleted_with_dev_and_kept_and_guarded_in_prod(synthesized: Synthesized, environment, removal, strict, pipeline):
    upsert = _upsert(synthesized.template(environment, "model-build"), f"mlops-{environment}-{pipeline}")
    assert (upsert["DeleteOnStackDelete"], upsert["Strict"]) == (removal, strict)


def _upsert(template: dict, pipeline_name: str) -> dict:
    (upsert,) = [
        r["Properties"]
        for r in resources(template, "Custom::SageMakerPipeline").values()
        if r["Properties"]["PipelineName"] == pipeline_name
    ]
    return upsert


def test_model_package_group_has_a_stable_name(model_build, environment):
    group = model_build["Resources"]["ModelPackageGroup"]["Properties"]
    assert group["ModelPackageGroupName"] == f"mlops-{environment}-models"


def test_each_other_model_has_a_group_named_after_it(model_build, environment):
    others = [unit for unit in environment_config(environment).model_units().values() if not unit.environment_names]
    groups = resources(model_build, "AWS::SageMaker::ModelPackageGroup")

    assert others
    for unit in others:
        assert groups[f"ModelPackageGroup{unit.name}"]["Properties"]["ModelPackageGroupName"] == f"mlops-{environment}-{unit.name}-models"


@pytest.mark.parametrize(("environment", "policy"), [("dev", "Delete"), ("staging", "Delete"), ("prod", "Retain")])
def test_model_package_group_is_retained_where_storage_is(synthesized: Synthesized, environment, policy):
    groups = resources(synthesized.template(environment, "model-build"), "AWS::SageMaker::ModelPackageGroup").values()
    assert {(group["DeletionPolicy"], group["UpdateReplacePolicy"]) for group in groups} == {(policy, policy)}


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_upsert_handler_reads_only_its_own_stack(synthesized: Synthesized, environment):
    template = synthesized.template(environment, "model-build")
    statements = policy_statements(template, role_named(template, "PipelineUpsertProviderHandlerRole"))
    (stack,) = [s for s in statements if any(a.startswith("cloudformation:") for a in s["Action"])]
    assert sorted(stack["Action"]) == ["cloudformation:DescribeStacks", "cloudformation:ListStackResources"]
    assert stack["Resource"] == {"Ref": "AWS::StackId"}


def test_pipeline_role_reads_its_step_scripts_and_nothing_else_of_the_asset_bucket(model_build, tmp_path):
    role = role_named(model_build, "PipelineRole")
    reads = [r for s in policy_statements(model_build, role) if s["Action"] == "s3:GetObject" for r in s["Resource"]]
    # Every pipeline's scripts and sourcedir.tar.gz; assets are keyed by content, so identical files are one object.
    files = {(p.read_bytes(), "py") for name in render.pipeline_names() for p in render.step_scripts(name)}
    files |= {(render.source_archive(name, tmp_path).read_bytes(), "gz") for name in render.pipeline_names()}
    assert sorted(r.rsplit(".", 1)[-1] for r in reads) == sorted(suffix for _, suffix in files)
    assert all("cdk-hnb659fds-assets" in r and "*" not in r for r in reads)
    (listing,) = [s for s in policy_statements(model_build, role) if s["Action"] == "s3:ListBucket"]
    assert sorted(listing["Condition"]["StringEquals"]["s3:prefix"]) == sorted(r.split("/", 1)[1] for r in reads)


def _reviewer_policy(template: dict, environment: str) -> dict:
    (policy,) = [
        r["Properties"]
        for r in resources(template, "AWS::IAM::ManagedPolicy").values()
        if r["Properties"].get("ManagedPolicyName") == f"mlops-{environment}-model-reviewer"
    ]
    return policy


def test_reviewer_policy_exists_unattached_until_config_names_reviewers(model_build, environment):
    assert "Roles" not in _reviewer_policy(model_build, environment)


def test_reviewer_policy_is_attached_to_the_roles_config_names(tmp_path):
    reviewers = environment_config("dev").model_build.model_copy(update={"reviewer_role_names": ["ml-lead", "release-manager"]})
    app, _ = model_build_stack(tmp_path, reviewers)
    template = app.synth().get_stack_by_name("model-build").template

    assert _reviewer_policy(template, "dev")["Roles"] == ["ml-lead", "release-manager"]
