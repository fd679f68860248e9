"""The environment's network: a VPC (created, or referenced by ID), Studio's security group and, for
VpcOnly Studio, the VPC endpoints it and its jobs need."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from config.settings import Network, NewVpc

@dataclass(frozen=True)
class InterfaceEndpoint:
    """An interface endpoint and what in the environment calls it: IAM actions (an action, or a service prefix
    ending in ':') that a role working in the private subnets holds and that reach AWS through it, or, where
    the caller needs no permission of its own, `needed_by` says who needs it."""

    service: ec2.InterfaceVpcEndpointAwsService
    # The end of its service name, e.g. "sagemaker.api" in com.amazonaws.<region>.sagemaker.api.
    service_suffix: str
    called_with: tuple[str, ...] = ()
    needed_by: str = ""


# What VpcOnly Studio and the SageMaker jobs it starts call, and why. With no NAT gateway these are the only
# way out of the private subnets; each one is here because something in the environment calls it (a unit
# test checks each against the synthesized roles), and bills per zone and hour.
INTERFACE_ENDPOINTS: dict[str, InterfaceEndpoint] = {
    # Studio and SDK calls: jobs, pipelines, the model registry.
    "SageMakerApi": InterfaceEndpoint(ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API, "sagemaker.api", ("sagemaker:",)),
    # Invoking endpoints from notebooks; SageMaker documents VpcOnly Studio as unable to run without it.
    "SageMakerRuntime": InterfaceEndpoint(
        ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME, "sagemaker.runtime", ("sagemaker:InvokeEndpoint",), needed_by="VpcOnly Studio"
    ),
    # The SDK resolves the role's identity and account (sts:GetCallerIdentity needs no permission).
    "Sts": InterfaceEndpoint(ec2.InterfaceVpcEndpointAwsService.STS, "sts", needed_by="every SDK client in the private subnets"),
    # Jobs, served models and Studio apps ship their logs.
    "Logs": InterfaceEndpoint(ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS, "logs", ("logs:PutLogEvents",)),
    # Jobs, served models and Studio apps publish metrics.
    "Monitoring": InterfaceEndpoint(ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING, "monitoring", ("cloudwatch:PutMetricData",)),
    # Pulling and pushing images (Studio's builds, batch and serving containers): authentication and manifests...
    "EcrApi": InterfaceEndpoint(ec2.InterfaceVpcEndpointAwsService.ECR, "ecr.api", ("ecr:GetAuthorizationToken",)),
    # ...and their layers.
    "EcrDocker": InterfaceEndpoint(ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER, "ecr.dkr", ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")),
}
# SageMaker managed MLflow's API (<region>.experiments.sagemaker.aws), where the training job logs its run and
# Studio users record theirs: with MLflow on.
MLFLOW_ENDPOINT = InterfaceEndpoint(
    ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS, "experiments", ("sagemaker:CallMlflowAppApi", "sagemaker-mlflow:")
)
# Studio's own web address, for people who open Studio from inside the VPC: with network.studio_access_from_vpc.
STUDIO_ENDPOINT = InterfaceEndpoint(
    ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_STUDIO, "studio", needed_by="people opening Studio from inside the VPC"
)


class NetworkStack(cdk.Stack):
    """VPC, subnets and security groups for one environment; no lookups, so synth stays offline."""

    def __init__(self, scope: Construct, construct_id: str, *, network: Network, mlflow: bool = False, **kwargs) -> None:
        self._endpoint_zones = network.endpoint_zones
        self._studio_access_from_vpc = network.studio_access_from_vpc
        self._zones = list((network.vpc or network.existing_vpc).availability_zones)
        super().__init__(scope, construct_id, **kwargs)
        self.vpc_only = network.studio_network_mode == "VpcOnly"

        if network.existing_vpc is not None:
            existing = network.existing_vpc
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=existing.vpc_id,
                availability_zones=existing.availability_zones,
                private_subnet_ids=existing.subnet_ids,
                private_subnet_route_table_ids=existing.route_table_ids or None,
            )
            self.subnet_ids = list(existing.subnet_ids)
        else:
            assert network.vpc is not None  # the config model requires exactly one of the two
            self.vpc = self._create_vpc(network.vpc)
            self.subnet_ids = [subnet.subnet_id for subnet in self._private_subnets().subnets]

        self.studio_security_group = ec2.SecurityGroup(
            self,
            "StudioSecurityGroup",
            vpc=self.vpc,
            description="Studio apps, their home EFS and the jobs they start",
            allow_all_outbound=True,
        )
        self.studio_security_group.add_ingress_rule(
            self.studio_security_group, ec2.Port.tcp(2049), "NFS from Studio apps to the home EFS"
        )
        self.studio_security_group.add_ingress_rule(
            self.studio_security_group,
            ec2.Port.all_traffic(),
            "Studio apps talk to each other (JupyterLab server, kernel gateways, distributed jobs)",
        )

        if self.vpc_only:
            routes_s3 = network.existing_vpc is None or bool(network.existing_vpc.route_table_ids)
            self._add_endpoints(s3_gateway=routes_s3, mlflow=mlflow)

    @property
    def availability_zones(self) -> list[str]:
        """The zones from config. The inherited property looks them up in the account: an AWS call at synth."""
        return self._zones

    def _create_vpc(self, spec: NewVpc) -> ec2.Vpc:
        subnets = [
            ec2.SubnetConfiguration(
                name="private",
                subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS if spec.nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED,
                cidr_mask=20,
            )
        ]
        if spec.nat_gateways:
            subnets.append(ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24))
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(spec.cidr),
            availability_zones=spec.availability_zones,
            nat_gateways=spec.nat_gateways,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
        )
        vpc.add_flow_log("FlowLog", traffic_type=ec2.FlowLogTrafficType.REJECT)
        return vpc

    def _private_subnets(self) -> ec2.SelectedSubnets:
        return self.vpc.select_subnets(
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
            if self.vpc.private_subnets
            else ec2.SubnetType.PRIVATE_ISOLATED
        )

    def _add_endpoints(self, *, s3_gateway: bool, mlflow: bool) -> None:
        endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="Interface VPC endpoints: HTTPS from Studio and its jobs only",
            allow_all_outbound=False,
        )
        endpoint_security_group.add_ingress_rule(
            self.studio_security_group, ec2.Port.tcp(443), "HTTPS from Studio apps and SageMaker jobs"
        )
        private = self._private_subnets().subnets
        subnets = ec2.SubnetSelection(subnets=private)
        endpoint_subnets = ec2.SubnetSelection(subnets=[subnet for subnet in private if subnet.availability_zone in self._endpoint_zones])
        endpoints = {
            **INTERFACE_ENDPOINTS,
            **({"SageMakerMlflow": MLFLOW_ENDPOINT} if mlflow else {}),
            **({"SageMakerStudio": STUDIO_ENDPOINT} if self._studio_access_from_vpc else {}),
        }
        for endpoint_id, endpoint in endpoints.items():
            interface = self.vpc.add_interface_endpoint(
                endpoint_id,
                service=endpoint.service,
                subnets=endpoint_subnets,
                security_groups=[endpoint_security_group],
                open=False,
                private_dns_enabled=True,
            )
            if endpoint_id == "SageMakerMlflow":
                # Only this account's principals, and only this account's MLflow: tracking servers authorize
                # each MLflow call as a sagemaker-mlflow action, serverless apps as CallMlflowAppApi.
                for sid, action, resource in (
                    ("ThisAccountsTrackingServers", "sagemaker-mlflow:*", "mlflow-tracking-server"),
                    ("ThisAccountsMlflowApps", "sagemaker:CallMlflowAppApi", "mlflow-app"),
                ):
                    interface.add_to_policy(
                        iam.PolicyStatement(
                            sid=sid,
                            principals=[iam.AnyPrincipal()],
                            actions=[action],
                            resources=[self.format_arn(service="sagemaker", resource=resource, resource_name="*")],
                            conditions={"StringEquals": {"aws:PrincipalAccount": self.account}},
                        )
                    )
        # S3 through a gateway endpoint: free, and the only way to reach training data without a NAT.
        if s3_gateway:
            s3 = self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[subnets])
            # Only this account's buckets, so that nothing in the VPC can copy data to a bucket elsewhere.
            s3.add_to_policy(
                iam.PolicyStatement(
                    sid="ThisAccountsBuckets",
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:ResourceAccount": self.account}},
                )
            )
            # Docker pulls from ECR (Studio's image builds) fetch image layers from ECR's own bucket.
            s3.add_to_policy(
                iam.PolicyStatement(
                    sid="EcrImageLayers",
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:GetObject"],
                    resources=[f"arn:{self.partition}:s3:::prod-{self.region}-starport-layer-bucket/*"],
                )
            )
