"""The environment's network: a VPC (created, or referenced by ID), Studio's security group and, for
VpcOnly Studio, the VPC endpoints it and its jobs need."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from config.settings import Network, NewVpc

# What VpcOnly Studio and the SageMaker jobs it starts call, and why. With no NAT gateway these are the
# only way out of the private subnets, so each one is here because something fails without it.
_INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    # Studio and SDK calls: jobs, pipelines, the model registry.
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    # Invoking endpoints from notebooks.
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    # The Studio UI's own API in VpcOnly mode.
    "SageMakerStudio": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_STUDIO,
    # The SDK resolves the execution role's identity and account.
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    # Jobs and Studio apps ship their logs.
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    # Jobs publish metrics; alarms read them.
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    # Pulling processing and inference images: authentication and manifests...
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    # ...and their layers.
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
}


class NetworkStack(cdk.Stack):
    """VPC, subnets and security groups for one environment; no lookups, so synth stays offline."""

    def __init__(self, scope: Construct, construct_id: str, *, network: Network, mlflow: bool = False, **kwargs) -> None:
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
        subnets = ec2.SubnetSelection(subnets=self._private_subnets().subnets)
        # The MLflow tracking server's API (<region>.experiments.sagemaker.aws), where the training job logs
        # its run and Studio users record theirs; an hourly cost, so only with a tracking server.
        mlflow_endpoint = {"SageMakerMlflow": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS} if mlflow else {}
        for endpoint_id, service in {**_INTERFACE_ENDPOINTS, **mlflow_endpoint}.items():
            endpoint = self.vpc.add_interface_endpoint(
                endpoint_id,
                service=service,
                subnets=subnets,
                security_groups=[endpoint_security_group],
                open=False,
                private_dns_enabled=True,
            )
            if endpoint_id == "SageMakerMlflow":
                # Only this account's principals, and only this account's tracking servers.
                endpoint.add_to_policy(
                    iam.PolicyStatement(
                        sid="ThisAccountsTrackingServers",
                        principals=[iam.AnyPrincipal()],
                        actions=["sagemaker-mlflow:*"],
                        resources=[self.format_arn(service="sagemaker", resource="mlflow-tracking-server", resource_name="*")],
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
