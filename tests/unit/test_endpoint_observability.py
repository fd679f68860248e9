"""What the environment shows about its endpoint: the dashboard, and who may write its captured traffic
(the deployer's capture config is in test_deployment.py)."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest

from config.naming import serving_endpoint_name
from config.settings import DataCapture as DataCaptureConfig
from stacks.storage import ServedModelPaths, StorageStack
from tests.synth import Synthesized, cdk_json_context, environment_config
from tests.templates import cfn_text, only


def dashboard(synthesized: Synthesized, environment: str) -> tuple[dict, list[dict]]:
    """The dashboard's properties and its widgets, CloudFormation references written as ``<...>``."""
    _, properties = only(synthesized.template(environment, "deployment"), "AWS::CloudWatch::Dashboard")
    return properties, json.loads(cfn_text(properties["DashboardBody"]))["widgets"]


def graphs(widgets: list[dict]) -> dict[str, list[list]]:
    """Each graph's title and its metric lines (namespace, metric name, dimension name/value pairs...)."""
    return {w["properties"]["title"]: w["properties"]["metrics"] for w in widgets if w["type"] == "metric"}


def _dimensions(line: list) -> dict[str, str]:
    fields = line[2:-1] if isinstance(line[-1], dict) else line[2:]
    return dict(zip(fields[::2], fields[1::2]))


def test_dashboard_is_named_after_the_environment(synthesized: Synthesized, environment):
    properties, _ = dashboard(synthesized, environment)
    assert properties["DashboardName"] == synthesized.prefix(environment)


@pytest.mark.parametrize(
    "title, metric",
    [
        ("Invocations", "Invocations"),
        ("Model errors (5XX)", "Invocation5XXErrors"),
        ("Rejected requests (4XX)", "Invocation4XXErrors"),
        ("Model latency, average (µs)", "ModelLatency"),
        ("Model latency, p99 (µs)", "ModelLatency"),
    ],
)
def test_dashboard_graphs_each_endpoint_metric_per_variant(synthesized: Synthesized, environment, title, metric):
    lines = graphs(dashboard(synthesized, environment)[1])[title]
    endpoint = _served_endpoint(synthesized, environment)

    assert [(line[1], _dimensions(line)) for line in lines] == [
        (metric, {"EndpointName": endpoint, "VariantName": variant}) for variant in ("blue", "green")
    ]


def _served_endpoint(synthesized: Synthesized, environment: str) -> str:
    # dev serves serverless, staging and prod on instances.
    return f"{synthesized.prefix(environment)}-serverless" if environment == "dev" else f"{synthesized.prefix(environment)}-endpoint"


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_dashboard_counts_instances_from_their_per_minute_reports(synthesized: Synthesized, environment):
    lines = graphs(dashboard(synthesized, environment)[1])["Instances"]
    assert {(line[0], line[-1]["stat"], line[-1]["period"]) for line in lines} == {("/aws/sagemaker/Endpoints", "SampleCount", 60)}


def test_dashboard_graphs_the_other_models_endpoint_in_rows_of_its_own(synthesized: Synthesized, environment):
    (other,) = [unit for unit in synthesized.config(environment).model_units().values() if not unit.environment_names]
    endpoint = serving_endpoint_name(other.stem, other.deployment.serving.mode)
    lines = graphs(dashboard(synthesized, environment)[1])[f"Invocations, {endpoint}"]

    assert [_dimensions(line) for line in lines] == [{"EndpointName": endpoint, "VariantName": variant} for variant in ("blue", "green")]


def test_a_serverless_endpoints_dashboard_shows_cold_starts_per_variant_instead_of_instances(synthesized: Synthesized):
    shown = graphs(dashboard(synthesized, "dev")[1])

    assert "Instances" not in shown
    assert [(line[1], _dimensions(line)) for line in shown["Cold starts, model setup time (µs)"]] == [
        ("ModelSetupTime", {"EndpointName": "mlops-dev-serverless", "VariantName": variant}) for variant in ("blue", "green")
    ]


def test_dashboard_shows_every_outcome_of_the_training_pipeline(synthesized: Synthesized, environment):
    pipeline = f"{synthesized.prefix(environment)}-training"
    lines = graphs(dashboard(synthesized, environment)[1])[f"Pipeline {pipeline}: runs"]

    assert [(line[0], line[1], _dimensions(line)) for line in lines] == [
        ("AWS/Sagemaker/ModelBuildingPipeline", outcome, {"PipelineName": pipeline})
        for outcome in ("ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed", "ExecutionStopped")
    ]


def test_dashboard_shows_the_deployers_executions_by_outcome(synthesized: Synthesized, environment):
    template = synthesized.template(environment, "deployment")
    lines = graphs(dashboard(synthesized, environment)[1])["Deployer executions"]
    (deployer,) = [name for name in template["Resources"] if name.startswith("CanaryDeployerStateMachine") and template["Resources"][name]["Type"] == "AWS::StepFunctions::StateMachine"]

    assert [line[1] for line in lines] == ["ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"]
    assert {(line[0], json.dumps(_dimensions(line))) for line in lines} == {("AWS/States", json.dumps({"StateMachineArn": f"<{deployer}>"}))}


def _served_model_statements(captured_data: str | None) -> dict[str, dict]:
    paths = ServedModelPaths(model="tabular", environment_names=True, artifact_prefixes=("pipelines/mlops-dev-training/",), captured_data=captured_data)
    stack = StorageStack(cdk.App(context=cdk_json_context()), "storage", prefix="mlops-dev", storage=environment_config("dev").storage, served_models=(paths,))
    document = stack.resolve(stack.served_model_access_policies["tabular"].document)
    return {s["Sid"]: s for s in document["Statement"]}


def test_served_models_may_write_captured_traffic_only_under_the_endpoints_capture_prefix():
    statements = _served_model_statements("data-capture/mlops-dev-endpoint/")

    assert statements["WriteCapturedTraffic"]["Action"] == "s3:PutObject"
    assert cfn_text(statements["WriteCapturedTraffic"]["Resource"]).endswith("/data-capture/mlops-dev-endpoint/*")
    assert statements["EncryptCapturedTraffic"]["Action"] == "kms:GenerateDataKey"


def test_served_models_write_nothing_without_data_capture():
    actions = json.dumps([s["Action"] for s in _served_model_statements(None).values()])
    assert "s3:PutObject" not in actions and "kms:GenerateDataKey" not in actions


def test_data_capture_samples_between_one_and_a_hundred_percent():
    with pytest.raises(ValueError, match="less than or equal to 100"):
        DataCaptureConfig(sampling_percentage=101)
