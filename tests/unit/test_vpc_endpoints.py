"""Every interface endpoint a VpcOnly environment pays for is called by something in it, and sits in the
zones config gives."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aws_cdk import aws_ec2 as ec2

from config import ENVIRONMENTS, EnvironmentConfig
from stacks.network import INTERFACE_ENDPOINTS, MLFLOW_ENDPOINT, STUDIO_ENDPOINT, InterfaceEndpoint
from tests.permissions import EnvironmentPolicies
from tests.synth import Synthesized
from tests.templates import cfn_text, properties, resources

KNOWN = {endpoint.service_suffix: endpoint for endpoint in [*INTERFACE_ENDPOINTS.values(), MLFLOW_ENDPOINT, STUDIO_ENDPOINT]}
# Endpoints whose callers need no permission of their own: what in the environment needs them, from its config
# and from the actions of the roles that work in its private subnets.
NEEDED_WITHOUT_A_PERMISSION: dict[str, Callable[[EnvironmentConfig, set[str]], bool]] = {
    "sts": lambda config, vpc_actions: bool(vpc_actions),
    "sagemaker.runtime": lambda config, vpc_actions: config.network.studio_network_mode == "VpcOnly",
    "studio": lambda config, vpc_actions: config.network.studio_access_from_vpc,
}


def _vpc_only(synthesized: Synthesized) -> list[str]:
    return [e for e in ENVIRONMENTS if synthesized.config(e).network.studio_network_mode == "VpcOnly"]


def _interface_endpoints(synthesized: Synthesized, environment: str) -> list[dict]:
    return [e for e in properties(synthesized.template(environment, "network"), "AWS::EC2::VPCEndpoint") if e.get("VpcEndpointType") == "Interface"]


def _service(endpoint: dict, region: str) -> str:
    return cfn_text(endpoint["ServiceName"]).split(f"{region}.", 1)[-1]


def _actions_of_roles_in_the_vpc(synthesized: Synthesized, environment: str) -> set[str]:
    """Every action granted to a role that SageMaker places in the private subnets (it may create network
    interfaces there): Studio's, the pipelines', the batch jobs', the served model's."""
    policies = EnvironmentPolicies(synthesized, environment)
    granted_by_role = {}
    for stack, logical_id, _ in policies._resources("AWS::IAM::Role"):
        role = policies.arn(stack, logical_id)
        actions = {
            action
            for _, document in policies._identity_policies(role)
            for statement in document["Statement"]
            if statement["Effect"] == "Allow"
            for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        }
        granted_by_role[role] = actions
    return {action for actions in granted_by_role.values() if "ec2:CreateNetworkInterface" in actions for action in actions}


def _calls(endpoint: InterfaceEndpoint, actions: set[str]) -> bool:
    return any(action == wanted or (wanted.endswith(":") and action.startswith(wanted)) for wanted in endpoint.called_with for action in actions)


def _unused(services: list[str], config: EnvironmentConfig, vpc_actions: set[str], table: dict[str, InterfaceEndpoint]) -> list[str]:
    """The services among `services` that nothing calls: no role in the VPC holds an action that reaches it,
    and nothing needs it without a permission. An endpoint in no table is unused too."""
    return [
        service
        for service in services
        if service not in table
        or not (NEEDED_WITHOUT_A_PERMISSION.get(service, lambda *_: False)(config, vpc_actions) or _calls(table[service], vpc_actions))
    ]


def test_every_interface_endpoint_is_called_by_something_in_its_environment(synthesized: Synthesized):
    for environment in _vpc_only(synthesized):
        config = synthesized.config(environment)
        services = [_service(e, config.region) for e in _interface_endpoints(synthesized, environment)]

        assert _unused(services, config, _actions_of_roles_in_the_vpc(synthesized, environment), KNOWN) == [], environment


def test_an_endpoint_that_nothing_calls_is_found(synthesized: Synthesized):
    config = synthesized.config("staging")
    vpc_actions = _actions_of_roles_in_the_vpc(synthesized, "staging")
    secrets = InterfaceEndpoint(ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER, "secretsmanager", called_with=("secretsmanager:GetSecretValue",))

    assert _unused(["secretsmanager", "sts"], config, vpc_actions, {**KNOWN, "secretsmanager": secrets}) == ["secretsmanager"]
    assert _unused(["kms"], config, vpc_actions, KNOWN) == ["kms"]


def test_endpoints_needed_without_a_permission_say_by_whom_and_are_checked():
    described = {suffix for suffix, endpoint in KNOWN.items() if endpoint.needed_by}

    assert described == set(NEEDED_WITHOUT_A_PERMISSION)
    assert all(endpoint.called_with or endpoint.needed_by for endpoint in KNOWN.values())


def test_studio_endpoint_only_for_people_opening_studio_from_inside_the_vpc(synthesized: Synthesized):
    for environment in _vpc_only(synthesized):
        services = {_service(e, synthesized.config(environment).region) for e in _interface_endpoints(synthesized, environment)}
        assert ("studio" in services) == synthesized.config(environment).network.studio_access_from_vpc


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_interface_endpoints_sit_in_the_configured_zones_and_every_subnet_routes_to_s3(synthesized: Synthesized, environment):
    network = synthesized.template(environment, "network")
    config = synthesized.config(environment).network
    subnets = resources(network, "AWS::EC2::Subnet")
    zone_of = {logical_id: s["Properties"]["AvailabilityZone"] for logical_id, s in subnets.items()}

    for endpoint in _interface_endpoints(synthesized, environment):
        assert sorted(zone_of[ref["Ref"]] for ref in endpoint["SubnetIds"]) == sorted(config.endpoint_zones)
    (gateway,) = [e for e in properties(network, "AWS::EC2::VPCEndpoint") if e.get("VpcEndpointType") == "Gateway"]
    assert len(gateway["RouteTableIds"]) == len(config.vpc.availability_zones)
