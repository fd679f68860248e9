"""Deployment: the canary deployer, the per-variant alarms it watches, the notification topic, the rule
that starts the deployer when a model package of this environment is approved, the endpoint's data capture
and monitoring, and the environment's dashboard."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from config.naming import COLOURS, data_quality_alarm_name, deployer_name, endpoint_name, serving_endpoint_name, serving_model_name_prefix, variant_alarm_name
from config.settings import DataQualityMonitoring, Deployment
from mlops_constructs.canary_deployer import CanaryDeployer, CanaryTimings, DataCapture, ServerlessCapacity, VariantScaling
from mlops_constructs.compliance import acknowledge
from mlops_constructs.data_quality_monitor import DataQualityMonitor
from mlops_constructs.dead_letter_alarm import dead_letter_alarm
from mlops_constructs.deployed_endpoint_cleanup import DeployedEndpointCleanup
from mlops_constructs.environment_dashboard import EnvironmentDashboard, dashboard_url
from mlops_constructs.served_model_role import ServedModelRole
from stacks.storage import MonitoringPaths


# Where in the artifacts bucket the endpoint's captured traffic goes: ``<prefix>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/``.
DATA_CAPTURE_PREFIX = "data-capture"
# Where the data-quality monitor writes its reports: ``<prefix>/<endpoint>/``.
MONITORING_PREFIX = "monitoring"


def captured_data_prefix(prefix: str) -> str:
    """The key prefix under which SageMaker writes the environment's endpoint's captured traffic."""
    return f"{DATA_CAPTURE_PREFIX}/{endpoint_name(prefix)}/"


def monitoring_paths(prefix: str, monitoring: DataQualityMonitoring) -> MonitoringPaths:
    """What the data-quality monitor of the environment's endpoint reads and writes in the artifacts bucket."""
    return MonitoringPaths(
        captured_data=captured_data_prefix(prefix), reports=f"{MONITORING_PREFIX}/{endpoint_name(prefix)}/", baseline=monitoring.baseline_prefix
    )


