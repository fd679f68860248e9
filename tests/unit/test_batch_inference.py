"""The batch inference stack: the workflow's permissions, timeout, retries and network, the optional schedule
and image build, and the outputs other tools read."""

from __future__ import annotations

import json

import pytest

from config.naming import batch_image_build_name, model_package_group_name
from mlops_constructs.batch_inference_workflow import execution_timeout_seconds
from stacks.storage import BATCH_INFERENCE_WORK_RETENTION
from tests.behaviour.sfn_harness import task_states
from tests.optional_pieces import BATCH_SCHEDULE, CONNECTION
from tests.synth import Synthesized, environment_config
from tests.templates import cfn_text, only, policy_statements, properties, resources, role_named, state_machine_definition



@pytest.fixture
def batch(synthesized: Synthesized, environment) -> dict:
    return synthesized.template(environment, "batch-inference")


@pytest.fixture(scope="session")
def scheduled_and_built(optional_pieces_on: Synthesized) -> dict:
    """dev's batch-inference template with a schedule and the CodeBuild image build switched on."""
    return optional_pieces_on.template("dev", "batch-inference")


def _workflow_statements(template: dict) -> list[dict]:
    return policy_statements(template, role_named(template, "WorkflowStateMachineRole"))


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_workflow_role_has_no_wildcard_actions(batch):
    assert _workflow_statements(batch)
    assert [a for s in _workflow_statements(batch) for a in _actions(s) if "*" in a] == []


def test_workflow_runs_only_this_environments_processing_jobs(synthesized: Synthesized, environment, batch):
    (jobs,) = [s for s in _workflow_statements(batch) if s.get("Sid") == "RunThisWorkflowsProcessingJobs"]
    # ListTags: Step Functions' own policies for `.sync` SageMaker jobs include it.
    assert sorted(_actions(jobs)) == [
        "sagemaker:AddTags",
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:ListTags",
        "sagemaker:StopProcessingJob",
    ]
    assert cfn_text(jobs["Resource"]).endswith(f":processing-job/{synthesized.prefix(environment)}-*")


def test_workflow_hears_job_ends_only_through_the_managed_rule(batch):
    (events,) = [s for s in _workflow_statements(batch) if any(a.startswith("events:") for a in _actions(s))]
    assert sorted(_actions(events)) == ["events:DescribeRule", "events:PutRule", "events:PutTargets"]
    assert cfn_text(events["Resource"]).endswith(":rule/StepFunctionsGetEventsForSageMakerProcessingJobsRule")


def test_workflow_passes_only_the_processing_role_and_only_to_sagemaker(batch):
    (pass_role,) = [s for s in _workflow_statements(batch) if "iam:PassRole" in _actions(s)]
    assert pass_role["Resource"] == {"Fn::GetAtt": [role_named(batch, "ProcessingRole"), "Arn"]}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_workflow_reads_model_packages_of_this_environments_groups_only(synthesized: Synthesized, environment, batch):
    (describe,) = [s for s in _workflow_statements(batch) if _actions(s) == ["sagemaker:describeModelPackage"]]
    resources = describe["Resource"] if isinstance(describe["Resource"], list) else [describe["Resource"]]
    groups = {model_package_group_name(unit.stem) for unit in environment_config(environment).model_units().values()}
    assert {cfn_text(resource).rsplit(":model-package/", 1)[1] for resource in resources} == {f"{group}/*" for group in groups}


def test_execution_timeout_covers_three_jobs_at_their_longest_with_margin(synthesized: Synthesized, environment, batch):
    max_runtime = environment_config(environment).batch_inference.max_runtime_seconds
    _, definition = state_machine_definition(batch, "WorkflowStateMachine")

    assert definition["TimeoutSeconds"] == execution_timeout_seconds(max_runtime)
    assert definition["TimeoutSeconds"] >= 3 * max_runtime + 3600


def test_every_lookup_retries_throttling_and_no_job_state_retries_at_all(batch):
    _, definition = state_machine_definition(batch, "WorkflowStateMachine")
    tasks = task_states(definition)

    assert set(tasks) >= {"Preprocess", "Inference", "Postprocess", "Find the latest approved model package", "Describe the model package"}
    for name, state in tasks.items():
        retried = {error for retry in state.get("Retry", []) for error in retry["ErrorEquals"]}
        if state["Resource"].endswith(".sync"):
            # A retry would create the job again under the same name: a failure looks the job up instead.
            assert retried == set(), name
        else:
            # The generic name is caught and retried only when its Cause says throttling (sdk_errors).
            assert "SageMaker.ThrottlingException" in retried and "SageMaker.SageMakerException" not in retried, name
            first_catch = state["Catch"][0]
            assert (first_catch["ErrorEquals"], first_catch["Next"]) == (["SageMaker.SageMakerException"], f"Retry {name}?"), name
            assert "States.TaskFailed" not in retried and "States.ALL" not in retried, name


