"""The deployment stack: alarms, notifications, the approval trigger and the deployer's permissions."""

from __future__ import annotations

import json

import pytest
from moto.events.models import EventPattern

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from mlops_constructs.canary_deployer import CanaryDeployer, DataCapture, VariantScaling
from config.deployer_timings import CanaryTimings
from stacks.environment import new_app
from tests.behaviour.sfn_harness import task_states
from tests.templates import cfn_text, only, policy_statements, properties, resources, role_named, state_machine_definition, without_other_models
from tests.synth import Synthesized, environment_config

GROUP = "mlops-dev-models"





@pytest.fixture
def deployment(synthesized: Synthesized, environment) -> dict:
    """The environment's deployment template with the resources of the model that keeps the environment's
    names and those of the environment; another model's (under construct Model-<name>) are left out."""
    return without_other_models(synthesized.template(environment, "deployment"), synthesized.config(environment))


def model_package_state_change(status: str = "Approved", group: str = GROUP, version: int = 3) -> dict:
    """The event SageMaker sends when a model package's approval status changes."""
    dev = environment_config("dev")
    arn = f"arn:aws:sagemaker:{dev.region}:{dev.account}:model-package/{group}/{version}"
    return {
        "version": "0",
        "id": "8d5c2f3a-1b4e-4c2f-9a7d-3e6f5b1c2d4e",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": dev.account,
        "time": "2026-11-22T10:00:00Z",
        "region": dev.region,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": arn,
            "ModelPackageName": group,
            "CreationTime": 1795000000000,
            "ModelApprovalStatus": status,
            "ModelPackageStatus": "Completed",
            "CreatedBy": {"DomainId": "d-abc123", "UserProfileName": "ml-engineer"},
        },
    }


@pytest.fixture
def approval_rule(synthesized: Synthesized) -> dict:
    """The approval rule of dev's model that keeps the environment's names (the others': test_model_units)."""
    rules = resources(synthesized.template("dev", "deployment"), "AWS::Events::Rule")
    (rule,) = [r["Properties"] for key, r in rules.items() if key.startswith("DeployOnApproval")]
    return rule


def test_approval_of_our_package_starts_the_deployer(approval_rule):
    assert EventPattern.load(json.dumps(approval_rule["EventPattern"])).matches_event(model_package_state_change())


@pytest.mark.parametrize(
    "event",
    [
        model_package_state_change(status="Rejected"),
        model_package_state_change(status="PendingManualApproval"),
        model_package_state_change(group="someone-elses-models"),
    ],
    ids=["rejected", "pending", "other-group"],
)
def test_other_package_events_start_nothing(approval_rule, event):
    assert not EventPattern.load(json.dumps(approval_rule["EventPattern"])).matches_event(event)


def test_deployer_gets_only_the_package_arn(approval_rule):
    (target,) = approval_rule["Targets"]
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-ModelPackageArn": "$.detail.ModelPackageArn"}
    assert json.loads(transformer["InputTemplate"].replace("<detail-ModelPackageArn>", '"arn"')) == {"ModelPackageArn": "arn"}


def test_approval_events_are_retried_then_dead_lettered(approval_rule):
    (target,) = approval_rule["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert "DeadLetterConfig" in target


def _variant_alarms(deployment: dict) -> list[dict]:
    return [a["Properties"] for a in resources(deployment, "AWS::CloudWatch::Alarm").values() if a["Properties"].get("Namespace") == "AWS/SageMaker"]


def test_alarms_cover_errors_and_latency_of_both_colours_with_stable_names(deployment, environment):
    alarms = {a["AlarmName"]: a for a in _variant_alarms(deployment)}
    # dev serves serverless: that endpoint's variants are the ones alarmed.
    endpoint = f"mlops-{environment}-serverless" if environment == "dev" else f"mlops-{environment}-endpoint"

    assert sorted(alarms) == sorted(f"{endpoint}-{c}-{m}" for c in ("blue", "green") for m in ("5xx", "4xx", "latency"))
    for name, alarm in alarms.items():
        variant = name.split("-")[-2]
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"EndpointName": endpoint, "VariantName": variant}
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert alarm["TreatMissingData"] == "notBreaching"


