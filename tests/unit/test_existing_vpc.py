"""An environment can use a VPC it does not own, referenced by ID, without any lookup."""

from __future__ import annotations

import json

import aws_cdk as cdk

from config.settings import ExistingVpc, Network
from stacks.environment import new_app
from stacks.network import INTERFACE_ENDPOINTS, NetworkStack
from tests.synth import cdk_json_context

EXISTING = dict(
    vpc_id="vpc-0123456789abcdef0",
    subnet_ids=["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    availability_zones=["eu-west-1a", "eu-west-1b"],
)


def _synth_network(tmp_path, mode: str, endpoint_availability_zones: list[str] | None = None, **existing) -> tuple[dict, cdk.cx_api.CloudAssembly]:
    app = new_app(outdir=str(tmp_path), context=cdk_json_context())
    network = Network(
        studio_network_mode=mode, existing_vpc=ExistingVpc(**{**EXISTING, **existing}), endpoint_availability_zones=endpoint_availability_zones
    )
    NetworkStack(
        app,
        "network",
        network=network,
        env=cdk.Environment(account="111111111111", region="eu-west-1"),
    )
    assembly = app.synth()
    return assembly.get_stack_by_name("network").template, assembly


def _types(template: dict) -> list[str]:
    return [r["Type"] for r in template["Resources"].values()]


def test_existing_vpc_is_referenced_not_created_and_needs_no_lookup(tmp_path):
    template, assembly = _synth_network(tmp_path, "PublicInternetOnly")

    assert "AWS::EC2::VPC" not in _types(template)
    assert "AWS::EC2::Subnet" not in _types(template)
    groups = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::SecurityGroup"]
    assert [g["VpcId"] for g in groups] == [EXISTING["vpc_id"]]
    assert "missing" not in json.loads((tmp_path / "manifest.json").read_text())


def test_vpc_only_mode_puts_interface_endpoints_in_the_existing_subnets(tmp_path):
    template, _ = _synth_network(tmp_path, "VpcOnly")

    endpoints = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    assert len(endpoints) == len(INTERFACE_ENDPOINTS)
    assert all(e["VpcId"] == EXISTING["vpc_id"] and e["SubnetIds"] == EXISTING["subnet_ids"] for e in endpoints)


def test_interface_endpoints_go_only_into_the_existing_subnets_of_the_configured_zones(tmp_path):
    template, _ = _synth_network(tmp_path, "VpcOnly", endpoint_availability_zones=EXISTING["availability_zones"][1:])

    endpoints = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    assert endpoints and all(e["SubnetIds"] == EXISTING["subnet_ids"][1:] for e in endpoints)


def test_s3_gateway_endpoint_uses_the_given_route_tables(tmp_path):
    route_tables = ["rtb-0123456789abcdef0", "rtb-0fedcba9876543210"]
    template, _ = _synth_network(tmp_path, "VpcOnly", route_table_ids=route_tables)

    (gateway,) = [
        r["Properties"] for r in template["Resources"].values()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Gateway"
    ]
    assert gateway["RouteTableIds"] == route_tables
