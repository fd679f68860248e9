"""The optional data-quality monitoring schedule: off by default, and what it holds when config switches it on."""

from __future__ import annotations

import json

import pytest
from moto.events.models import EventPattern

from config import ENVIRONMENTS
from config.settings import Deployment
from mlops_constructs.data_quality_monitor import analyzer_image
from tests.behaviour.notify_function import handler
from tests.behaviour.sfn_harness import resolve
from tests.sample_events import alarm_state_change, monitoring_run_ended
from tests.optional_pieces import MONITORING
from tests.synth import Synthesized, environment_config
from tests.templates import cfn_text, only, resources, without_other_models

DEV = environment_config("dev")


@pytest.fixture(scope="session")
def monitored(optional_pieces_on: Synthesized) -> Synthesized:
    """dev with monitoring switched on and a baseline (and the other optional pieces)."""
    return optional_pieces_on


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def _deployment(monitored: Synthesized) -> dict:
    """dev's deployment template as far as the model keeping the environment's names goes."""
    return without_other_models(monitored.template("dev", "deployment"), monitored.config("dev"))


def test_monitoring_is_off_until_config_says_the_endpoint_exists(synthesized: Synthesized, environment):
    template = synthesized.template(environment, "deployment")

    assert not environment_config(environment).deployment.monitoring.enabled
    assert resources(template, "AWS::SageMaker::MonitoringSchedule") == {}
    assert resources(template, "AWS::SageMaker::DataQualityJobDefinition") == {}


