"""Deployment, per model: the canary deployer, the per-variant alarms it watches, the rule that starts the
deployer when a version of the model's package group is approved, the endpoint's data capture and
monitoring; for the environment: the notification topic and the dashboard, with rows for each model."""

from __future__ import annotations

from dataclasses import dataclass, field

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

from config.naming import (
    COLOURS,
    camel_case,
    data_quality_alarm_name,
    deployer_name,
    endpoint_name,
    pipeline_name,
    promotion_bus_name,
    serving_endpoint_name,
    serving_model_name_prefix,
    variant_alarm_name,
)
from config.settings import DataQualityMonitoring, Deployment, ModelUnit
from mlops_constructs.canary_deployer import CanaryDeployer, CanaryTimings, DataCapture, ServerlessCapacity, VariantScaling
from mlops_constructs.compliance import acknowledge
from mlops_constructs.data_quality_monitor import DataQualityMonitor
from mlops_constructs.dead_letter_alarm import dead_letter_alarm
from mlops_constructs.deployed_endpoint_cleanup import DeployedEndpointCleanup
from mlops_constructs.environment_dashboard import EnvironmentDashboard, dashboard_url
from mlops_constructs.model_promotion import forward_releases
from mlops_constructs.served_model_role import ServedModelRole
from stacks.model_build import PromotionTarget
from stacks.storage import MonitoringPaths


# Where in the artifacts bucket the endpoint's captured traffic goes: ``<prefix>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/``.
DATA_CAPTURE_PREFIX = "data-capture"
# Where the data-quality monitor writes its reports: ``<prefix>/<endpoint>/``.
MONITORING_PREFIX = "monitoring"


def captured_data_prefix(prefix: str) -> str:
    """The key prefix under which SageMaker writes the captured traffic of the endpoint of the model whose stem is `prefix`."""
    return f"{DATA_CAPTURE_PREFIX}/{endpoint_name(prefix)}/"


def monitoring_paths(prefix: str, monitoring: DataQualityMonitoring) -> MonitoringPaths:
    """What the data-quality monitor of a model's endpoint (of stem `prefix`) reads and writes in the artifacts bucket."""
    return MonitoringPaths(
        captured_data=captured_data_prefix(prefix), reports=f"{MONITORING_PREFIX}/{endpoint_name(prefix)}/", baseline=monitoring.baseline_prefix
    )


@dataclass(frozen=True)
class SharedServing:
    """What every model's serving uses of the environment."""

    key: kms.IKey
    artifacts_bucket: s3.IBucket
    served_model_access_policies: dict[str, iam.IManagedPolicy]
    image_repository_arns: list[str]
    subnet_ids: list[str]
    security_group_id: str
    delete_endpoint_with_stack: bool
    monitoring_access_policy: iam.IManagedPolicy | None
    subnets_for_jobs: bool
    release_records_policy: iam.IManagedPolicy


@dataclass
class ModelServing:
    """What the deployment stack made for one model: its endpoint, deployer, alarms and approval rule."""

    model: ModelUnit
    model_package_group_name: str
    endpoint_name: str
    deployer_name: str
    deployer: CanaryDeployer
    approver_policy: iam.ManagedPolicy
    approval_pattern: events.EventPattern
    # Every alarm of the model by its name, which the operations stack matches their state changes on.
    alarm_names: list[str] = field(default_factory=list)
    monitor: DataQualityMonitor | None = None
    serverless: bool = False


