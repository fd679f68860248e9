"""Model building: each model's model package group, every pipeline in pipeline_code/ deployed with the stack, and
what starts each one (uploads of training data, a schedule, or nothing), as config says."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from config.naming import (
    PipelineFolderError,
    camel_case,
    deployer_model_names,
    endpoint_name,
    mlflow_name,
    model_package_group_name,
    pipeline_name,
    pipeline_output_prefixes,
    promotable_object_patterns,
    promoted_artifacts_prefix,
    promotion_role_name,
    serverless_endpoint_name,
)
from config.pipeline_settings import JOB_SECURITY_GROUP, MLFLOW, job_subnet_names, pipeline_settings
from config.settings import ModelBuild, ModelUnit
from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources
from mlops_constructs.mlflow_tracking import MlflowApp, MlflowTrackingServer
from mlops_constructs.model_promotion import allow_promotion, promotion_role_arn
from mlops_constructs.pipeline_upsert import PipelineUpsert
from mlops_constructs.pipeline_triggers import SCHEDULE_NAME_MAX_LENGTH, PipelineTriggers
from mlops_constructs.sagemaker_execution_role import SageMakerExecutionRole
from pipeline_code import render
from pipeline_code.settings import MLFLOW_ARTIFACTS_PREFIX, PipelineSettings

# The parameter through which an upload-triggered pipeline is given the S3 prefix the uploads landed under.
INPUT_DATA_PARAMETER = "InputDataUri"


@dataclass(frozen=True)
class PromotionTarget:
    """An environment that promotes a model of this one into itself: whose promotion role the grants name."""

    environment: str
    account: str
    region: str
    prefix: str
    # Whether the target promotes each version this environment releases, without anyone starting it.
    automatic: bool


class ModelBuildStack(cdk.Stack):
    """Model package groups ``<model stem>-models``, one per model, and pipelines ``<prefix>-<folder>``, one per
    pipeline_code/ folder, each registering into its model's group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        model_build: ModelBuild,
        models: dict[str, ModelUnit],
        data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        data_access_policy: iam.IManagedPolicy,
        subnet_ids: list[str],
        security_group_id: str,
        render_cache: Path,
        retain_model_registry: bool,
        jobs_in_vpc: bool,
        mlflow_artifact_access: iam.IManagedPolicy | None = None,
        promoted_to: dict[str, list[PromotionTarget]] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.render_seconds = 0.0
        # The ECR repositories of the images the pipelines register models with: what a served model may pull.
        self.serving_image_repository_arns: list[str] = []

        self.models = models
        self.model_package_groups: dict[str, sagemaker.CfnModelPackageGroup] = {}
        for model in models.values():
            # The model keeping the environment's names keeps the group's construct ID too: a new logical ID
            # would make CloudFormation create the (named) group anew before deleting the old one, and fail.
            group = sagemaker.CfnModelPackageGroup(
                self,
                "ModelPackageGroup" if model.environment_names else f"ModelPackageGroup-{model.name}",
                model_package_group_name=model_package_group_name(model.stem),
                model_package_group_description=(
                    f"Models trained by the {prefix} pipelines, for review and approval"
                    if model.environment_names
                    else f"Model {model.name} of {prefix}: versions for review and approval"
                ),
            )
            # The registry is the audit trail of what was approved and deployed: a retained environment keeps it.
            group.apply_removal_policy(cdk.RemovalPolicy.RETAIN if retain_model_registry else cdk.RemovalPolicy.DESTROY)
            self.model_package_groups[model.name] = group
        # Each model trained here has its own pipeline role: its pipelines register only into its own group and
        # write none of another model's artifacts, so one model's pipeline cannot release a version on another
        # model's endpoint.
        self.pipeline_roles: dict[str, iam.Role] = {
            model.name: self._pipeline_role(prefix, model, models, artifacts_bucket, data_access_policy, subnet_ids, security_group_id)
            for model in models.values()
            if model.deployed_pipelines
        }

        substitutions = {
            "DataBucket": data_bucket.bucket_name,
            "ArtifactsBucket": artifacts_bucket.bucket_name,
            "KmsKeyArn": key.key_arn,
        }
        self.mlflow: MlflowApp | MlflowTrackingServer | None = None
        mlflow = model_build.mlflow
        if mlflow.enabled:
            if mlflow_artifact_access is None:
                raise ValueError("model_build.mlflow.enabled needs the storage stack's policy for MLflow's artifacts")
            where = {"name": mlflow_name(prefix), "bucket": artifacts_bucket, "artifact_prefix": MLFLOW_ARTIFACTS_PREFIX, "artifact_access": mlflow_artifact_access}
            if mlflow.mode == "tracking-server":
                self.mlflow = MlflowTrackingServer(
                    self, "Mlflow", **where, size=mlflow.tracking_server_size, weekly_maintenance_window=mlflow.weekly_maintenance_window
                )
            else:
                self.mlflow = MlflowApp(self, "Mlflow", **where, weekly_maintenance_window=mlflow.weekly_maintenance_window)
            for role in self.pipeline_roles.values():
                self.mlflow.log_runs(role)
            substitutions[MLFLOW] = self.mlflow.arn
        job_subnet_count = len(subnet_ids) if jobs_in_vpc else 0
        if job_subnet_count:
            substitutions.update(zip(job_subnet_names(job_subnet_count), subnet_ids), **{JOB_SECURITY_GROUP: security_group_id})
        self.pipelines: dict[str, PipelineUpsert] = {}
        self.pipeline_settings: dict[str, PipelineSettings] = {}
        # pipeline_code/ folder -> the definition its upsert deploys (deploy-time values as ${placeholders}).
        self.pipeline_definitions: dict[str, dict] = {}
        # Every folder's name is checked, deployed here or not, before anything is rendered.
        folder_names = {name: pipeline_name(prefix, name) for name in render.pipeline_names()}
        for name in folder_names:
            if model_build.trigger(name).trigger != "none" and len(name) > SCHEDULE_NAME_MAX_LENGTH:
                raise PipelineFolderError(
                    f"pipeline_code/{name}/: config gives it a trigger, and its start schedule is named after the folder, "
                    f"but EventBridge Scheduler names are at most {SCHEDULE_NAME_MAX_LENGTH} characters ({len(name)} here); "
                    "shorten the folder name"
                )
        # A model this environment only promotes keeps its folders, but none of their pipelines is deployed here.
        owners = {folder: model for model in models.values() for folder in model.deployed_pipelines}
        names = {name: deployed for name, deployed in folder_names.items() if name in owners}
        for name in names:
            owner = owners[name]
            role = self.pipeline_roles[owner.name]
            settings = pipeline_settings(
                prefix=prefix,
                model_build=model_build,
                folder=name,
                partition=self.partition,
                account=self.account,
                region=self.region,
                script_uris=self._script_assets(name, render_cache, role),
                job_subnet_count=job_subnet_count,
                model_package_group=model_package_group_name(owner.stem),
            )
            self.pipeline_settings[name] = settings
            rendered = render.render_cached(name, settings, render_cache)
            self.render_seconds += rendered.seconds
            definition = self.pipeline_definitions[name] = json.loads(rendered.path.read_text())
            if render.defined_by_json(name):
                _check_definition_shape(name, definition)
            if model_build.trigger(name).trigger == "upload" and INPUT_DATA_PARAMETER not in {p["Name"] for p in definition["Parameters"]}:
                raise PipelineFolderError(
                    f"pipeline_code/{name}/: config starts it on uploads and passes the upload prefix as parameter "
                    f"{INPUT_DATA_PARAMETER}, which its pipeline.py does not declare; declare it, or set "
                    f"model_build.pipelines.{name}.trigger to 'schedule' or 'none'"
                )
            for image in _registered_images(definition):
                repository = _repository_arn(image, self.partition)
                if repository not in self.serving_image_repository_arns:
                    self.serving_image_repository_arns.append(repository)
            upsert = PipelineUpsert(
                self,
                f"Pipeline-{name}",
                pipeline_name=settings.pipeline_name,
                definition_file=rendered.path,
                substitutions={**substitutions, "PipelineRoleName": role.role_name},
                role=role,
                description=f"pipeline_code/{name}, deployed by the {prefix} model-build stack",
                delete_on_stack_delete=model_build.pipeline_removal == "delete",
                strict=model_build.strict_pipeline_updates,
                adopt_existing=model_build.adopt_existing_pipelines,
            )
            upsert.node.add_dependency(self.model_package_groups[owner.name])
            self.pipelines[name] = upsert

        self.reviewer_policy = self._reviewer_policy(prefix, model_build.reviewer_role_names)
        for name, targets in (promoted_to or {}).items():
            # The environments that promote this model read its versions, artifacts and release records.
            allow_promotion(
                group=self.model_package_groups[name],
                bucket=artifacts_bucket,
                key=key,
                object_patterns=promotable_object_patterns(prefix),
                target_role_arns=[promotion_role_arn(self.partition, target.account, promotion_role_name(target.prefix)) for target in targets],
            )

        self.triggers = PipelineTriggers(self, "Triggers", prefix=prefix)
        for name, upsert in self.pipelines.items():
            trigger = model_build.trigger(name)
            pipeline_arn = upsert.resource.get_att_string("PipelineArn")
            if trigger.trigger == "upload":
                self.triggers.start_on_upload(
                    name,
                    pipeline_arn=pipeline_arn,
                    bucket=data_bucket,
                    prefix=trigger.prefix,
                    suffix=trigger.suffix or "",
                    quiet_seconds=trigger.quiet_seconds,
                    max_wait_seconds=trigger.max_wait_seconds,
                    parameters={INPUT_DATA_PARAMETER: f"s3://{data_bucket.bucket_name}/{trigger.prefix}"},
                )
            elif trigger.trigger == "schedule":
                self.triggers.start_on_schedule(name, pipeline_arn=pipeline_arn, expression=trigger.schedule)

        for model in models.values():
            cdk.CfnOutput(
                self,
                "ModelPackageGroupName" if model.environment_names else f"{camel_case(model.name)}ModelPackageGroupName",
                value=self.model_package_groups[model.name].model_package_group_name,
                description="Review and approve model versions here" if model.environment_names else f"Review and approve versions of model {model.name} here",
            )
        cdk.CfnOutput(self, "PipelineNames", value=",".join(names.values()), description="The SageMaker pipelines this stack deploys, one per pipeline_code/ folder")
        for name in names:
            trigger = model_build.trigger(name)
            if trigger.trigger == "upload":
                cdk.CfnOutput(
                    self,
                    f"{camel_case(name)}DataUri",
                    value=f"s3://{data_bucket.bucket_name}/{trigger.prefix}",
                    description=f"Uploads here ending in '{trigger.suffix or ''}' start pipeline {names[name]}",
                )

    def _reviewer_policy(self, prefix: str, role_names: list[str]) -> iam.ManagedPolicy:
        """Approving or rejecting this environment's model packages: the reviewer's permission.

        Neither Studio users nor pipeline jobs hold it (an approval deploys), so it is a policy of its own,
        attached to the existing roles named in ``model_build.reviewer_role_names``.
        """
        groups = [group.model_package_group_name for group in self.model_package_groups.values()]
        packages = [self.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*") for group in groups]
        # Each model's endpoint in either serving mode (config picks one); the deployers name their endpoint's
        # configs <endpoint>-v<version>-<attempt>[-canary|-rollback].
        endpoints = [name for model in self.models.values() for name in (endpoint_name(model.stem), serverless_endpoint_name(model.stem))]
        endpoint_configs = [self.format_arn(service="sagemaker", resource="endpoint-config", resource_name=f"{endpoint}-*") for endpoint in endpoints]
        policy = iam.ManagedPolicy(
            self,
            "ModelReviewer",
            managed_policy_name=f"{prefix}-model-reviewer",
            description=f"{prefix}: review, approve or reject the model packages of {', '.join(groups)}",
            statements=[
                iam.PolicyStatement(
                    sid="ReviewThisEnvironmentsModelPackages",
                    actions=["sagemaker:UpdateModelPackage", "sagemaker:DescribeModelPackage"],
                    resources=packages,
                ),
                iam.PolicyStatement(
                    sid="DescribeThisEnvironmentsGroup",
                    actions=["sagemaker:DescribeModelPackageGroup"],
                    resources=[self.format_arn(service="sagemaker", resource="model-package-group", resource_name=group) for group in groups],
                ),
                # `mlops model list` shows which version the endpoint serves: its variants' models.
                iam.PolicyStatement(
                    sid="SeeWhatTheEndpointServes",
                    actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"],
                    resources=[
                        *(self.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint) for endpoint in endpoints),
                        *endpoint_configs,
                    ],
                ),
                iam.PolicyStatement(
                    sid="ListModelPackages",
                    # The List actions have no resource-level permissions.
                    actions=["sagemaker:ListModelPackages", "sagemaker:ListModelPackageGroups"],
                    resources=["*"],
                ),
            ],
            roles=[iam.Role.from_role_name(self, f"Reviewer-{name}", name) for name in role_names],
        )
        acknowledge_wildcard_resources(policy, packages, "Every version in this environment's model package groups, and no other.")
        acknowledge_wildcard_resources(policy, endpoint_configs, "The configs the deployers create for this environment's endpoints, named after them.")
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", "The SageMaker List actions have no resource-level permissions.")
        return policy

    def _pipeline_role(
        self,
        prefix: str,
        model: ModelUnit,
        models: dict[str, ModelUnit],
        artifacts_bucket: s3.IBucket,
        data_access_policy: iam.IManagedPolicy,
        subnet_ids: list[str],
        security_group_id: str,
    ) -> iam.Role:
        """The role `model`'s pipelines and their jobs run as: it registers versions in the model's group only, and
        writes no other model's pipeline outputs (which hold that model's artifacts) nor the promoted copies.

        The model keeping the environment's names keeps the construct ID (and so the role) of the one pipeline
        role an environment had before."""
        scope = self if model.environment_names else Construct(self, f"Model-{model.name}")
        role = SageMakerExecutionRole(
            scope,
            "PipelineRole",
            prefix=prefix,
            description=(
                f"{prefix}: the SageMaker pipelines and the jobs they run"
                if model.environment_names
                else f"{prefix}: the SageMaker pipelines of model {model.name} and the jobs they run"
            ),
            managed_policies=[data_access_policy],
            subnet_ids=subnet_ids,
            security_group_id=security_group_id,
            model_package_groups=[model_package_group_name(model.stem)],
            deployer_model_names=deployer_model_names(prefix),
        ).role
        others = [
            artifacts_bucket.arn_for_objects(f"{prefix_of}*")
            for other in models.values()
            if other.name != model.name
            for prefix_of in pipeline_output_prefixes(prefix, other.pipelines)
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="NeverWriteAnotherModelsArtifacts",
                effect=iam.Effect.DENY,
                actions=["s3:PutObject", "s3:DeleteObject"],
                resources=[*others, artifacts_bucket.arn_for_objects(f"{promoted_artifacts_prefix(prefix)}*")],
            )
        )
        return role

    def _script_assets(self, name: str, render_cache: Path, role: iam.Role) -> dict[str, str]:
        """Upload each step script, and the scripts as one source archive; readable by the pipeline's role."""
        files = {script.name: script for script in render.step_scripts(name)}
        files[render.SOURCE_ARCHIVE] = render.source_archive(name, render_cache)
        assets = {file_name: s3_assets.Asset(self, f"{name}-{file_name}", path=str(path)) for file_name, path in files.items()}
        bucket = next(iter(assets.values())).s3_bucket_name
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"arn:{self.partition}:s3:::{bucket}/{asset.s3_object_key}" for asset in assets.values()],
            )
        )
        # Processing jobs fetch their code as an S3 prefix input, which lists the key first.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[f"arn:{self.partition}:s3:::{bucket}"],
                conditions={"StringEquals": {"s3:prefix": [asset.s3_object_key for asset in assets.values()]}},
            )
        )
        return {file_name: asset.s3_object_url for file_name, asset in assets.items()}