def test_alarm_thresholds_and_periods_come_from_config(deployment, environment):
    settings = environment_config(environment).deployment.alarms
    alarms = {a["AlarmName"].rsplit("-", 1)[-1]: a for a in _variant_alarms(deployment)}

    assert alarms["5xx"]["Threshold"] == settings.errors_5xx
    assert alarms["4xx"]["Threshold"] == settings.errors_4xx
    assert alarms["latency"]["Threshold"] == settings.model_latency_ms * 1000
    assert {a["Period"] for a in alarms.values()} == {settings.period_seconds}


def test_notifications_topic_is_encrypted_and_tlsonly(deployment):
    _, topic = only(deployment, "AWS::SNS::Topic")
    _, policy = only(deployment, "AWS::SNS::TopicPolicy")

    assert "KmsMasterKeyId" in topic
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy["PolicyDocument"]["Statement"])


def test_state_machine_logs_traces_and_times_out(deployment, environment):
    # In dev and staging the endpoint clean-up's waiter is a second state machine.
    (machine,) = [
        machine
        for machine in properties(deployment, "AWS::StepFunctions::StateMachine")
        if machine.get("StateMachineName") == f"mlops-{environment}-canary-deployer"
    ]

    _, definition = state_machine_definition(deployment, "CanaryDeployer")

    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    # The execution's own limit, not any state's: one state's TimeoutSeconds would not end a stuck execution.
    assert definition["TimeoutSeconds"] > 0