def test_the_jobs_are_sync_processing_jobs_in_order(batch):
    _, definition = state_machine_definition(batch, "WorkflowStateMachine")
    states = definition["States"]

    assert [states[name]["Resource"].rsplit(":", 2)[-2:] for name in ("Preprocess", "Inference", "Postprocess")] == [["sagemaker", "createProcessingJob.sync"]] * 3
    assert (states["Preprocess"]["Next"], states["Inference"]["Next"], states["Postprocess"]["Next"]) == ("Inference", "Postprocess", "Report the run")


@pytest.mark.parametrize(("environment", "in_vpc"), [("dev", False), ("staging", True), ("prod", True)])
def test_jobs_run_in_the_environments_subnets_in_vpc_only_environments(synthesized: Synthesized, environment, in_vpc):
    _, definition = state_machine_definition(synthesized.template(environment, "batch-inference"), "WorkflowStateMachine")
    for name in ("Preprocess", "Inference", "Postprocess"):
        network = definition["States"][name]["Parameters"].get("NetworkConfig")
        assert (network is not None) == in_vpc, name
        if in_vpc:
            assert set(network["VpcConfig"]) == {"Subnets", "SecurityGroupIds"}


def test_outputs_name_the_repository_the_state_machine_and_the_code(batch):
    outputs = batch["Outputs"]

    assert set(outputs) >= {"BatchInferenceImageRepositoryUri", "BatchInferenceStateMachineArn", "BatchInferenceCodeUri"}
    assert ".dkr.ecr." in cfn_text(outputs["BatchInferenceImageRepositoryUri"]["Value"])
    assert cfn_text(outputs["BatchInferenceCodeUri"]["Value"]).endswith("/batch-inference/code/")


def test_the_batch_inference_repository_is_pulled_only_by_the_processing_role(synthesized: Synthesized, environment):
    storage = synthesized.template(environment, "storage")
    (repository,) = [name for name in resources(storage, "AWS::ECR::Repository") if name.startswith("BatchInferenceImages")]
    (policy,) = [p for name, p in resources(storage, "AWS::IAM::ManagedPolicy").items() if name.startswith("BatchInferenceAccess")]
    (pull,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Sid"] == "PullTheBatchInferenceImage"]

    assert pull["Resource"] == {"Fn::GetAtt": [repository, "Arn"]}
    assert not [a for a in _actions(pull) if a in ("ecr:PutImage", "ecr:InitiateLayerUpload")]
    served = [p for name, p in resources(storage, "AWS::IAM::ManagedPolicy").items() if name.startswith("ServedModelAccess")]
    assert repository not in json.dumps(served)


def test_the_code_is_delivered_to_a_fixed_prefix_of_the_artifacts_bucket(synthesized: Synthesized, environment):
    (deployment,) = properties(synthesized.template(environment, "storage"), "Custom::CDKBucketDeployment")
    assert deployment["DestinationBucketKeyPrefix"] == "batch-inference/code/"
    assert deployment["Prune"] is True


def test_replacing_the_code_deployment_keeps_the_delivered_code(synthesized: Synthesized, environment):
    """A BucketDeployment whose logical ID changes deletes its files on the old resource's delete unless it retains them."""
    (deployment,) = properties(synthesized.template(environment, "storage"), "Custom::CDKBucketDeployment")
    assert deployment["RetainOnDelete"] is True


def test_intermediate_batch_files_expire_under_the_work_prefix(synthesized: Synthesized, environment):
    storage = synthesized.template(environment, "storage")
    (artifacts,) = [r["Properties"] for name, r in resources(storage, "AWS::S3::Bucket").items() if name.startswith("Artifacts")]
    (rule,) = [r for r in artifacts["LifecycleConfiguration"]["Rules"] if r.get("Prefix") == "batch-inference/work/"]

    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == BATCH_INFERENCE_WORK_RETENTION.to_days()


def test_batch_jobs_write_only_under_the_output_and_work_prefixes(synthesized: Synthesized, environment):
    storage = synthesized.template(environment, "storage")
    (policy,) = [p for name, p in resources(storage, "AWS::IAM::ManagedPolicy").items() if name.startswith("BatchInferenceAccess")]
    writes = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "s3:PutObject" in _actions(s)]

    assert sorted(cfn_text(r).rsplit("/", 2)[-2] for s in writes for r in s["Resource"]) == ["output", "work"]


