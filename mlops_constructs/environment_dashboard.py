"""A CloudWatch dashboard of one environment: per model, its endpoint per variant, its training pipelines
and its deployer, so the state of the environment is on one page."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

ENDPOINT_NAMESPACE = "AWS/SageMaker"
# The instances' own metrics (CPU, memory, disk), one data point per instance and minute.
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
PIPELINE_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"
PIPELINE_OUTCOMES = ("ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed", "ExecutionStopped")


# The console's host in each partition; a stack whose region is not known at synth gets the commercial one.
_CONSOLE_HOSTS = {"aws": "{region}.console.aws.amazon.com", "aws-cn": "{region}.console.amazonaws.cn", "aws-us-gov": "console.amazonaws-us-gov.com"}


def dashboard_url(stack: cdk.Stack, dashboard_name: str) -> str:
    """The console address of dashboard `dashboard_name` in `stack`'s region."""
    partition = "aws" if cdk.Token.is_unresolved(stack.partition) else stack.partition
    host = _CONSOLE_HOSTS.get(partition, _CONSOLE_HOSTS["aws"]).format(region=stack.region)
    return f"https://{host}/cloudwatch/home?region={stack.region}#dashboards/dashboard/{dashboard_name}"


class EnvironmentDashboard(Construct):
    """Dashboard `dashboard_name`: invocations, 4XX/5XX errors, model latency and instances (or, for a
    `serverless` endpoint, cold starts) of each of the endpoint's `variants`; started, succeeded, failed and stopped runs of each of `pipeline_names`; and the
    `deployer`'s executions by outcome."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        endpoint_name: str,
        variants: tuple[str, ...],
        pipeline_names: list[str],
        deployer: sfn.StateMachine,
        serverless: bool = False,
        period: cdk.Duration = cdk.Duration.minutes(5),
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name, default_interval=cdk.Duration.days(7))

        self._period = period
        self._variants = variants
        self._endpoint_rows(endpoint_name, "", serverless)
        self._pipeline_and_deployer_rows("# Training pipelines and deployments", pipeline_names, deployer, "Deployer executions")

    def add_model_rows(self, *, endpoint_name: str, pipeline_names: list[str], deployer: sfn.StateMachine, serverless: bool = False) -> None:
        """The same rows for another model of the environment: its endpoint, its pipelines and its deployer;
        its graphs' titles name its endpoint."""
        self._endpoint_rows(endpoint_name, f", {endpoint_name}", serverless)
        self._pipeline_and_deployer_rows(
            f"# Pipelines and deployments of {endpoint_name}", pipeline_names, deployer, f"Deployer executions, {endpoint_name}"
        )

    def _endpoint_rows(self, endpoint_name: str, title_suffix: str, serverless: bool) -> None:
        def per_variant(
            title: str, name: str, statistic: str, namespace: str = ENDPOINT_NAMESPACE, metric_period: cdk.Duration | None = None
        ) -> cloudwatch.GraphWidget:
            metrics = [
                cloudwatch.Metric(
                    namespace=namespace,
                    metric_name=name,
                    dimensions_map={"EndpointName": endpoint_name, "VariantName": variant},
                    statistic=statistic,
                    period=metric_period or self._period,
                    label=variant,
                )
                for variant in self._variants
            ]
            return cloudwatch.GraphWidget(title=f"{title}{title_suffix}", left=metrics, width=8)

        self.dashboard.add_widgets(
            cloudwatch.TextWidget(markdown=f"# Endpoint {endpoint_name}\nOne line per variant: a release goes to the colour not in use.", width=24, height=1)
        )
        self.dashboard.add_widgets(
            per_variant("Invocations", "Invocations", "Sum"),
            per_variant("Model errors (5XX)", "Invocation5XXErrors", "Sum"),
            per_variant("Rejected requests (4XX)", "Invocation4XXErrors", "Sum"),
        )
        self.dashboard.add_widgets(
            # ModelLatency is reported in microseconds.
            per_variant("Model latency, average (µs)", "ModelLatency", "Average"),
            per_variant("Model latency, p99 (µs)", "ModelLatency", "p99"),
            # A serverless endpoint has no instances; its cold starts show as the time to set up new compute (µs).
            per_variant("Cold starts, model setup time (µs)", "ModelSetupTime", "Maximum")
            if serverless
            # Every instance reports its CPU once a minute, so the number of reports per minute is the number of instances.
            else per_variant("Instances", "CPUUtilization", "SampleCount", namespace=INSTANCE_NAMESPACE, metric_period=cdk.Duration.minutes(1)),
        )

    def _pipeline_and_deployer_rows(self, heading: str, pipeline_names: list[str], deployer: sfn.StateMachine, deployer_title: str) -> None:
        self.dashboard.add_widgets(cloudwatch.TextWidget(markdown=heading, width=24, height=1))
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=f"Pipeline {name}: runs",
                    left=[
                        cloudwatch.Metric(
                            namespace=PIPELINE_NAMESPACE,
                            metric_name=outcome,
                            dimensions_map={"PipelineName": name},
                            statistic="Sum",
                            period=cdk.Duration.hours(1),
                            label=outcome.removeprefix("Execution").lower(),
                        )
                        for outcome in PIPELINE_OUTCOMES
                    ],
                    width=12,
                )
                for name in pipeline_names
            ),
            cloudwatch.GraphWidget(
                title=deployer_title,
                left=[
                    metric(statistic="Sum", period=cdk.Duration.hours(1), label=label)
                    for metric, label in (
                        (deployer.metric_started, "started"),
                        (deployer.metric_succeeded, "succeeded"),
                        (deployer.metric_failed, "failed (rolled back or refused)"),
                        (deployer.metric_timed_out, "timed out"),
                        (deployer.metric_aborted, "aborted"),
                    )
                ],
                width=12,
            ),
        )
