"""The environment's SageMaker Studio: domain, user profiles, execution role and domain tear-down."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from config.naming import deployer_model_names, draft_pipeline_prefix
from config.settings import Studio
from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources
from mlops_constructs.mlflow_tracking import MlflowApp, MlflowTrackingServer
from mlops_constructs.sagemaker_execution_role import SageMakerExecutionRole
from mlops_constructs.studio_domain_cleanup import StudioDomainCleanup


# What the Studio image-build CLI (sm-docker) names its CodeBuild projects with, followed by the domain's ID.
STUDIO_BUILD_PROJECT_PREFIX = "sagemaker-studio-"


class StudioStack(cdk.Stack):
    """One IAM-authenticated Studio domain named ``<project>-<env>``, one profile per configured user."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        studio: Studio,
        vpc_only: bool,
        vpc: ec2.IVpc,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        data_access_policy: iam.IManagedPolicy,
        retain_domain: bool,
        pipeline_roles: list[iam.IRole],
        draft_pipelines: bool,
        image_repositories: list[ecr.IRepository],
        build_context_policies: tuple[iam.IManagedPolicy, iam.IManagedPolicy],
        mlflow: MlflowApp | MlflowTrackingServer | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.prefix = prefix
        self.execution_role = self._execution_role(data_access_policy, subnet_ids, security_group)
        self.draft_policy = self._draft_pipelines(draft_pipelines, pipeline_roles)
        if mlflow is not None:
            # Its ARN comes from the model-build stack (a serverless app's holds an ID SageMaker generates), so
            # this stack deploys after that one.
            mlflow.let_people_use(self.execution_role)

        space_storage = sagemaker.CfnDomain.DefaultSpaceStorageSettingsProperty(
            default_ebs_storage_settings=sagemaker.CfnDomain.DefaultEbsStorageSettingsProperty(
                default_ebs_volume_size_in_gb=studio.default_space_storage_gb,
                maximum_ebs_volume_size_in_gb=studio.max_space_storage_gb,
            )
        )
        jupyter_lab = sagemaker.CfnDomain.JupyterLabAppSettingsProperty(
            app_lifecycle_management=sagemaker.CfnDomain.AppLifecycleManagementProperty(
                idle_settings=sagemaker.CfnDomain.IdleSettingsProperty(
                    lifecycle_management="ENABLED",
                    idle_timeout_in_minutes=studio.idle_timeout_minutes,
                    min_idle_timeout_in_minutes=60,
                    max_idle_timeout_in_minutes=max(studio.idle_timeout_minutes, 60),
                )
            ),
            # Offered for cloning in private spaces (default user settings) and shared spaces alike.
            code_repositories=[
                sagemaker.CfnDomain.CodeRepositoryProperty(repository_url=url) for url in studio.git_repositories
            ] or None,
        )
        security_groups = [security_group.security_group_id]
        self.domain = sagemaker.CfnDomain(
            self,
            "Domain",
            domain_name=prefix,
            auth_mode="IAM",
            app_network_access_type="VpcOnly" if vpc_only else "PublicInternetOnly",
            vpc_id=vpc.vpc_id,
            subnet_ids=subnet_ids,
            # Encrypts the home EFS and the spaces' EBS volumes.
            kms_key_id=key.key_arn,
            default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
                execution_role=self.execution_role.role_arn,
                security_groups=security_groups,
                # The current Studio UI, not Studio Classic.
                studio_web_portal="ENABLED",
                default_landing_uri="studio::",
                jupyter_lab_app_settings=jupyter_lab,
                space_storage_settings=space_storage,
            ),
            default_space_settings=sagemaker.CfnDomain.DefaultSpaceSettingsProperty(
                execution_role=self.execution_role.role_arn,
                security_groups=security_groups,
                jupyter_lab_app_settings=jupyter_lab,
                space_storage_settings=space_storage,
            ),
            domain_settings=sagemaker.CfnDomain.DomainSettingsProperty(
                docker_settings=sagemaker.CfnDomain.DockerSettingsProperty(
                    enable_docker_access="ENABLED" if studio.docker_access else "DISABLED",
                ),
                security_group_ids=security_groups,
            ),
        )
        # Spaces keep users' work on EBS volumes that go with the domain, so a retained environment keeps both.
        removal = cdk.RemovalPolicy.RETAIN if retain_domain else cdk.RemovalPolicy.DESTROY
        self.domain.apply_removal_policy(removal)

        self.user_profiles = [
            sagemaker.CfnUserProfile(
                self,
                f"User-{user.name}",
                domain_id=self.domain.attr_domain_id,
                user_profile_name=user.name,
                user_settings=sagemaker.CfnUserProfile.UserSettingsProperty(
                    execution_role=self.execution_role.role_arn,
                ),
            )
            for user in studio.users
        ]
        for profile in self.user_profiles:
            # A retained domain keeps its profiles: they own the private spaces it keeps.
            profile.apply_removal_policy(removal)

        cleanup = StudioDomainCleanup(self, "DomainCleanup", domain=self.domain, domain_retained=retain_domain)
        # Deleted before the profiles and the domain, so their apps and spaces are gone by then.
        for profile in self.user_profiles:
            cleanup.node.add_dependency(profile)

        self._allow_studio_self_service()
        if studio.docker_access:
            self.image_build_role = self._studio_image_builds(image_repositories, *build_context_policies, key)

        cdk.CfnOutput(self, "StudioDomainId", value=self.domain.attr_domain_id, description="The Studio domain")
        cdk.CfnOutput(self, "StudioUrl", value=self.domain.attr_url, description="Studio's address; open it as a user profile (see the docs, first day)")

    def _draft_pipelines(self, allowed: bool, pipeline_roles: list[iam.IRole]) -> iam.Policy:
        """Studio users' draft pipelines (``<prefix>-draft-<user>-<folder>``, which no folder may deploy as).

        Where `allowed` (config/naming.py DRAFT_ENVIRONMENTS), Studio users may pass the pipeline roles to
        SageMaker, as whom a draft of a folder runs (the role of the folder's model; their role already
        creates and starts pipelines named ``<prefix>-*``); elsewhere, or where no model is trained, nobody
        with the Studio role may create, update or start a pipeline in the draft namespace.
        """
        if allowed and pipeline_roles:
            statement = iam.PolicyStatement(
                sid="DraftPipelinesRunAsThePipelineRole",
                actions=["iam:PassRole"],
                resources=[role.role_arn for role in pipeline_roles],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        else:
            drafts = self.format_arn(service="sagemaker", resource="pipeline", resource_name=f"{draft_pipeline_prefix(self.prefix)}*")
            statement = iam.PolicyStatement(
                sid="NoDraftPipelinesInThisEnvironment",
                effect=iam.Effect.DENY,
                actions=["sagemaker:CreatePipeline", "sagemaker:UpdatePipeline", "sagemaker:StartPipelineExecution"],
                resources=[drafts],
            )
        return iam.Policy(self, "DraftPipelines", statements=[statement], roles=[self.execution_role])

    def _execution_role(
        self,
        data_access_policy: iam.IManagedPolicy,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
    ) -> iam.Role:
        role = SageMakerExecutionRole(
            self,
            "ExecutionRole",
            prefix=self.prefix,
            description=f"{self.prefix}: Studio users and the SageMaker jobs they start",
            managed_policies=[data_access_policy],
            subnet_ids=subnet_ids,
            security_group_id=security_group.security_group_id,
            deployer_model_names=deployer_model_names(self.prefix),
        ).role
        role.add_to_policy(
            iam.PolicyStatement(
                sid="BrowseInStudio",
                # List, Search and the read-only Get actions below have no resource-level permissions.
                actions=[
                    "sagemaker:ListApps",
                    "sagemaker:ListSpaces",
                    "sagemaker:ListUserProfiles",
                    "sagemaker:ListPipelines",
                    "sagemaker:ListPipelineExecutions",
                    "sagemaker:ListModelPackageGroups",
                    "sagemaker:ListProcessingJobs",
                    "sagemaker:ListTrainingJobs",
                    "sagemaker:ListExperiments",
                    "sagemaker:ListTrials",
                    "sagemaker:ListTrialComponents",
                    "sagemaker:ListModels",
                    "sagemaker:ListEndpoints",
                    "sagemaker:Search",
                    "sagemaker:GetSearchSuggestions",
                ],
                resources=["*"],
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "List, Search, EC2 Describe, sagemaker-mlflow:AccessUI and cloudwatch:PutMetricData (namespace-conditioned) "
            "have no resource-level permissions.",
        )
        return role

    def _allow_studio_self_service(self) -> None:
        # A separate policy: it names the domain, and the domain names the role, so inline statements
        # on the role would make a dependency cycle.
        domain_id = self.domain.attr_domain_id
        domain_contents = [self._sagemaker_arn(kind, f"{domain_id}/*") for kind in ("app", "space", "user-profile")]
        policy = iam.Policy(
            self,
            "StudioSelfService",
            roles=[self.execution_role],
            statements=[
                iam.PolicyStatement(
                    sid="ManageOwnAppsAndSpaces",
                    actions=[
                        "sagemaker:CreateApp",
                        "sagemaker:DeleteApp",
                        "sagemaker:DescribeApp",
                        "sagemaker:CreateSpace",
                        "sagemaker:UpdateSpace",
                        "sagemaker:DeleteSpace",
                        "sagemaker:DescribeSpace",
                        "sagemaker:CreatePresignedDomainUrl",
                        "sagemaker:DescribeUserProfile",
                        "sagemaker:AddTags",
                    ],
                    resources=domain_contents,
                ),
                iam.PolicyStatement(
                    sid="DescribeOwnDomain",
                    actions=["sagemaker:DescribeDomain"],
                    resources=[self._sagemaker_arn("domain", domain_id)],
                ),
            ],
        )
        acknowledge_wildcard_resources(
            policy, domain_contents, "Users create apps and spaces with names of their choosing, inside this domain only."
        )

    def _studio_image_builds(
        self, repositories: list[ecr.IRepository], context_upload: iam.IManagedPolicy, context_read: iam.IManagedPolicy, key: kms.IKey
    ) -> iam.Role:
        """What the Studio image-build CLI (`sm-docker build . --repository <repo>:<tag> --role <build role>
        --bucket <artifacts bucket>`) needs, and no more: it zips the build context to
        ``codebuild-sagemaker-container-*.zip`` at the bucket's root, creates a CodeBuild project named
        ``sagemaker-studio-<domain>-<user>-*`` that runs as the build role, starts and follows it, then deletes
        both. The build pushes to this environment's repositories only.
        """
        domain_id = self.domain.attr_domain_id
        projects = self.format_arn(service="codebuild", resource="project", resource_name=f"{STUDIO_BUILD_PROJECT_PREFIX}{domain_id}-*")
        log_groups = self.format_arn(
            service="logs", resource="log-group", resource_name=f"/aws/codebuild/{STUDIO_BUILD_PROJECT_PREFIX}{domain_id}-*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )
        repository_arns = [repository.repository_arn for repository in repositories]
        role = iam.Role(
            self,
            "ImageBuildRole",
            description=f"{self.prefix}: CodeBuild builds of container images started from Studio (sm-docker)",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}),
            managed_policies=[context_read],
        )
        self.execution_role.add_managed_policy(context_upload)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteBuildLogs", actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_groups, f"{log_groups}:*"]
            )
        )
        for repository in repositories:
            repository.grant_pull_push(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="UseTheKeyThroughEcr",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"ecr.{self.region}.amazonaws.com"}},
            )
        )
        policy = iam.Policy(
            self,
            "StudioImageBuilds",
            roles=[self.execution_role],
            statements=[
                iam.PolicyStatement(
                    sid="RunBuildProjects",
                    actions=["codebuild:CreateProject", "codebuild:DeleteProject", "codebuild:StartBuild", "codebuild:BatchGetBuilds"],
                    resources=[projects],
                ),
                iam.PolicyStatement(
                    sid="BuildsRunAsTheBuildRole",
                    actions=["iam:PassRole"],
                    resources=[role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "codebuild.amazonaws.com"}},
                ),
                # sm-docker creates the repository unless it exists; AWS checks the permission before the existence,
                # so the existing repositories are named here, and no other.
                iam.PolicyStatement(
                    sid="FindRepositories", actions=["ecr:CreateRepository", "ecr:DescribeRepositories"], resources=repository_arns
                ),
                iam.PolicyStatement(sid="FollowBuildLogs", actions=["logs:GetLogEvents", "logs:DescribeLogStreams"], resources=[log_groups, f"{log_groups}:*"]),
            ],
        )
        reason = "sm-docker names each build context, project and log stream at random, within this domain's prefix only."
        acknowledge_wildcard_resources(policy, [projects, log_groups, f"{log_groups}:*"], reason)
        acknowledge_wildcard_resources(role, [log_groups, f"{log_groups}:*"], reason)
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "ecr:GetAuthorizationToken has no resource-level permissions.")
        cdk.CfnOutput(self, "StudioImageBuildRoleName", value=role.role_name, description="sm-docker build . --role <this>")
        return role

    def _sagemaker_arn(self, kind: str, name: str = "*") -> str:
        return self.format_arn(service="sagemaker", resource=kind, resource_name=name)