def test_schedule_checks_the_endpoints_captured_traffic_on_the_configured_frequency(monitored: Synthesized):
    template = _deployment(monitored)
    _, schedule = only(template, "AWS::SageMaker::MonitoringSchedule")
    _, definition = only(template, "AWS::SageMaker::DataQualityJobDefinition")

    assert schedule["MonitoringScheduleName"] == f"{DEV.prefix}-data-quality"
    assert schedule["MonitoringScheduleConfig"]["MonitoringType"] == "DataQuality"
    assert schedule["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"
    assert definition["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == f"{DEV.prefix}-endpoint"
    assert definition["DataQualityAppSpecification"]["ImageUri"] == analyzer_image(DEV.region)


def test_reports_are_encrypted_and_compared_with_the_configured_baseline(monitored: Synthesized):
    _, definition = only(_deployment(monitored), "AWS::SageMaker::DataQualityJobDefinition")
    (output,) = definition["DataQualityJobOutputConfig"]["MonitoringOutputs"]
    baseline = definition["DataQualityBaselineConfig"]

    assert definition["DataQualityJobOutputConfig"]["KmsKeyId"] and definition["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"]
    assert cfn_text(output["S3Output"]["S3Uri"]).endswith(f"/monitoring/{DEV.prefix}-endpoint/")
    assert cfn_text(baseline["ConstraintsResource"]["S3Uri"]).endswith(f"/{MONITORING['baseline_prefix']}constraints.json")
    assert cfn_text(baseline["StatisticsResource"]["S3Uri"]).endswith(f"/{MONITORING['baseline_prefix']}statistics.json")


SCHEDULE_ARN = f"arn:aws:sagemaker:{DEV.region}:{DEV.account}:monitoring-schedule/{DEV.prefix}-data-quality"
VIOLATIONS_RULE = f"{DEV.prefix}-data-quality-violations"


def _violations_rule(monitored: Synthesized) -> tuple[str, dict]:
    """The operations stack's rule that hands the violations to the notify function, with the schedule's ARN filled in."""
    operations = monitored.template("dev", "operations")
    ((logical_id, rule),) = [(i, r["Properties"]) for i, r in resources(operations, "AWS::Events::Rule").items() if r["Properties"].get("Name") == VIOLATIONS_RULE]
    (schedule_id,) = resources(_deployment(monitored), "AWS::SageMaker::MonitoringSchedule")
    (output,) = [
        name
        for name, o in _deployment(monitored)["Outputs"].items()
        if o["Value"] == {"Fn::GetAtt": [schedule_id, "MonitoringScheduleArn"]}
    ]
    return logical_id, {**rule, "EventPattern": resolve(rule["EventPattern"], {output: SCHEDULE_ARN})}


@pytest.mark.parametrize(
    "exit_message, matches",
    [
        ("CompletedWithViolations: Job completed successfully with 3 violations.", True),
        ("Completed: Job completed successfully with no violations.", False),
    ],
)
def test_only_runs_of_this_schedule_that_found_violations_are_announced(monitored: Synthesized, exit_message, matches):
    _, rule = _violations_rule(monitored)
    matcher = EventPattern.load(json.dumps(rule["EventPattern"]))
    reports = f"s3://artifacts/monitoring/{DEV.prefix}-endpoint/"

    assert matcher.matches_event(monitoring_run_ended(SCHEDULE_ARN, exit_message, reports)) is matches
    assert matcher.matches_event(monitoring_run_ended(SCHEDULE_ARN.replace(f"{DEV.prefix}-data-quality", "someone-else"), exit_message, reports)) is False


def test_violations_go_to_the_notify_function_and_raise_an_alarm_that_publishes_nothing_itself(monitored: Synthesized):
    deployment, operations = _deployment(monitored), monitored.template("dev", "operations")
    (alarm,) = [r["Properties"] for r in resources(deployment, "AWS::CloudWatch::Alarm").values() if r["Properties"]["AlarmName"] == f"{DEV.prefix}-endpoint-data-quality"]
    _, rule = _violations_rule(monitored)
    (function,) = resources(operations, "AWS::Lambda::Function")

    assert [target["Arn"] for target in rule["Targets"]] == [{"Fn::GetAtt": [function, "Arn"]}]
    assert rule["EventPattern"]["detail-type"] == [handler.MONITORING_RUN_EVENT]
    # The alarm counts the rule's matches; the rule is in a stack that depends on this one, so by name.
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Events", "TriggeredRules")
    assert alarm["Dimensions"] == [{"Name": "RuleName", "Value": VIOLATIONS_RULE}]
    assert "AlarmActions" not in alarm
    assert [r for r in resources(deployment, "AWS::Events::Rule").values() if r["Properties"].get("Name") == VIOLATIONS_RULE] == []


def test_the_data_quality_alarms_state_changes_are_written_up(monitored: Synthesized):
    operations = monitored.template("dev", "operations")
    (rule,) = [r["Properties"] for i, r in resources(operations, "AWS::Events::Rule").items() if i.startswith("NotifierAlarms")]
    event = alarm_state_change(
        f"arn:aws:cloudwatch:{DEV.region}:{DEV.account}:alarm:{DEV.prefix}-endpoint-data-quality",
        "ALARM",
        "OK",
        metric={"metric": {"dimensions": {"RuleName": VIOLATIONS_RULE}, "name": "TriggeredRules", "namespace": "AWS/Events"}, "period": 3600, "stat": "Sum"},
        description="d",
        threshold=0.0,
        datapoints=[1.0],
    )

    assert EventPattern.load(json.dumps(rule["EventPattern"])).matches_event(event)


def test_monitoring_needs_data_capture():
    with pytest.raises(ValueError, match="monitoring.enabled needs data_capture.enabled"):
        Deployment(data_capture={"enabled": False}, monitoring={"enabled": True})


def test_the_monitor_may_let_sagemaker_encrypt_its_job_volumes_with_the_key(monitored: Synthesized):
    """The monitoring job starts with VolumeKmsKeyId: SageMaker creates a grant on the key as the monitor's role."""
    storage = monitored.template("dev", "storage")
    (policy,) = [p for name, p in resources(storage, "AWS::IAM::ManagedPolicy").items() if name.startswith("DataQualityMonitoringAccess")]
    (grant,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "kms:CreateGrant"]

    assert grant["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": "true"},
        "StringEquals": {"kms:ViaService": f"sagemaker.{monitored.config('dev').region}.amazonaws.com"},
    }
