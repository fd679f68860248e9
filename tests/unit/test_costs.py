"""Every resource type the templates hold is priced (or listed as free while idle) in costs/prices.yaml, and
the idle totals computed from them stay within budget."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from config import ENVIRONMENTS
from costs import idle_lines, instance_serving_monthly, listed_types, price_table, serverless_serving_monthly, unlisted_types
from tests.synth import Synthesized

# The budget: staging, VpcOnly with prod's isolation, at or under $100 a month with nothing running.
STAGING_IDLE_BUDGET = 100.0


def _templates(synthesized: Synthesized, environment: str) -> dict[str, dict]:
    return {name: synthesized.template(environment, name.removeprefix(f"{environment}-")) for name in synthesized.stacks(environment)}


def test_every_resource_type_of_every_environment_is_in_the_price_table(synthesized: Synthesized, optional_pieces_on: Synthesized):
    unlisted = {
        (label, environment, name): unlisted_types(template)
        for label, synth, environments in (("app", synthesized, ENVIRONMENTS), ("optional pieces on", optional_pieces_on, ("dev",)))
        for environment in environments
        for name, template in _templates(synth, environment).items()
    }

    assert {where: types for where, types in unlisted.items() if types} == {}


def test_a_template_with_a_billed_type_the_table_does_not_know_fails():
    template = {"Resources": {"Cache": {"Type": "AWS::ElastiCache::CacheCluster"}, "Key": {"Type": "AWS::KMS::Key"}}}

    assert unlisted_types(template) == {"AWS::ElastiCache::CacheCluster"}


def test_every_billed_type_has_a_price_a_unit_and_a_source():
    for kind, entry in price_table()["billed_while_idle"].items():
        assert entry["per"] and entry["source"], kind
        assert any(key.startswith("price") for key in entry), kind
    assert not set(price_table()["billed_while_idle"]) & set(price_table()["free_while_idle"])


def test_staging_idles_within_budget(synthesized: Synthesized):
    total = sum(line.monthly for line in idle_lines(_templates(synthesized, "staging")))

    assert total <= STAGING_IDLE_BUDGET


def test_interface_endpoints_are_priced_per_zone_and_gateway_endpoints_are_free():
    hourly = price_table()["billed_while_idle"]["AWS::EC2::VPCEndpoint"]["price"]
    template = {
        "Resources": {
            "Sts": {"Type": "AWS::EC2::VPCEndpoint", "Properties": {"VpcEndpointType": "Interface", "SubnetIds": ["a", "b", "c"]}},
            "S3": {"Type": "AWS::EC2::VPCEndpoint", "Properties": {"VpcEndpointType": "Gateway", "RouteTableIds": ["r"]}},
        }
    }

    (line,) = idle_lines({"network": template})
    assert line.monthly == pytest.approx(3 * hourly * price_table()["hours_per_month"])


def test_a_tracking_server_is_priced_by_its_size(optional_pieces_on: Synthesized):
    lines = [line for line in idle_lines(_templates(optional_pieces_on, "dev")) if "MLflow tracking server" in line.item]
    size = optional_pieces_on.config("dev").model_build.mlflow.size
    hourly = price_table()["billed_while_idle"]["AWS::SageMaker::MlflowTrackingServer"]["price_by_size"][size]

    (line,) = lines
    assert line.monthly == pytest.approx(hourly * price_table()["hours_per_month"])


def test_a_serverless_mlflow_app_costs_nothing_idle(synthesized: Synthesized, environment):
    assert not [line for line in idle_lines(_templates(synthesized, environment)) if "MLflow" in line.item]


def test_dev_serving_a_handful_of_requests_serverless_costs_a_fraction_of_an_instance(synthesized: Synthesized):
    deployment = synthesized.config("dev").deployment

    serverless = serverless_serving_monthly(requests=3000, seconds_per_request=0.2, memory_gb=2, payload_kb=10)
    instance = instance_serving_monthly(deployment.instance_type, deployment.initial_instance_count)

    assert serverless < instance / 100


def _serving_line(deployment) -> str:
    """`make costs`'s line for what serving a model adds (scripts/costs.py is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("make_costs", Path(__file__).resolve().parents[2] / "scripts" / "costs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.serving_line("tabular", deployment)


def test_dev_states_its_serverless_serving_cost_at_the_request_volume_beside_the_instance_figure(synthesized: Synthesized):
    deployment = synthesized.config("dev").deployment
    serverless = serverless_serving_monthly(requests=3000, seconds_per_request=0.2, memory_gb=deployment.serving.memory_size_mb / 1024, payload_kb=10)
    instance = instance_serving_monthly(deployment.instance_type, deployment.initial_instance_count)

    line = _serving_line(deployment)

    assert f"{serverless:.2f} serverless ({deployment.serving.memory_size_mb} MB) for 3000 requests a month" in line
    assert f"on instances it would be {instance:.2f} for 1 x {deployment.instance_type}" in line


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_an_environment_on_instances_states_its_instances_serving_all_month(synthesized: Synthesized, environment):
    deployment = synthesized.config(environment).deployment

    assert _serving_line(deployment).endswith(f"x {deployment.instance_type} serving all month")
    assert "serverless" not in _serving_line(deployment)


def test_every_serving_instance_type_in_config_is_priced(synthesized: Synthesized, environment):
    assert synthesized.config(environment).deployment.instance_type in price_table()["serving"]["instance_hour"]


def test_a_monitoring_schedule_is_priced_per_run_on_its_job_definitions_instance(optional_pieces_on: Synthesized):
    lines = [line for line in idle_lines(_templates(optional_pieces_on, "dev")) if "monitoring schedule" in line.item]

    # One schedule per model's endpoint.
    assert len(lines) == len(optional_pieces_on.config("dev").model_units())
    assert all(line.monthly > 0 for line in lines)


def test_the_table_lists_the_types_a_nat_gateway_brings():
    assert {"AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::InternetGateway", "AWS::EC2::VPCGatewayAttachment", "AWS::EC2::Route"} <= listed_types()