def test_deployer_role_never_gets_a_service_wide_action(deployment):
    statements = policy_statements(deployment, role_named(deployment, "CanaryDeployerStateMachineRole"))
    actions = [a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert not [a for a in actions if a.endswith(":*")]
    star = [s for s in statements if s["Resource"] == "*"]
    assert all(str(s["Action"]).count("application-autoscaling:") or s["Action"] == "iam:CreateServiceLinkedRole" or "xray:" in str(s["Action"]) for s in star)


def _timings(environment: str) -> tuple[CanaryTimings, int]:
    settings = environment_config(environment).deployment
    timings = CanaryTimings(
        poll_seconds=settings.poll_seconds,
        max_update_polls=settings.max_update_polls,
        bake_checks=settings.bake_checks,
        alarm_poll_seconds=settings.alarm_poll_seconds,
    )
    return timings, settings.approval_timeout_minutes * 60 if settings.manual_approval else 0


def test_deployer_outlives_its_longest_path_with_margin(deployment, environment):
    timings, approval = _timings(environment)
    _, definition = state_machine_definition(deployment, "CanaryDeployer")

    assert definition["TimeoutSeconds"] >= 1.25 * timings.longest_path_seconds(approval)


def test_prod_approval_wait_and_the_rollback_after_it_end_before_the_deployer_times_out(synthesized: Synthesized):
    deployment = synthesized.template("prod", "deployment")
    timings, _ = _timings("prod")
    _, definition = state_machine_definition(deployment, "CanaryDeployer")
    ask = definition["States"]["Wait for an approver"]
    bake_and_canary = timings.bake_seconds + timings.update_wait_seconds
    rollback = 2 * timings.update_wait_seconds

    assert ask["TimeoutSeconds"] == 24 * 3600
    assert bake_and_canary + ask["TimeoutSeconds"] + rollback < definition["TimeoutSeconds"]
    assert any("States.ALL" in catch["ErrorEquals"] for catch in ask["Catch"])


def test_alarms_are_checked_at_most_fifteen_seconds_apart_during_the_bake(deployment):
    _, definition = state_machine_definition(deployment, "CanaryDeployer")

    assert definition["States"]["Bake"]["Seconds"] < 15


def test_every_aws_call_of_the_deployer_retries_throttling(deployment):
    _, definition = state_machine_definition(deployment, "CanaryDeployer")
    tasks = task_states(definition)

    # With a backoff Retry rule on the errors the service declares, or through the decision on the Cause of its
    # generic error (sdk_errors): S3 declares no throttling error, so its call has only the decision.
    def retries_throttling(name: str, state: dict) -> bool:
        by_rule = any(r["BackoffRate"] > 1 for r in state.get("Retry", []))
        by_cause = any(catch["Next"] == f"Retry {name}?" for catch in state.get("Catch", []))
        return by_rule or by_cause

    assert tasks
    assert [name for name, state in tasks.items() if not retries_throttling(name, state)] == []


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_deployer_creates_grants_only_for_sagemaker_resources(deployment):
    statements = policy_statements(deployment, role_named(deployment, "CanaryDeployerStateMachineRole"))
    grants = [s for s in statements if "kms:CreateGrant" in s["Action"]]

    assert grants
    for grant in grants:
        assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
        assert "kms:ViaService" in grant["Condition"]["StringEquals"]


def test_staging_and_prod_require_canary_traffic_before_promoting(synthesized: Synthesized):
    for environment in ("staging", "prod"):
        _, definition = state_machine_definition(synthesized.template(environment, "deployment"), "CanaryDeployer")
        choice = definition["States"]["Did the canary serve enough requests?"]
        assert choice["Choices"][0]["NumericGreaterThanEquals"] == environment_config(environment).deployment.min_canary_invocations > 0


def _deployer(**overrides) -> CanaryDeployer:
    """A deployer in a stack of its own, with `overrides` on otherwise valid properties. The App is the one
    `cdk synth` builds (new_app): a default App would also run aws-cdk-lib's built-in CloudFormation
    validation, seconds of CPU when a test synthesizes the stack, which the app itself turns off."""
    stack = cdk.Stack(new_app(), "Deployer")
    properties = {
        "state_machine_name": "deployer",
        "endpoint_name": "endpoint",
        "model_name_prefix": "model",
        "model_package_group_name": "models",
        "model_role": iam.Role(stack, "ModelRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
        "instance_type": "ml.m5.large",
        "initial_instance_count": 1,
        "canary_weight": 0.2,
        "timings": CanaryTimings(poll_seconds=30, max_update_polls=10, bake_checks=10, alarm_poll_seconds=10),
        "scaling": VariantScaling(min_capacity=1, max_capacity=2, invocations_per_instance=100),
        "alarm_names": {"blue": [], "green": []},
        "key": kms.Key(stack, "Key"),
        "release_records_bucket_name": "artifacts",
        "release_records_policy": iam.ManagedPolicy.from_managed_policy_name(stack, "ReleaseRecords", "release-records"),
    }
    return CanaryDeployer(stack, "CanaryDeployer", **{**properties, **overrides})


def test_deployer_whose_waits_cannot_fit_one_execution_is_refused():
    forever = CanaryTimings(poll_seconds=3600, max_update_polls=3000, bake_checks=1, alarm_poll_seconds=1)

    with pytest.raises(ValueError, match="longest path"):
        _deployer(timings=forever)


def test_endpoint_name_too_long_for_its_config_names_is_refused():
    with pytest.raises(ValueError, match="63 characters"):
        _deployer(endpoint_name="e" * 40)


def endpoint_config_parameters(definition: dict) -> list[dict]:
    """The parameters of every CreateEndpointConfig call in a deployer definition."""
    return [state["Parameters"] for state in task_states(definition).values() if state["Resource"].endswith(":createEndpointConfig")]


def _definition(deployer: CanaryDeployer) -> dict:
    return json.loads(cfn_text(cdk.Stack.of(deployer).resolve(deployer.state_machine.node.default_child.definition_string)))


def test_deployer_without_data_capture_creates_configs_without_it():
    deployer = _deployer()
    definition = _definition(deployer)
    assert all("DataCaptureConfig" not in p for p in endpoint_config_parameters(definition))


def test_deployer_with_data_capture_puts_it_on_every_config():
    deployer = _deployer(data_capture=DataCapture(destination_s3_uri="s3://bucket/data-capture", sampling_percentage=5))
    definition = _definition(deployer)
    captures = [p["DataCaptureConfig"] for p in endpoint_config_parameters(definition)]
    assert len(captures) == 4 and {c["InitialSamplingPercentage"] for c in captures} == {5}


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_every_endpoint_config_the_deployer_creates_captures_traffic(synthesized: Synthesized, environment):
    _, definition = state_machine_definition(synthesized.template(environment, "deployment"), "CanaryDeployer")
    sampling = environment_config(environment).deployment.data_capture.sampling_percentage
    parameters = endpoint_config_parameters(definition)

    assert len(parameters) == 4
    for config in parameters:
        capture = config["DataCaptureConfig"]
        assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == sampling
        assert capture["DestinationS3Uri"] == "s3://<cfn>/data-capture"
        assert capture["KmsKeyId"] == config["KmsKeyId"]


def test_a_serverless_deployers_endpoint_configs_each_hold_one_serverless_variant_without_capture_or_key(synthesized: Synthesized):
    _, definition = state_machine_definition(synthesized.template("dev", "deployment"), "CanaryDeployer")
    serving = environment_config("dev").deployment.serving
    parameters = endpoint_config_parameters(definition)

    # The first release's, and a later release's rollback and release configs.
    assert len(parameters) == 3
    for config in parameters:
        assert "DataCaptureConfig" not in config and "KmsKeyId" not in config
        (variant,) = config["ProductionVariants"]
        assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    variants = [config["ProductionVariants"][0] for config in parameters]
    # New releases get the configured capacity; the rollback config puts back what the live variant had.
    assert [v["ServerlessConfig"] for v in variants if "ServerlessConfig" in v] == [
        {"MemorySizeInMB": serving.memory_size_mb, "MaxConcurrency": serving.max_concurrency}
    ] * 2
    assert [v["ServerlessConfig.$"] for v in variants if "ServerlessConfig.$" in v] == ["$.liveConfig.ServerlessConfig"]


def test_a_serverless_deployer_creates_models_without_a_vpc_and_registers_no_autoscaling(synthesized: Synthesized):
    _, definition = state_machine_definition(synthesized.template("dev", "deployment"), "CanaryDeployer")
    tasks = task_states(definition)
    models = [state["Parameters"] for state in tasks.values() if state["Resource"].endswith(":createModel")]

    assert models and all("VpcConfig" not in model and model["ModelName.$"] for model in models)
    assert [name for name, state in tasks.items() if ":applicationautoscaling:" in state["Resource"]] == []


# -- who may answer the approval, and where the deployer announces -------------------------------


def test_deployer_logs_leave_out_execution_data(deployment):
    machine, _ = state_machine_definition(deployment, "CanaryDeployer")

    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_only_the_approval_wait_holds_the_task_token_and_sends_it_nowhere_but_step_functions(synthesized: Synthesized):
    _, definition = state_machine_definition(synthesized.template("prod", "deployment"), "CanaryDeployer")

    holders = {name: state for name, state in task_states(definition).items() if "$$.Task.Token" in json.dumps(state.get("Parameters", {}))}

    assert list(holders) == ["Wait for an approver"]
    assert holders["Wait for an approver"]["Resource"].endswith(":states:::aws-sdk:sfn:sendTaskHeartbeat.waitForTaskToken")


def _approver_policy(template: dict) -> dict:
    (policy,) = [r["Properties"] for r in resources(template, "AWS::IAM::ManagedPolicy").values() if r["Properties"]["ManagedPolicyName"].endswith("-deployment-approver")]
    return policy


def test_approver_policy_reads_only_this_deployers_executions(deployment, environment):
    statements = {s["Sid"]: s for s in _approver_policy(deployment)["PolicyDocument"]["Statement"]}

    assert cfn_text(statements["ReadTheApprovalRequest"]["Resource"]).endswith(f":execution:mlops-{environment}-canary-deployer:*")
    assert set(statements) == {"FindTheWaitingDeployment", "ReadTheApprovalRequest", "AnswerTheApprovalRequest"}


def test_approver_policy_exists_unattached_until_config_names_approvers(deployment):
    assert "Roles" not in _approver_policy(deployment)


def test_approver_policy_is_attached_to_the_roles_named():
    deployer = _deployer(alarm_names={"blue": ["blue-5xx"], "green": ["green-5xx"]})
    stack = cdk.Stack.of(deployer)
    deployer.approver_policy(stack, "x-deployment-approver", ["release-manager", "ml-lead"])

    assert _approver_policy(cdk.assertions.Template.from_stack(stack).to_json())["Roles"] == ["release-manager", "ml-lead"]


def test_announcements_go_on_a_bus_only_the_deployer_may_put_events_on(deployment):
    machine, definition = state_machine_definition(deployment, "CanaryDeployer")
    bus_id, bus = only(deployment, "AWS::Events::EventBus")
    puts = [state for state in task_states(definition).values() if ":events:putEvents" in state["Resource"]]

    assert puts and all("EventBusName" in entry for state in puts for entry in state["Parameters"]["Entries"])
    assert {"Fn::GetAtt": [bus_id, "Arn"]} in machine["DefinitionString"]["Fn::Join"][1]
    (statement,) = bus["Policy"]["Statement"]
    assert cfn_text(statement["Resource"]).endswith(f":event-bus/{bus['Name']}")
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", {"AWS": "*"}, "events:PutEvents")
    assert statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == machine["RoleArn"]