class DeploymentStack(cdk.Stack):
    """Per model: endpoint ``<stem>-endpoint`` (instances) or ``<stem>-serverless`` (serverless) with variants ``blue``/``green``, deployed by ``<stem>-canary-deployer``
    when a version of its own model package group is approved. The model that keeps the environment's names
    has its resources at the stack's root under the construct IDs a one-model environment had; every other
    model's sit under a construct named after it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        models: dict[str, ModelUnit],
        model_package_group_names: dict[str, str],
        key: kms.IKey,
        artifacts_bucket: s3.IBucket,
        served_model_access_policies: dict[str, iam.IManagedPolicy],
        release_records_policy: iam.IManagedPolicy,
        image_repository_arns: list[str],
        subnet_ids: list[str],
        security_group_id: str,
        delete_endpoint_with_stack: bool,
        monitoring_access_policy: iam.IManagedPolicy | None = None,
        subnets_for_jobs: bool = False,
        forward_releases_to: dict[str, list[PromotionTarget]] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The operations stack's notify function writes every message on it, and owns its subscriptions.
        self.topic = sns.Topic(self, "Notifications", display_name=f"{prefix} model deployments", master_key=key, enforce_ssl=True)
        self.served: dict[str, ModelServing] = {}
        self.dashboard: cloudwatch.Dashboard | None = None
        dashboard: EnvironmentDashboard | None = None
        shared = SharedServing(
            key=key,
            artifacts_bucket=artifacts_bucket,
            served_model_access_policies=served_model_access_policies,
            image_repository_arns=image_repository_arns,
            subnet_ids=subnet_ids,
            security_group_id=security_group_id,
            delete_endpoint_with_stack=delete_endpoint_with_stack,
            monitoring_access_policy=monitoring_access_policy,
            subnets_for_jobs=subnets_for_jobs,
            release_records_policy=release_records_policy,
        )
        for model in models.values():
            where = self if model.environment_names else Construct(self, f"Model-{model.name}")
            served = self._serve(where, model, model_package_group_names[model.name], shared)
            targets = (forward_releases_to or {}).get(model.name)
            if targets:
                # Automatic promotion: the environments that take this model get each version it releases.
                buses = [f"arn:{self.partition}:events:{t.region}:{t.account}:event-bus/{promotion_bus_name(t.prefix)}" for t in targets]
                forward_releases(where, "ForwardReleases", announcements=served.deployer.event_bus, deployer_name=served.deployer_name, target_bus_arns=buses)
            self.served[model.name] = served
            pipeline_names = [pipeline_name(prefix, folder) for folder in model.deployed_pipelines]
            if dashboard is None:
                dashboard = EnvironmentDashboard(
                    self,
                    "Dashboard",
                    dashboard_name=prefix,
                    endpoint_name=served.endpoint_name,
                    variants=COLOURS,
                    pipeline_names=pipeline_names,
                    deployer=served.deployer.state_machine,
                    serverless=served.serverless,
                )
                self.dashboard = dashboard.dashboard
                cdk.CfnOutput(self, "DashboardUrl", value=dashboard_url(self, prefix), description="Endpoint, pipeline and deployment metrics")
            else:
                dashboard.add_model_rows(
                    endpoint_name=served.endpoint_name, pipeline_names=pipeline_names, deployer=served.deployer.state_machine, serverless=served.serverless
                )

    @property
    def alarm_names(self) -> list[str]:
        """Every alarm of the environment's models by its name."""
        return [name for served in self.served.values() for name in served.alarm_names]

    def _serve(
        self, scope: Construct, model: ModelUnit, model_package_group_name: str, shared: SharedServing
    ) -> ModelServing:
        """One model's endpoint, deployer, alarms, data-quality monitor and the rule that starts its deployer."""
        stem, deployment = model.stem, model.deployment
        key, artifacts_bucket, subnet_ids, security_group_id = shared.key, shared.artifacts_bucket, shared.subnet_ids, shared.security_group_id
        serving = deployment.serving
        endpoint = serving_endpoint_name(stem, serving.mode)
        # The endpoint of the other mode, which the deployer retires once a release serves on this one.
        other_mode = "instances" if serving.mode == "serverless" else "serverless"
        other_endpoint = serving_endpoint_name(stem, other_mode)
        model_names = serving_model_name_prefix(stem, serving.mode)
        serverless = (
            ServerlessCapacity(serving.memory_size_mb, serving.max_concurrency, serving.provisioned_concurrency) if serving.mode == "serverless" else None
        )
        alarm_names: list[str] = []
        alarms = {colour: self._variant_alarms(scope, stem, endpoint, colour, deployment, alarm_names) for colour in COLOURS}
        capture = deployment.data_capture
        data_capture = (
            DataCapture(destination_s3_uri=f"s3://{artifacts_bucket.bucket_name}/{DATA_CAPTURE_PREFIX}", sampling_percentage=capture.sampling_percentage)
            if capture.enabled
            else None
        )
        model_role = ServedModelRole(
            scope,
            "ServedModelRole",
            description=f"{stem}: models served by {endpoint}",
            # The other mode's endpoint keeps serving, and logging, until a release here retires it.
            endpoint_names=[endpoint, other_endpoint],
            managed_policies=[shared.served_model_access_policies[model.name]],
            image_repository_arns=shared.image_repository_arns,
            subnet_ids=subnet_ids,
            security_group_id=security_group_id,
        ).role

        state_machine_name = deployer_name(stem)
        deployer = CanaryDeployer(
            scope,
            "CanaryDeployer",
            state_machine_name=state_machine_name,
            endpoint_name=endpoint,
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
            alarm_names={colour: [alarm.alarm_name for alarm in colour_alarms] for colour, colour_alarms in alarms.items()},
            key=key,
            release_records_bucket_name=artifacts_bucket.bucket_name,
            release_records_policy=shared.release_records_policy,
            # Serverless endpoints refuse models with a VPC configuration.
            subnet_ids=None if serverless else subnet_ids,
            security_group_ids=[security_group_id],
            data_capture=data_capture,
            serverless=serverless,
            retired_endpoint_name=other_endpoint,
        )
        approver_policy = deployer.approver_policy(scope, f"{stem}-deployment-approver", deployment.approver_role_names)
        monitor = self._data_quality_monitor(
            scope, stem, endpoint, deployment, artifacts_bucket, key, shared.monitoring_access_policy, subnet_ids, security_group_id, shared.subnets_for_jobs
        )
        if monitor:
            alarm_names.append(monitor.alarm_name)

        suffix = "" if model.environment_names else camel_case(model.name)
        about = "" if model.environment_names else f" of model {model.name}"
        cdk.CfnOutput(self, f"{suffix}EndpointName", value=endpoint, description=f"Call the served model{about} here (sagemaker-runtime invoke-endpoint)")
        cdk.CfnOutput(
            self,
            f"{suffix}DeployerStateMachineArn",
            value=deployer.state_machine.state_machine_arn,
            description=f"The canary deployer{about}: one execution per release",
        )

        # The deployer creates the endpoint and what it uses outside CloudFormation; without this, a
        # destroyed environment would keep paying for the endpoint's instances.
        if shared.delete_endpoint_with_stack:
            DeployedEndpointCleanup(
                scope,
                "EndpointCleanup",
                endpoint_name=endpoint,
                model_name_prefix=model_names,
                state_machine=deployer.state_machine,
                retired_endpoint_name=other_endpoint,
                retired_model_name_prefix=serving_model_name_prefix(stem, other_mode),
            )

        approval_pattern = events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=["SageMaker Model Package State Change"],
            detail={"ModelPackageGroupName": [model_package_group_name], "ModelApprovalStatus": ["Approved"]},
        )
        dead_letters = sqs.Queue(scope, "ApprovalDeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=cdk.Duration.days(14))
        acknowledge(dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the approval rule.")
        alarm_names.append(f"{stem}-approval-dead-letters")
        dead_letter_alarm(
            scope, "ApprovalDeadLettersAlarm", queue=dead_letters, alarm_name=alarm_names[-1], what_failed=f"the rule that starts {state_machine_name} on approvals"
        )
        events.Rule(
            scope,
            "DeployOnApproval",
            description=f"Start the canary deployer when a model package of {model_package_group_name} is approved",
            event_pattern=approval_pattern,
            targets=[
                targets.SfnStateMachine(
                    deployer.state_machine,
                    input=events.RuleTargetInput.from_object({"ModelPackageArn": events.EventField.from_path("$.detail.ModelPackageArn")}),
                    dead_letter_queue=dead_letters,
                    retry_attempts=8,
                    max_event_age=cdk.Duration.hours(2),
                )
            ],
        )
        return ModelServing(
            model=model,
            model_package_group_name=model_package_group_name,
            endpoint_name=endpoint,
            deployer_name=state_machine_name,
            deployer=deployer,
            approver_policy=approver_policy,
            approval_pattern=approval_pattern,
            alarm_names=alarm_names,
            monitor=monitor,
            serverless=serverless is not None,
        )

    def _data_quality_monitor(
        self,
        scope: Construct,
        stem: str,
        endpoint: str,
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
        paths = monitoring_paths(stem, monitoring)
        bucket = f"s3://{artifacts_bucket.bucket_name}/"
        return DataQualityMonitor(
            scope,
            "DataQuality",
            name=f"{stem}-data-quality",
            endpoint_name=endpoint,
            reports_uri=f"{bucket}{paths.reports}",
            baseline_uri=f"{bucket}{paths.baseline}" if paths.baseline else None,
            frequency=monitoring.frequency,
            instance_type=monitoring.instance_type,
            max_runtime_seconds=monitoring.max_runtime_minutes * 60,
            data_access=access,
            key_arn=key.key_arn,
            alarm_name=data_quality_alarm_name(stem),
            subnet_ids=subnet_ids if in_vpc else None,
            security_group_id=security_group_id if in_vpc else None,
        )

    def _variant_alarms(
        self, scope: Construct, stem: str, endpoint: str, variant: str, deployment: Deployment, alarm_names: list[str]
    ) -> list[cloudwatch.Alarm]:
        settings = deployment.alarms
        period = cdk.Duration.seconds(settings.period_seconds)
        dimensions = {"EndpointName": endpoint, "VariantName": variant}
        specs = [
            ("5xx", "Invocation5XXErrors", "Sum", settings.errors_5xx, "model errors (HTTP 5XX)", f"{settings.errors_5xx}"),
            ("4xx", "Invocation4XXErrors", "Sum", settings.errors_4xx, "rejected requests (HTTP 4XX)", f"{settings.errors_4xx}"),
            # ModelLatency is reported in microseconds.
            ("latency", "ModelLatency", "Average", settings.model_latency_ms * 1000, "average model latency", f"{settings.model_latency_ms} ms"),
        ]
        alarms = []
        for suffix, metric_name, statistic, threshold, what, shown in specs:
            alarm_names.append(variant_alarm_name(stem, variant, suffix, deployment.serving.mode))
            alarm = cloudwatch.Alarm(
                scope,
                f"{variant}-{suffix}",
                alarm_name=alarm_names[-1],
                alarm_description=f"{what} of variant {variant} of {endpoint} above {shown} in a {settings.period_seconds} s period",
                metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name=metric_name, dimensions_map=dimensions, statistic=statistic, period=period),
                threshold=threshold,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=settings.evaluation_periods,
                # No traffic is not a failure: a variant without requests reports no data.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarms.append(alarm)
        return alarms
