"""What each pipeline_code/ folder is rendered with in an environment, in one place: the model-build stack
deploys this rendering and the `mlops` command renders the same to compare with what is live.

Deploy-time values (role, buckets, key, subnets, MLflow) are ``${Name}`` placeholders that the
pipeline upsert fills in; `deploy_time_values()` names them.
"""

from __future__ import annotations

from collections.abc import Mapping

from config.naming import pipeline_name
from config.settings import ModelBuild
from pipeline_code.settings import PipelineSettings, placeholder

JOB_SECURITY_GROUP = "JobSecurityGroup"
# The environment's MLflow App or tracking server.
MLFLOW = "MlflowArn"


def job_subnet_names(count: int) -> list[str]:
    """The placeholders of the subnets jobs run in (none outside a VPC)."""
    return [f"JobSubnet{index}" for index in range(count)]


def pipeline_settings(
    *,
    prefix: str,
    model_build: ModelBuild,
    folder: str,
    partition: str,
    account: str,
    region: str,
    script_uris: Mapping[str, str],
    job_subnet_count: int,
    model_package_group: str,
) -> PipelineSettings:
    """The settings `folder` is rendered with; `job_subnet_count` subnets when jobs run in the VPC, else 0;
    its pipeline registers into `model_package_group`, its model's."""
    job_network = {}
    if job_subnet_count:
        job_network = {
            "subnet_ids": tuple(placeholder(name) for name in job_subnet_names(job_subnet_count)),
            "security_group_ids": (placeholder(JOB_SECURITY_GROUP),),
        }
    tracking = {"mlflow_arn": placeholder(MLFLOW)} if model_build.mlflow.enabled else {}
    return PipelineSettings(
        pipeline_name=pipeline_name(prefix, folder),
        region=region,
        role_arn=f"arn:{partition}:iam::{account}:role/{placeholder('PipelineRoleName')}",
        artifacts_bucket=placeholder("ArtifactsBucket"),
        kms_key_arn=placeholder("KmsKeyArn"),
        model_package_group_name=model_package_group,
        training_data_uri=f"s3://{placeholder('DataBucket')}/{model_build.trigger(folder).prefix or model_build.training_prefix}",
        script_uris=script_uris,
        processing_instance_type=model_build.processing_instance_type,
        training_instance_type=model_build.training_instance_type,
        auc_threshold=model_build.auc_threshold,
        label_column=model_build.label_column,
        **job_network,
        **tracking,
    )
