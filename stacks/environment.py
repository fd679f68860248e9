"""One environment (dev, staging or prod): a Stage holding the same stacks, configured by its YAML file."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from config import ENVIRONMENTS, ConfigError, EnvironmentConfig, load_environment, load_environments
from config.naming import DRAFT_ENVIRONMENTS, batch_inference_name, deployer_name, model_artifact_prefixes, model_package_group_name
from stacks.batch_inference import BatchInferenceStack
from stacks.deployment import DeploymentStack, captured_data_prefix, monitoring_paths
from stacks.model_build import ModelBuildStack, PromotionTarget
from stacks.network import NetworkStack
from stacks.operations import OperationsStack
from stacks.storage import PromotionSource, ServedModelPaths, StorageStack
from stacks.studio import StudioStack


class EnvironmentStage(cdk.Stage):
    """All stacks of one environment. Deploy it with ``cdk deploy '<env>/*'``."""

    def __init__(self, scope: Construct, config: EnvironmentConfig, render_cache: Path, environments: dict[str, EnvironmentConfig] | None = None) -> None:
        super().__init__(scope, config.name, env=cdk.Environment(account=config.account, region=config.region))
        self.config = config
        cdk.Tags.of(self).add("project", config.project)
        cdk.Tags.of(self).add("environment", config.name)

        protected = {"termination_protection": config.termination_protection}
        models = config.model_units()
        promoted_from, promoted_to = promotion_paths(config, environments or {config.name: config})
        self.network = NetworkStack(self, "network", network=config.network, mlflow=config.model_build.mlflow.enabled, **protected)
        self.storage = StorageStack(
            self,
            "storage",
            prefix=config.prefix,
            storage=config.storage,
            served_models=tuple(
                ServedModelPaths(
                    model=model.name,
                    environment_names=model.environment_names,
                    artifact_prefixes=tuple(model_artifact_prefixes(config.prefix, model.name, model.pipelines)),
                    captured_data=captured_data_prefix(model.stem) if model.deployment.data_capture.enabled else None,
                )
                for model in models.values()
            ),
            mlflow=config.model_build.mlflow.enabled,
            monitoring=tuple(
                monitoring_paths(model.stem, model.deployment.monitoring) for model in models.values() if model.deployment.monitoring.enabled
            ),
            promoted_from=promoted_from,
            # The release managers start promotions into the environment, as they answer its approvals.
            promoter_role_names=config.deployment.approver_role_names,
            **protected,
        )
        self.model_build = ModelBuildStack(
            self,
            "model-build",
            **protected,
            prefix=config.prefix,
            model_build=config.model_build,
            models=models,
            data_bucket=self.storage.data_bucket,
            artifacts_bucket=self.storage.artifacts_bucket,
            key=self.storage.key,
            data_access_policy=self.storage.data_access_policy,
            subnet_ids=self.network.subnet_ids,
            security_group_id=self.network.studio_security_group.security_group_id,
            render_cache=render_cache,
            retain_model_registry=config.retain_data,
            jobs_in_vpc=self.network.vpc_only,
            mlflow_artifact_access=self.storage.mlflow_artifact_access_policy,
            promoted_to=promoted_to,
        )
        self.studio = StudioStack(
            self,
            "studio",
            **protected,
            prefix=config.prefix,
            studio=config.studio,
            vpc_only=self.network.vpc_only,
            vpc=self.network.vpc,
            subnet_ids=self.network.subnet_ids,
            security_group=self.network.studio_security_group,
            key=self.storage.key,
            data_access_policy=self.storage.data_access_policy,
            retain_domain=config.retain_data,
            pipeline_roles=list(self.model_build.pipeline_roles.values()),
            draft_pipelines=config.name in DRAFT_ENVIRONMENTS,
            mlflow=self.model_build.mlflow,
            image_repositories=[self.storage.batch_inference_repository, self.storage.processing_repository, self.storage.inference_repository],
            build_context_policies=(self.storage.build_context_upload_policy, self.storage.build_context_read_policy),
        )
        pipeline_names = [settings.pipeline_name for settings in self.model_build.pipeline_settings.values()]
        self.deployment = DeploymentStack(
            self,
            "deployment",
            **protected,
            prefix=config.prefix,
            models=models,
            model_package_group_names={name: group.model_package_group_name for name, group in self.model_build.model_package_groups.items()},
            key=self.storage.key,
            artifacts_bucket=self.storage.artifacts_bucket,
            served_model_access_policies=self.storage.served_model_access_policies,
            release_records_policy=self.storage.release_records_policy,
            image_repository_arns=self.model_build.serving_image_repository_arns,
            subnet_ids=self.network.subnet_ids,
            security_group_id=self.network.studio_security_group.security_group_id,
            delete_endpoint_with_stack=not config.retain_data,
            monitoring_access_policy=self.storage.monitoring_access_policy,
            subnets_for_jobs=self.network.vpc_only,
            forward_releases_to={name: [t for t in targets if t.automatic] for name, targets in promoted_to.items()},
        )
        self.operations = OperationsStack(
            self,
            "operations",
            **protected,
            prefix=config.prefix,
            environment=config.name,
            notifications=config.notifications,
            topic=self.deployment.topic,
            key=self.storage.key,
            evaluation_reports_policy=self.storage.evaluation_reports_policy,
            pipeline_names=pipeline_names,
            models=list(self.deployment.served.values()),
            batch_workflow_name=batch_inference_name(config.prefix),
            alarm_names=[*self.deployment.alarm_names, self.model_build.triggers.dead_letter_alarm_name, *self.storage.alarm_names],
        )
        self.batch_inference = BatchInferenceStack(
            self,
            "batch-inference",
            **protected,
            prefix=config.prefix,
            batch_inference=config.batch_inference,
            # An execution names the model it scores; without a name, the first (the one keeping the environment's names).
            model_package_group_names={name: group.model_package_group_name for name, group in self.model_build.model_package_groups.items()},
            artifacts_bucket=self.storage.artifacts_bucket,
            code_uri=self.storage.batch_inference_code_uri,
            access_policy=self.storage.batch_inference_access_policy,
            key=self.storage.key,
            repository=self.storage.batch_inference_repository,
            subnet_ids=self.network.subnet_ids,
            security_group_id=self.network.studio_security_group.security_group_id,
            jobs_in_vpc=self.network.vpc_only,
        )


def promotion_paths(config: EnvironmentConfig, environments: dict[str, EnvironmentConfig]) -> tuple[dict[str, PromotionSource], dict[str, list[PromotionTarget]]]:
    """Where each model of `config` that takes versions from another environment takes them from, and which
    environments take each of its models."""
    units = config.model_units()
    promoted_from = {}
    for unit in units.values():
        if unit.source != "train" and unit.promote_from in environments:
            source = environments[unit.promote_from]
            stem = source.model_units()[unit.name].stem
            promoted_from[unit.name] = PromotionSource(
                source.name, source.account, source.region, source.prefix, model_package_group_name(stem), model_package_group_name(unit.stem),
                deployer_name(stem), unit.auto_promote,
            )
    promoted_to: dict[str, list[PromotionTarget]] = {}
    for target in environments.values():
        for unit in target.model_units().values():
            if unit.source != "train" and unit.promote_from == config.name:
                promoted_to.setdefault(unit.name, []).append(PromotionTarget(target.name, target.account, target.region, target.prefix, unit.auto_promote))
    return promoted_from, promoted_to


# Every CloudFormation resource records the stack that created it, for `cdk` to point at the line of code
# behind a failed deployment. In a Python app that stack holds only jsii and node frames ("no user code"),
# so capturing it is work without information; `cdk --debug` still captures it.
_APP_CONTEXT = {"aws:cdk:disable-creation-stack-traces": True}


def new_app(*, outdir: str | None = None, context: dict | None = None) -> cdk.App:
    """The App that `cdk synth`, the tests and `make bench` synthesize the environments in.

    aws-cdk-lib's built-in CloudFormation validation is off: it costs seconds per synth and repeats what
    cfn-lint checks on every template in `make test`; cdk-nag still runs on every synth.
    """
    return cdk.App(outdir=outdir, context={**_APP_CONTEXT, **(context or {})}, builtin_cloud_formation_validation=False)


def selected_environments(requested: object) -> tuple[str, ...]:
    """The environments a synth constructs: the one named by the `env` context value, or all of them.

    A name that is no environment fails here, before anything is constructed: the CDK CLI would otherwise
    select no stacks and report success having done nothing.
    """
    if requested is None:
        return ENVIRONMENTS
    if requested not in ENVIRONMENTS:
        raise ConfigError(f"-c env={requested}: not an environment; the environments are: {', '.join(ENVIRONMENTS)}")
    return (requested,)


def add_environments(
    app: cdk.App, config_dir: Path, render_cache: Path, names: tuple[str, ...] = ENVIRONMENTS
) -> list[EnvironmentStage]:
    """Add one Stage per environment, with cdk-nag's AwsSolutions checks run on every synth.

    Pipeline definitions are rendered into `render_cache` and reused while their inputs are unchanged.
    """
    configs, environments = environment_configs(config_dir, names)
    stages = [EnvironmentStage(app, config, render_cache, environments) for config in configs]
    enable_compliance_checks(app)
    return stages


def environment_configs(config_dir: Path, names: tuple[str, ...]) -> tuple[list[EnvironmentConfig], dict[str, EnvironmentConfig]]:
    """The named environments' configs, and every environment's by name, each file read once.

    Promotion grants name the environments on either side, so each stage sees every environment's config.
    """
    environments: dict[str, EnvironmentConfig] = {}
    configs = load_environments(config_dir, names, loaded=environments)
    environments.update((name, load_environment(config_dir, name)) for name in ENVIRONMENTS if name not in environments)
    return configs, environments


# Beside the cloud assembly: cdk.out/pipelines/<env>/<pipeline>.json.
PIPELINE_DEFINITIONS_DIR = "pipelines"


def write_pipeline_definitions(outdir: Path, stages: list[EnvironmentStage]) -> None:
    """Every environment's pipeline definitions, indented, under names that say what they are.

    The upserts deploy them as assets named by content hash, so a pipeline change shows in `cdk diff` as
    a new hash only; these files are what a reviewer reads, and diffs against a previous synth.
    """
    for stage in stages:
        folder = outdir / PIPELINE_DEFINITIONS_DIR / stage.config.name
        folder.mkdir(parents=True, exist_ok=True)
        for name, definition in stage.model_build.pipeline_definitions.items():
            (folder / f"{name}.json").write_text(json.dumps(definition, indent=2, sort_keys=True) + "\n")


def enable_compliance_checks(app: cdk.App) -> None:
    """Fail synth on any unacknowledged cdk-nag AwsSolutions finding.

    Acknowledgements, with their reasons, are recorded in each stack's ``*.metadata.json`` in cdk.out.
    """
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
