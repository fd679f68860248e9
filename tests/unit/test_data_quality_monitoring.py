"""The optional data-quality monitoring schedule: off by default, and what it holds when config switches it on."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from moto.events.models import EventPattern

from config import ENVIRONMENTS, load_environment
from config.settings import Deployment
from mlops_constructs.data_quality_monitor import analyzer_image
from tests.synth import CONFIG_DIR, Synthesized, synthesize
from tests.templates import cfn_text, only, resources

MONITORING = {"enabled": True, "frequency": "hourly", "baseline_prefix": "baselines/mlops-dev-endpoint/"}


@pytest.fixture(scope="module")
def monitored(tmp_path_factory) -> Synthesized:
    """dev, synthesized (cdk-nag included) with monitoring switched on and a baseline."""
    workdir = tmp_path_factory.mktemp("monitored")
    shutil.copytree(CONFIG_DIR, workdir / "config")
    dev = yaml.safe_load((workdir / "config" / "dev.yaml").read_text())
    dev["deployment"]["monitoring"] = MONITORING
    (workdir / "config" / "dev.yaml").write_text(yaml.safe_dump(dev))
    return synthesize(workdir / "cdk.out", config_dir=workdir / "config", environments=("dev",))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_monitoring_is_off_until_config_says_the_endpoint_exists(synthesized: Synthesized, environment):
    template = synthesized.template(environment, "deployment")

    assert not load_environment(CONFIG_DIR, environment).deployment.monitoring.enabled
    assert resources(template, "AWS::SageMaker::MonitoringSchedule") == {}
    assert resources(template, "AWS::SageMaker::DataQualityJobDefinition") == {}


def test_schedule_checks_the_endpoints_captured_traffic_on_the_configured_frequency(monitored: Synthesized):
    template = monitored.template("dev", "deployment")
    _, schedule = only(template, "AWS::SageMaker::MonitoringSchedule")
    _, definition = only(template, "AWS::SageMaker::DataQualityJobDefinition")

    assert schedule["MonitoringScheduleName"] == "mlops-dev-data-quality"
    assert schedule["MonitoringScheduleConfig"]["MonitoringType"] == "DataQuality"
    assert schedule["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"
    assert definition["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "mlops-dev-endpoint"
    assert definition["DataQualityAppSpecification"]["ImageUri"] == analyzer_image("eu-west-1")


def test_reports_are_encrypted_and_compared_with_the_configured_baseline(monitored: Synthesized):
    _, definition = only(monitored.template("dev", "deployment"), "AWS::SageMaker::DataQualityJobDefinition")
    (output,) = definition["DataQualityJobOutputConfig"]["MonitoringOutputs"]
    baseline = definition["DataQualityBaselineConfig"]

    assert definition["DataQualityJobOutputConfig"]["KmsKeyId"] and definition["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"]
    assert cfn_text(output["S3Output"]["S3Uri"]).endswith("/monitoring/mlops-dev-endpoint/")
    assert cfn_text(baseline["ConstraintsResource"]["S3Uri"]).endswith("/baselines/mlops-dev-endpoint/constraints.json")
    assert cfn_text(baseline["StatisticsResource"]["S3Uri"]).endswith("/baselines/mlops-dev-endpoint/statistics.json")


def _monitoring_job_event(schedule_arn: str, exit_message: str) -> dict:
    """The event SageMaker sends when a monitoring run (a processing job of the schedule) ends."""
    return {
        "version": "0",
        "id": "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b",
        "detail-type": "SageMaker Processing Job State Change",
        "source": "aws.sagemaker",
        "account": "111111111111",
        "time": "2026-11-25T01:05:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:sagemaker:eu-west-1:111111111111:processing-job/model-monitoring-202611250100-0a1b2c3d"],
        "detail": {
            "ProcessingJobName": "model-monitoring-202611250100-0a1b2c3d",
            "ProcessingJobStatus": "Completed",
            "ExitMessage": exit_message,
            "MonitoringScheduleArn": schedule_arn,
        },
    }


def _violations_rule(monitored: Synthesized) -> dict:
    rules = [r["Properties"] for r in resources(monitored.template("dev", "deployment"), "AWS::Events::Rule").values() if r["Properties"].get("Name") == "mlops-dev-data-quality-violations"]
    (rule,) = rules
    return rule


@pytest.mark.parametrize(
    "exit_message, matches",
    [
        ("CompletedWithViolations: Job completed successfully with 3 violations.", True),
        ("Completed: Job completed successfully with no violations.", False),
    ],
)
def test_only_runs_of_this_schedule_that_found_violations_are_announced(monitored: Synthesized, exit_message, matches):
    pattern = _violations_rule(monitored)["EventPattern"]
    (schedule_id,) = resources(monitored.template("dev", "deployment"), "AWS::SageMaker::MonitoringSchedule")
    schedule_arn = "arn:aws:sagemaker:eu-west-1:111111111111:monitoring-schedule/mlops-dev-data-quality"
    # The schedule's ARN, as CloudFormation fills it in.
    assert pattern["detail"]["MonitoringScheduleArn"] == [{"Fn::GetAtt": [schedule_id, "MonitoringScheduleArn"]}]
    pattern["detail"]["MonitoringScheduleArn"] = [schedule_arn]
    matcher = EventPattern.load(json.dumps(pattern))

    assert matcher.matches_event(_monitoring_job_event(schedule_arn, exit_message)) is matches
    assert matcher.matches_event(_monitoring_job_event(schedule_arn.replace("mlops-dev-data-quality", "someone-else"), exit_message)) is False


def test_violations_raise_an_alarm_on_the_environments_topic(monitored: Synthesized):
    template = monitored.template("dev", "deployment")
    (alarm,) = [r["Properties"] for r in resources(template, "AWS::CloudWatch::Alarm").values() if r["Properties"]["AlarmName"] == "mlops-dev-endpoint-data-quality"]
    (topic,) = resources(template, "AWS::SNS::Topic")
    (rule,) = [name for name, r in resources(template, "AWS::Events::Rule").items() if r["Properties"].get("Name") == "mlops-dev-data-quality-violations"]

    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Events", "TriggeredRules")
    assert alarm["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": rule}}]
    assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_monitoring_needs_data_capture():
    with pytest.raises(ValueError, match="monitoring.enabled needs data_capture.enabled"):
        Deployment(data_capture={"enabled": False}, monitoring={"enabled": True})
