"""What a pipeline definition is built from. The CDK app fills it in at synth time."""

from __future__ import annotations

import functools
import importlib.metadata
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Where in the artifacts bucket every pipeline keeps its step outputs and models: ``<prefix><pipeline name>/``.
ARTIFACTS_PREFIX = "pipelines/"
# Where the environment's MLflow (serverless app or tracking server), if it has one, keeps run artifacts in the artifacts bucket.
MLFLOW_ARTIFACTS_PREFIX = "mlflow/"
# Where batch inference runs write their results in the artifacts bucket (every output_uri lies under it), and
# their intermediate files: the only places the batch jobs may write.
BATCH_INFERENCE_OUTPUT_PREFIX = "batch-inference/output/"
BATCH_INFERENCE_WORK_PREFIX = "batch-inference/work/"
# Where the serving container finds the inference code: the model artifact carries it, so a served model
# reads nothing but its artifact.
INFERENCE_CODE_DIR = "/opt/ml/model/code"
# SageMaker's prebuilt scikit-learn framework image that the step scripts run on; its version matches
# scikit-learn in requirements-dev.txt, which the step scripts' tests run with.
SKLEARN_VERSION = "1.9-0"


@functools.cache
def _scikit_learn_image_table() -> dict:
    """The SageMaker SDK's bundled table of scikit-learn images, read without importing the SDK (seconds of
    imports on every synth)."""
    table = importlib.metadata.distribution("sagemaker-core").locate_file("sagemaker/core/image_uri_config/sklearn.json")
    return json.loads(Path(str(table)).read_text())


@functools.cache
def scikit_learn_image_regions() -> frozenset[str]:
    """The regions where the SDK knows the scikit-learn image, for training and for serving; a region
    missing here would otherwise fail deep inside the SDK while a pipeline is rendered."""
    scopes = _scikit_learn_image_table()
    return frozenset.intersection(
        *(frozenset(scopes[scope]["versions"][SKLEARN_VERSION]["registries"]) for scope in ("training", "inference"))
    )


def scikit_learn_image_uri(region: str) -> str:
    """What ``image_uris.retrieve("sklearn", region, version=SKLEARN_VERSION)`` answers."""
    version = _scikit_learn_image_table()["training"]["versions"][SKLEARN_VERSION]
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{version['registries'][region]}.dkr.ecr.{region}.{domain}/{version['repository']}:{SKLEARN_VERSION}-cpu-py3"


@dataclass(frozen=True)
class PipelineSettings:
    """Inputs to ``build_pipeline``.

    At synth time, values only known at deploy time (the role ARN, bucket and key names, the scripts' S3
    locations) are ``${Placeholder}`` strings that the pipeline upsert substitutes before it calls
    SageMaker; see ``PLACEHOLDERS``.
    """

    pipeline_name: str
    region: str
    role_arn: str
    artifacts_bucket: str
    kms_key_arn: str
    model_package_group_name: str
    training_data_uri: str
    # Step script file name (e.g. "preprocess.py", "sourcedir.tar.gz") -> its S3 URI.
    script_uris: Mapping[str, str] = field(default_factory=dict)
    processing_instance_type: str = "ml.m5.large"
    training_instance_type: str = "ml.m5.large"
    auc_threshold: float = 0.8
    label_column: str = "target"
    # VpcOnly environments: every job runs in these subnets with these security groups (empty: no VPC).
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    # The environment's SageMaker managed MLflow (a serverless MLflow App's or a tracking server's ARN), if it
    # has one: the pipeline and its training step log to it. Empty: runs are tracked in SageMaker Experiments only.
    mlflow_arn: str = ""


def placeholder(name: str) -> str:
    """The marker the pipeline upsert replaces with the deploy-time value called `name`."""
    return "${" + name + "}"