def test_the_processing_role_is_assumed_by_sagemaker_for_this_account_only(synthesized: Synthesized, environment, batch):
    (trust,) = batch["Resources"][role_named(batch, "ProcessingRole")]["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": synthesized.config(environment).account}}


def test_no_schedule_and_no_image_build_unless_configured(batch):
    assert resources(batch, "AWS::Scheduler::Schedule") == {}
    assert resources(batch, "AWS::CodeBuild::Project") == {}


def test_a_configured_schedule_starts_the_workflow_with_its_fixed_input(scheduled_and_built):
    _, schedule = only(scheduled_and_built, "AWS::Scheduler::Schedule")
    machine, _ = only(scheduled_and_built, "AWS::StepFunctions::StateMachine")

    assert schedule["ScheduleExpression"] == BATCH_SCHEDULE["expression"]
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["Target"]["Arn"] == {"Ref": machine}
    assert json.loads(schedule["Target"]["Input"]) == {
        "input_uri": BATCH_SCHEDULE["input_uri"], "output_uri": BATCH_SCHEDULE["output_uri"], "model": BATCH_SCHEDULE["model"]
    }
    start_role = schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]
    (start,) = policy_statements(scheduled_and_built, start_role)
    assert (start["Action"], start["Resource"]) == ("states:StartExecution", {"Ref": machine})


def test_a_configured_image_build_builds_on_pushes_to_the_branch_through_the_connection(scheduled_and_built):
    name, project = only(scheduled_and_built, "AWS::CodeBuild::Project")

    assert project["Source"]["Type"] == "GITHUB"
    assert project["Source"]["Location"] == "https://github.com/example-org/churn-scoring.git"
    assert project["Source"]["Auth"] == {"Type": "CODECONNECTIONS", "Resource": CONNECTION}
    assert project["Environment"]["PrivilegedMode"] is True
    assert project["Triggers"]["Webhook"] is True
    (filters,) = project["Triggers"]["FilterGroups"]
    # Anchored: the pattern is a regular expression, and "release-x" must not match "release".
    assert {f["Type"]: f["Pattern"] for f in filters} == {"EVENT": "PUSH", "HEAD_REF": "^refs/heads/release$"}
    build_spec = json.loads(project["Source"]["BuildSpec"]) if project["Source"]["BuildSpec"].startswith("{") else project["Source"]["BuildSpec"]
    commands = json.dumps(build_spec)
    assert "CODEBUILD_RESOLVED_SOURCE_VERSION" in commands and "docker build" in commands and "pipeline_code/batch_inference/" in commands
    statements = policy_statements(scheduled_and_built, project["ServiceRole"]["Fn::GetAtt"][0])
    assert any(s["Resource"] == CONNECTION and "codeconnections:UseConnection" in _actions(s) for s in statements)
    assert not [a for s in statements for a in _actions(s) if a == "*" or a.endswith(":*")]


def test_the_scikit_learn_image_is_the_one_the_sagemaker_sdk_names():
    from sagemaker.core import image_uris

    from pipeline_code.settings import SKLEARN_VERSION, scikit_learn_image_uri

    for region in ("eu-west-1", "us-east-1", "ap-southeast-2"):
        assert scikit_learn_image_uri(region) == image_uris.retrieve("sklearn", region=region, version=SKLEARN_VERSION)


def test_a_configured_image_build_is_named_from_config_so_the_cli_can_start_it(scheduled_and_built):
    _, project = only(scheduled_and_built, "AWS::CodeBuild::Project")
    assert project["Name"] == batch_image_build_name(environment_config("dev").prefix)


def test_a_configured_image_build_keeps_its_logs_for_a_bounded_time(scheduled_and_built):
    _, project = only(scheduled_and_built, "AWS::CodeBuild::Project")
    log_group = project["LogsConfig"]["CloudWatchLogs"]["GroupName"]["Ref"]

    assert scheduled_and_built["Resources"][log_group]["Properties"]["RetentionInDays"] > 0


def test_a_configured_image_build_uses_the_key_only_through_s3(scheduled_and_built):
    _, project = only(scheduled_and_built, "AWS::CodeBuild::Project")
    key_statements = [s for s in policy_statements(scheduled_and_built, project["ServiceRole"]["Fn::GetAtt"][0]) if any(a.startswith("kms:") for a in _actions(s))]

    assert project["EncryptionKey"]
    assert key_statements
    for statement in key_statements:
        assert cfn_text(statement["Condition"]["StringEquals"]["kms:ViaService"]).startswith("s3.")