def _check_definition_shape(folder: str, definition: dict) -> None:
    """Refuse a definition.json whose steps do not fit SageMaker's API model, naming each offending path."""
    # Imported here: it loads botocore's client machinery (about 0.15 s), which a synth of pipeline.py folders
    # alone never needs.
    from pipeline_code import definition_shape

    found = definition_shape.problems(definition)
    if found:
        raise PipelineFolderError(
            f"pipeline_code/{folder}/{render.DEFINITION_FILE} does not fit SageMaker's API model "
            f"({len(found)} problem{'s' if len(found) > 1 else ''}):\n  " + "\n  ".join(found)
        )


def _registered_images(definition: dict) -> list[str]:
    """The container images of every model a pipeline definition registers, in order."""
    images: list[str] = []
    if isinstance(definition, dict):
        for container in definition.get("InferenceSpecification", {}).get("Containers", []):
            images.append(container["Image"])
        for value in definition.values():
            images.extend(_registered_images(value))
    elif isinstance(definition, list):
        for item in definition:
            images.extend(_registered_images(item))
    return images


def _repository_arn(image: str, partition: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`` -> the repository's ARN."""
    registry, repository = image.split("/", 1)
    account, _, _, region = registry.split(".")[:4]
    name = repository.split("@")[0].split(":")[0]
    return f"arn:{partition}:ecr:{region}:{account}:repository/{name}"