class DeploymentStack(cdk.Stack):
    """Endpoint ``<prefix>-endpoint`` (instances) or ``<prefix>-serverless`` (serverless) with variants
    ``blue``/``green``, deployed by ``<prefix>-canary-deployer``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        deployment: Deployment,
        model_package_group_name: str,
        key: kms.IKey,
        artifacts_bucket: s3.IBucket,
        served_model_access_policy: iam.IManagedPolicy,
        release_records_policy: iam.IManagedPolicy,
        image_repository_arns: list[str],
        subnet_ids: list[str],
        security_group_id: str,
        delete_endpoint_with_stack: bool,
        pipeline_names: list[str],
        monitoring_access_policy: iam.IManagedPolicy | None = None,
        subnets_for_jobs: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        serving = deployment.serving
        self.endpoint_name = serving_endpoint_name(prefix, serving.mode)
        # The endpoint of the other mode, which the deployer retires once a release serves on this one.
        other_mode = "instances" if serving.mode == "serverless" else "serverless"
        other_endpoint = serving_endpoint_name(prefix, other_mode)
        model_names = serving_model_name_prefix(prefix, serving.mode)
        serverless = (
            ServerlessCapacity(serving.memory_size_mb, serving.max_concurrency, serving.provisioned_concurrency) if serving.mode == "serverless" else None
        )

        # The operations stack's notify function writes every message on it, and owns its subscriptions.
        self.topic = sns.Topic(self, "Notifications", display_name=f"{prefix} model deployments", master_key=key, enforce_ssl=True)

        # Every alarm of the environment by its name, which the operations stack matches their state changes on.
        self.alarm_names: list[str] = []
        self.alarms = {colour: self._variant_alarms(prefix, colour, deployment) for colour in COLOURS}
        capture = deployment.data_capture
        self.data_capture = (
            DataCapture(destination_s3_uri=f"s3://{artifacts_bucket.bucket_name}/{DATA_CAPTURE_PREFIX}", sampling_percentage=capture.sampling_percentage)
            if capture.enabled
            else None
        )
        model_role = ServedModelRole(
            self,
            "ServedModelRole",
            description=f"{prefix}: models served by {self.endpoint_name}",
            # The other mode's endpoint keeps serving, and logging, until a release here retires it.
            endpoint_names=[self.endpoint_name, other_endpoint],
            managed_policies=[served_model_access_policy],
            image_repository_arns=image_repository_arns,
            subnet_ids=subnet_ids,
            security_group_id=security_group_id,
        ).role

        self.deployer_name = deployer_name(prefix)
        self.deployer = CanaryDeployer(
            self,
            "CanaryDeployer",
            state_machine_name=self.deployer_name,
            endpoint_name=self.endpoint_name,
            model_name_prefix=model_names,
            model_package_group_name=model_package_group_name,
            model_role=model_role,
            instance_type=deployment.instance_type,
            initial_instance_count=deployment.initial_instance_count,
            canary_weight=deployment.canary_weight,
            strategy=deployment.strategy,
            min_canary_invocations=deployment.min_canary_invocations,
            manual_approval=cdk.Duration.minutes(deployment.approval_timeout_minutes) if deployment.manual_approval else None,
            guardrails_traffic_routing=deployment.guardrails_traffic_routing,
            timings=CanaryTimings(
                poll_seconds=deployment.poll_seconds,
                max_update_polls=deployment.max_update_polls,
                bake_checks=deployment.bake_checks,
                alarm_poll_seconds=deployment.alarm_poll_seconds,
            ),
            scaling=VariantScaling(
                min_capacity=deployment.autoscaling.min_capacity,
                max_capacity=deployment.autoscaling.max_capacity,
                invocations_per_instance=deployment.autoscaling.invocations_per_instance,
            ),
            alarm_names={colour: [alarm.alarm_name for alarm in alarms] for colour, alarms in self.alarms.items()},
            key=key,
            release_records_bucket_name=artifacts_bucket.bucket_name,
            release_records_policy=release_records_policy,
            # Serverless endpoints refuse models with a VPC configuration.
            subnet_ids=None if serverless else subnet_ids,
            security_group_ids=[security_group_id],
            data_capture=self.data_capture,
            serverless=serverless,
            retired_endpoint_name=other_endpoint,
        )
        self.approver_policy = self.deployer.approver_policy(self, f"{prefix}-deployment-approver", deployment.approver_role_names)
        self.monitor = self._data_quality_monitor(prefix, deployment, artifacts_bucket, key, monitoring_access_policy, subnet_ids, security_group_id, subnets_for_jobs)
        if self.monitor:
            self.alarm_names.append(self.monitor.alarm_name)
        self.dashboard = EnvironmentDashboard(
            self,
            "Dashboard",
            dashboard_name=prefix,
            endpoint_name=self.endpoint_name,
            variants=COLOURS,
            pipeline_names=pipeline_names,
            deployer=self.deployer.state_machine,
            serverless=serverless is not None,
        ).dashboard

        cdk.CfnOutput(self, "EndpointName", value=self.endpoint_name, description="Call the served model here (sagemaker-runtime invoke-endpoint)")
        cdk.CfnOutput(self, "DeployerStateMachineArn", value=self.deployer.state_machine.state_machine_arn, description="The canary deployer: one execution per release")
        cdk.CfnOutput(self, "DashboardUrl", value=dashboard_url(self, prefix), description="Endpoint, pipeline and deployment metrics")

        # The deployer creates the endpoint and what it uses outside CloudFormation; without this, a
        # destroyed environment would keep paying for the endpoint's instances.
        if delete_endpoint_with_stack:
            DeployedEndpointCleanup(
                self,
                "EndpointCleanup",
                endpoint_name=self.endpoint_name,
                model_name_prefix=model_names,
                state_machine=self.deployer.state_machine,
                retired_endpoint_name=other_endpoint,
                retired_model_name_prefix=serving_model_name_prefix(prefix, other_mode),
            )

        self.approval_pattern = events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=["SageMaker Model Package State Change"],
            detail={"ModelPackageGroupName": [model_package_group_name], "ModelApprovalStatus": ["Approved"]},
        )
        dead_letters = sqs.Queue(self, "ApprovalDeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=cdk.Duration.days(14))
        acknowledge(dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the approval rule.")
        self.alarm_names.append(f"{prefix}-approval-dead-letters")
        dead_letter_alarm(
            self, "ApprovalDeadLettersAlarm", queue=dead_letters, alarm_name=self.alarm_names[-1], what_failed=f"the rule that starts {self.deployer_name} on approvals"
        )
        events.Rule(
            self,
            "DeployOnApproval",
            description=f"Start the canary deployer when a model package of {model_package_group_name} is approved",
            event_pattern=self.approval_pattern,
            targets=[
                targets.SfnStateMachine(
                    self.deployer.state_machine,
                    input=events.RuleTargetInput.from_object({"ModelPackageArn": events.EventField.from_path("$.detail.ModelPackageArn")}),
                    dead_letter_queue=dead_letters,
                    retry_attempts=8,
                    max_event_age=cdk.Duration.hours(2),
                )
            ],
        )

    def _data_quality_monitor(
        self,
        prefix: str,
        deployment: Deployment,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        access: iam.IManagedPolicy | None,
        subnet_ids: list[str],
        security_group_id: str,
        in_vpc: bool,
    ) -> DataQualityMonitor | None:
        monitoring = deployment.monitoring
        if not monitoring.enabled:
            return None
        if access is None:
            raise ValueError("deployment.monitoring.enabled needs the storage stack's policy for the monitor's data")
        paths = monitoring_paths(prefix, monitoring)
        bucket = f"s3://{artifacts_bucket.bucket_name}/"
        return DataQualityMonitor(
            self,
            "DataQuality",
            name=f"{prefix}-data-quality",
            endpoint_name=self.endpoint_name,
            reports_uri=f"{bucket}{paths.reports}",
            baseline_uri=f"{bucket}{paths.baseline}" if paths.baseline else None,
            frequency=monitoring.frequency,
            instance_type=monitoring.instance_type,
            max_runtime_seconds=monitoring.max_runtime_minutes * 60,
            data_access=access,
            key_arn=key.key_arn,
            alarm_name=data_quality_alarm_name(prefix),
            subnet_ids=subnet_ids if in_vpc else None,
            security_group_id=security_group_id if in_vpc else None,
        )

    def _variant_alarms(self, prefix: str, variant: str, deployment: Deployment) -> list[cloudwatch.Alarm]:
        settings = deployment.alarms
        period = cdk.Duration.seconds(settings.period_seconds)
        dimensions = {"EndpointName": self.endpoint_name, "VariantName": variant}
        specs = [
            ("5xx", "Invocation5XXErrors", "Sum", settings.errors_5xx, "model errors (HTTP 5XX)", f"{settings.errors_5xx}"),
            ("4xx", "Invocation4XXErrors", "Sum", settings.errors_4xx, "rejected requests (HTTP 4XX)", f"{settings.errors_4xx}"),
            # ModelLatency is reported in microseconds.
            ("latency", "ModelLatency", "Average", settings.model_latency_ms * 1000, "average model latency", f"{settings.model_latency_ms} ms"),
        ]
        alarms = []
        for suffix, metric_name, statistic, threshold, what, shown in specs:
            self.alarm_names.append(variant_alarm_name(prefix, variant, suffix, deployment.serving.mode))
            alarm = cloudwatch.Alarm(
                self,
                f"{variant}-{suffix}",
                alarm_name=self.alarm_names[-1],
                alarm_description=f"{what} of variant {variant} of {self.endpoint_name} above {shown} in a {settings.period_seconds} s period",
                metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name=metric_name, dimensions_map=dimensions, statistic=statistic, period=period),
                threshold=threshold,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=settings.evaluation_periods,
                # No traffic is not a failure: a variant without requests reports no data.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarms.append(alarm)
        return alarms
