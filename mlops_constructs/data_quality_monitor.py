"""A Model Monitor data-quality schedule on an endpoint, whose violations raise an alarm.

SageMaker refuses a monitoring schedule for an endpoint that does not exist (or captures no data), so a
stack can only hold this once the endpoint is there; the caller decides when that is.
"""

from __future__ import annotations

import json
from importlib import metadata

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources
from mlops_constructs.sagemaker_execution_role import attach_to_subnets, ecr_login, image_pull

# Model Monitor's own schedules: at the top of every hour, or once a day at midnight UTC.
SCHEDULES = {"hourly": "cron(0 * ? * * *)", "daily": "cron(0 0 ? * * *)"}
# What a monitoring job that found violations reports as its exit message.
VIOLATIONS = "CompletedWithViolations"


def analyzer_image(region: str) -> str:
    """Model Monitor's analyzer image in `region`, from the registry table the SageMaker SDK ships (read as a
    file, so synth neither imports the SDK nor calls AWS)."""
    table = json.loads(metadata.distribution("sagemaker-core").locate_file("sagemaker/core/image_uri_config/model-monitor.json").read_text())
    version = table["versions"][""]
    return f"{version['registries'][region]}.dkr.ecr.{region}.amazonaws.com/{version['repository']}"


class DataQualityMonitor(Construct):
    """Schedule `name` checks the traffic `endpoint_name` captured against the baseline (constraints.json and
    statistics.json under `baseline_uri`, if given) every hour or day, writing reports under `reports_uri`
    encrypted with `key_arn`. A run that finds violations matches `violations_pattern` and puts alarm
    `alarm_name` into ALARM.

    The alarm counts the matches of the rule named `violations_rule_name`, which whoever tells people about
    the violations creates with `violations_pattern` (the operations stack's notify function does): the
    rule's target lives in a stack that depends on this one, so the alarm refers to the rule by name."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        endpoint_name: str,
        reports_uri: str,
        baseline_uri: str | None,
        frequency: str,
        instance_type: str,
        max_runtime_seconds: int,
        data_access: iam.IManagedPolicy,
        key_arn: str,
        alarm_name: str,
        subnet_ids: list[str] | None = None,
        security_group_id: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        image = analyzer_image(stack.region)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Model Monitor schedule {name}: reads {endpoint_name}'s captured data, writes its reports",
            managed_policies=[data_access],
        )
        account, repository = image.split(".", 1)[0], image.rsplit("/", 1)[1]
        self.role.add_to_policy(image_pull("PullTheAnalyzerImage", [f"arn:{stack.partition}:ecr:{stack.region}:{account}:repository/{repository}"]))
        self.role.add_to_policy(ecr_login())
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishDataQualityMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "aws/sagemaker/Endpoints/*"}},
            )
        )
        job_logs = stack.format_arn(
            service="logs", resource="log-group", resource_name="/aws/sagemaker/ProcessingJobs*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )
        self.role.add_to_policy(
            iam.PolicyStatement(sid="JobLogs", actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], resources=[job_logs])
        )
        acknowledge_wildcard_resources(self.role, [job_logs], "Model Monitor's jobs log to streams named per run.")
        network = None
        if subnet_ids and security_group_id:
            interfaces = attach_to_subnets(self.role, workload="MonitoringJobs", subnet_ids=subnet_ids, security_group_id=security_group_id)
            acknowledge_wildcard_resources(self.role, [interfaces], "SageMaker creates the job's network interfaces at run time; subnets and security group are pinned.")
            network = {"VpcConfig": {"Subnets": subnet_ids, "SecurityGroupIds": [security_group_id]}}
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken, EC2 Describe actions and cloudwatch:PutMetricData (namespace-conditioned) have no resource-level permissions.",
        )

        definition = sagemaker.CfnDataQualityJobDefinition(
            self,
            "JobDefinition",
            role_arn=self.role.role_arn,
            data_quality_app_specification={"imageUri": image, "environment": {"publish_cloudwatch_metrics": "Enabled"}},
            data_quality_job_input={"endpointInput": {"endpointName": endpoint_name, "localPath": "/opt/ml/processing/input/endpoint"}},
            data_quality_job_output_config={
                "kmsKeyId": key_arn,
                "monitoringOutputs": [{"s3Output": {"s3Uri": reports_uri, "localPath": "/opt/ml/processing/output", "s3UploadMode": "EndOfJob"}}],
            },
            job_resources={"clusterConfig": {"instanceCount": 1, "instanceType": instance_type, "volumeSizeInGb": 20, "volumeKmsKeyId": key_arn}},
            data_quality_baseline_config=(
                {"constraintsResource": {"s3Uri": f"{baseline_uri}constraints.json"}, "statisticsResource": {"s3Uri": f"{baseline_uri}statistics.json"}}
                if baseline_uri
                else None
            ),
            stopping_condition={"maxRuntimeInSeconds": max_runtime_seconds},
            network_config=network,
        )
        self.schedule = sagemaker.CfnMonitoringSchedule(
            self,
            "Schedule",
            monitoring_schedule_name=name,
            endpoint_name=endpoint_name,
            monitoring_schedule_config={
                # The definition's Ref is its ARN, ...:data-quality-job-definition/<name>; the schedule wants the name.
                "monitoringJobDefinitionName": cdk.Fn.select(1, cdk.Fn.split("/", definition.attr_job_definition_arn)),
                "monitoringType": "DataQuality",
                "scheduleConfig": {"scheduleExpression": SCHEDULES[frequency]},
            },
        )

        # Each run is a processing job that names its schedule; one that found violations says so in its exit message.
        self.violations_pattern = events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=["SageMaker Processing Job State Change"],
            detail={
                "MonitoringScheduleArn": [self.schedule.attr_monitoring_schedule_arn],
                "ProcessingJobStatus": ["Completed"],
                "ExitMessage": [{"prefix": VIOLATIONS}],
            },
        )
        self.violations_rule_name = f"{name}-violations"
        self.alarm_name = alarm_name
        self.alarm = cloudwatch.Alarm(
            self,
            "ViolationsAlarm",
            alarm_name=alarm_name,
            alarm_description=f"data-quality violations that Model Monitor finds in {endpoint_name}'s captured traffic",
            metric=cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="TriggeredRules",
                dimensions_map={"RuleName": self.violations_rule_name},
                statistic="Sum",
                period=cdk.Duration.hours(1),
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
