"""The deployment stack: alarms, notifications, the approval trigger and the deployer's permissions."""

from __future__ import annotations

import json

import pytest
from moto.events.models import EventPattern

from config import load_environment
from tests.templates import only, policy_statements, properties, resources, role_named
from tests.synth import CONFIG_DIR, Synthesized

GROUP = "mlops-dev-models"





@pytest.fixture
def deployment(synthesized: Synthesized, environment) -> dict:
    return synthesized.template(environment, "deployment")


def model_package_state_change(status: str = "Approved", group: str = GROUP, version: int = 3) -> dict:
    """The event SageMaker sends when a model package's approval status changes."""
    arn = f"arn:aws:sagemaker:eu-west-1:111111111111:model-package/{group}/{version}"
    return {
        "version": "0",
        "id": "8d5c2f3a-1b4e-4c2f-9a7d-3e6f5b1c2d4e",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "111111111111",
        "time": "2026-11-22T10:00:00Z",
        "region": "eu-west-1",
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
    rules = resources(synthesized.template("dev", "deployment"), "AWS::Events::Rule")
    (rule,) = [r["Properties"] for r in rules.values() if r["Properties"]["EventPattern"]["source"] == ["aws.sagemaker"]]
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


def test_alarms_cover_errors_and_latency_of_both_colours_with_stable_names(deployment, environment):
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in resources(deployment, "AWS::CloudWatch::Alarm").values()}
    endpoint = f"mlops-{environment}-endpoint"

    assert sorted(alarms) == sorted(f"{endpoint}-{c}-{m}" for c in ("blue", "green") for m in ("5xx", "4xx", "latency"))
    for name, alarm in alarms.items():
        variant = name.split("-")[-2]
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"EndpointName": endpoint, "VariantName": variant}
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert alarm["TreatMissingData"] == "notBreaching"


def test_alarm_thresholds_and_periods_come_from_config(deployment, environment):
    settings = load_environment(CONFIG_DIR, environment).deployment.alarms
    alarms = {a["Properties"]["AlarmName"].rsplit("-", 1)[-1]: a["Properties"] for a in resources(deployment, "AWS::CloudWatch::Alarm").values()}

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

    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    definition = json.dumps(machine["DefinitionString"])
    assert '\\"TimeoutSeconds\\":' in definition


def test_deployer_role_never_gets_a_service_wide_action(deployment):
    statements = policy_statements(deployment, role_named(deployment, "CanaryDeployerStateMachineRole"))
    actions = [a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert not [a for a in actions if a.endswith(":*")]
    star = [s for s in statements if s["Resource"] == "*"]
    assert all(str(s["Action"]).count("application-autoscaling:") or s["Action"] == "iam:CreateServiceLinkedRole" or "xray:" in str(s["Action"]) for s in star)
