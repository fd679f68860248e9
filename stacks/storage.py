"""The environment's data plane: one KMS key, the S3 buckets and the ECR repositories."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from config.naming import (
    promotable_object_patterns,
    promoted_artifacts_prefix,
    promoter_policy_name,
    promotion_bus_name,
    promotion_dead_letter_alarm_name,
    promotion_function_name,
    promotion_role_name,
)
from config.settings import Storage
from config.naming import RELEASE_RECORDS_PREFIX
from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources
from mlops_constructs.encrypted_bucket import EncryptedBucket
from mlops_constructs.model_promotion import ModelPromotion, PromotedModel
from mlops_constructs.sagemaker_execution_role import image_pull
from pipeline_code.settings import ARTIFACTS_PREFIX, BATCH_INFERENCE_OUTPUT_PREFIX, BATCH_INFERENCE_WORK_PREFIX, MLFLOW_ARTIFACTS_PREFIX


@dataclass(frozen=True)
class MonitoringPaths:
    """Key prefixes in the artifacts bucket that a data-quality monitor reads (captured traffic, its baseline)
    and writes (its reports)."""

    captured_data: str
    reports: str
    baseline: str | None = None

BATCH_INFERENCE_CODE = Path(__file__).resolve().parent.parent / "pipeline_code" / "batch_inference"
BATCH_INFERENCE_SCRIPTS = ("preprocessing.py", "predict.py", "postprocessing.py")
# Where the batch inference scripts are delivered in the artifacts bucket: the only code the workflow runs.
BATCH_INFERENCE_CODE_PREFIX = "batch-inference/code/"
# Where the Studio image-build CLI (sm-docker, given the artifacts bucket) puts each zipped build context: at
# the bucket's root, under a name of its own choosing.
STUDIO_BUILD_CONTEXT_PREFIX = "codebuild-sagemaker-container-"
# A run's intermediate files are of no use once it has ended; kept longer than the longest run config allows
# (three jobs of at most 9 days each).
BATCH_INFERENCE_WORK_RETENTION = cdk.Duration.days(30)


@dataclass(frozen=True)
class ServedModelPaths:
    """What one model's served versions read and write in the artifacts bucket: its artifacts (which carry the
    inference code) under `artifact_prefixes`, and its endpoint's captured traffic under `captured_data`, if it
    captures any. Another model's are not its."""

    model: str
    # The model keeping the environment's names keeps the policy's construct ID a one-model environment had.
    environment_names: bool
    artifact_prefixes: tuple[str, ...]
    captured_data: str | None = None


@dataclass(frozen=True)
class PromotionSource:
    """Where a model of this environment is promoted from: the source environment and its model's group
    there, and the model's group here."""

    environment: str
    account: str
    region: str
    prefix: str
    group_name: str
    target_group_name: str
    # Automatic promotion: every version the source's deployer (this name) announces live is promoted.
    deployer_name: str
    automatic: bool


class StorageStack(cdk.Stack):
    """KMS key, buckets (training data, artifacts, access logs) and ECR repositories.

    With ``storage.removal: retain`` (prod) a ``cdk destroy`` deletes none of them, so no data is lost.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        storage: Storage,
        served_models: tuple[ServedModelPaths, ...] = (),
        mlflow: bool = False,
        monitoring: tuple[MonitoringPaths, ...] = (),
        promoted_from: dict[str, PromotionSource] | None = None,
        promoter_role_names: list[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retain = storage.removal == "retain"
        removal_policy = cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY

        self.key = kms.Key(
            self,
            "Key",
            description=f"{prefix}: S3 data, ECR images, Studio home EFS",
            alias=f"alias/{prefix}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )

        # Server access logs can only be delivered to a bucket encrypted with S3-managed keys (SSE-S3):
        # S3's log delivery cannot use a customer-managed KMS key, so this one bucket is not on `key`.
        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-logs",
                    expiration=cdk.Duration.days(storage.access_log_retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
            auto_delete_objects=not retain,
        )
        acknowledge(
            self.access_logs_bucket,
            "AwsSolutions-S1",
            "This is the access-log target bucket; logging its own access into itself would loop.",
        )

        noncurrent = cdk.Duration.days(storage.noncurrent_version_expiration_days)
        # Training data: uploads under the training prefix start the training pipeline via EventBridge.
        self.data_bucket = EncryptedBucket(
            self,
            "TrainingData",
            key=self.key,
            access_logs=self.access_logs_bucket,
            retain=retain,
            noncurrent_version_expiration=noncurrent,
            event_bridge=True,
        ).bucket
        # Model artifacts and pipeline step outputs.
        self.artifacts_bucket = EncryptedBucket(
            self,
            "Artifacts",
            key=self.key,
            access_logs=self.access_logs_bucket,
            retain=retain,
            noncurrent_version_expiration=noncurrent,
        ).bucket
        self.artifacts_bucket.add_lifecycle_rule(
            id="expire-batch-inference-work",
            prefix=BATCH_INFERENCE_WORK_PREFIX,
            expiration=BATCH_INFERENCE_WORK_RETENTION,
            noncurrent_version_expiration=cdk.Duration.days(1),
        )

        # The function aws-cdk-lib adds to switch on the data bucket's EventBridge notifications.
        notifications_handler = next(
            child for child in self.node.children if child.node.id.startswith("BucketNotificationsHandler")
        )
        acknowledge(
            notifications_handler,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "aws-cdk-lib's bucket-notifications function uses the AWS managed basic execution role for its logs.",
        )

        self.processing_repository = self._repository("ProcessingImages", storage, removal_policy)
        self.inference_repository = self._repository("InferenceImages", storage, removal_policy)
        # The batch inference workflow's custom container: builders push it (DataAccess: Studio's sm-docker;
        # the CodeBuild project), and of the runtime roles only the workflow's processing role pulls it.
        self.batch_inference_repository = self._repository("BatchInferenceImages", storage, removal_policy)
        self.data_access_policy = self._data_access_policy(prefix)
        # One per model: a model's endpoint reads only its own artifacts and writes only its own captured traffic.
        self.served_model_access_policies = {paths.model: self._served_model_access_policy(prefix, paths) for paths in served_models}
        self.mlflow_artifact_access_policy = self._mlflow_artifact_access_policy(prefix) if mlflow else None
        self.monitoring_access_policy = self._monitoring_access_policy(prefix, monitoring) if monitoring else None
        self.evaluation_reports_policy = self._evaluation_reports_policy(prefix)
        self.release_records_policy = self._release_records_policy(prefix)
        self.batch_inference_access_policy = self._batch_inference_access_policy(prefix)
        self.build_context_upload_policy, self.build_context_read_policy = self._studio_build_context_policies(prefix)
        self.batch_inference_code_uri = self._deliver_batch_inference_code()
        # The storage stack's alarms by name, which the operations stack tells people about.
        self.alarm_names: list[str] = []
        self.promotion = self._promotion(prefix, promoted_from or {}, promoter_role_names or [])

        # Bucket names are generated; these outputs are where people find them (`make outputs ENV=<env>`).
        cdk.CfnOutput(self, "TrainingDataBucketName", value=self.data_bucket.bucket_name, description="Training data; see the model-build stack's *DataUri outputs for the upload prefixes")
        cdk.CfnOutput(self, "ArtifactsBucketName", value=self.artifacts_bucket.bucket_name, description="Pipeline outputs, model artifacts, batch inference code and results")

    def _data_access_policy(self, prefix: str) -> iam.ManagedPolicy:
        """Read/write on this environment's buckets and images, for every role that does ML work here.

        A managed policy owned by this stack: roles in other stacks attach it, so their stacks depend on
        this one and not the other way round, and its ARNs stay within this stack.
        """
        buckets = [self.data_bucket, self.artifacts_bucket]
        repositories = [self.processing_repository, self.inference_repository, self.batch_inference_repository]
        objects = [bucket.arn_for_objects("*") for bucket in buckets]
        policy = iam.ManagedPolicy(
            self,
            "DataAccess",
            description=f"{prefix}: read and write this environment's buckets and container images",
            statements=[
                iam.PolicyStatement(
                    sid="ListBuckets",
                    actions=["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
                    resources=[bucket.bucket_arn for bucket in buckets],
                ),
                iam.PolicyStatement(
                    sid="ReadWriteObjects",
                    actions=[
                        "s3:GetObject",
                        "s3:GetObjectVersion",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    resources=objects,
                ),
                # Every batch run executes the scripts under the code prefix; only a deploy changes them.
                iam.PolicyStatement(
                    sid="NeverChangeTheDeliveredBatchCode",
                    effect=iam.Effect.DENY,
                    actions=["s3:PutObject", "s3:DeleteObject"],
                    resources=[self.artifacts_bucket.arn_for_objects(f"{BATCH_INFERENCE_CODE_PREFIX}*")],
                ),
                # A release record is what lets another environment promote a version: only the deployer writes one.
                iam.PolicyStatement(
                    sid="NeverWriteReleaseRecords",
                    effect=iam.Effect.DENY,
                    actions=["s3:PutObject", "s3:DeleteObject"],
                    resources=[self.artifacts_bucket.arn_for_objects(f"{RELEASE_RECORDS_PREFIX}*")],
                ),
                iam.PolicyStatement(
                    sid="UseTheKeyThroughTheServicesThatHoldOurData",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[self.key.key_arn],
                    # Only as the services that keep our data use it on the caller's behalf: S3 (the buckets),
                    # ECR (the images), SageMaker (job and Studio space volumes) and EFS (Studio's home file
                    # system). Nobody sends data to KMS to be encrypted or decrypted directly.
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": [self._via(s) for s in ("s3", "ecr", "sagemaker", "elasticfilesystem")]
                        }
                    },
                ),
                _let_sagemaker_encrypt_job_volumes(self.key, self._via("sagemaker")),
                iam.PolicyStatement(
                    sid="PullAndPushImages",
                    actions=[
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:DescribeImages",
                        "ecr:InitiateLayerUpload",
                        "ecr:UploadLayerPart",
                        "ecr:CompleteLayerUpload",
                        "ecr:PutImage",
                    ],
                    resources=[repository.repository_arn for repository in repositories],
                ),
                iam.PolicyStatement(
                    sid="LogInToEcr",
                    actions=["ecr:GetAuthorizationToken"],
                    resources=["*"],
                ),
            ],
        )
        acknowledge_wildcard_resources(
            policy, objects, "Object-level access to this environment's own buckets; keys are not known in advance."
        )
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", "ecr:GetAuthorizationToken has no resource-level permissions.")
        return policy

    def _served_model_access_policy(self, prefix: str, paths: ServedModelPaths) -> iam.ManagedPolicy:
        """For one model's served versions: read the model's artifacts (which carry its inference code) and the
        inference images, and decrypt both. Owned here for the same reason as DataAccess.

        The one thing it writes is the model's endpoint's captured traffic, if it captures any: SageMaker
        writes data capture files as the model's execution role, encrypted with the key through S3.
        """
        artifacts = [self.artifacts_bucket.arn_for_objects(f"{artifact_prefix}*") for artifact_prefix in paths.artifact_prefixes]
        capture_files = [self.artifacts_bucket.arn_for_objects(f"{paths.captured_data}*")] if paths.captured_data else []
        captured = [
            iam.PolicyStatement(sid="WriteCapturedTraffic", actions=["s3:PutObject"], resources=capture_files),
            iam.PolicyStatement(
                sid="EncryptCapturedTraffic",
                actions=["kms:GenerateDataKey"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": self._via("s3")}},
            ),
        ] if capture_files else []
        policy = iam.ManagedPolicy(
            self,
            "ServedModelAccess" if paths.environment_names else f"ServedModelAccess-{paths.model}",
            description=(
                f"{prefix}: read model artifacts and pull inference images, for served models"
                if paths.environment_names
                else f"{prefix}: read model {paths.model}'s artifacts and pull inference images, for its served versions"
            ),
            statements=[
                iam.PolicyStatement(sid="ReadModelArtifacts", actions=["s3:GetObject"], resources=artifacts),
                iam.PolicyStatement(
                    sid="DecryptArtifactsAndImages",
                    actions=["kms:Decrypt"],
                    resources=[self.key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": [self._via(s) for s in ("s3", "ecr")]}},
                ),
                image_pull("PullInferenceImages", [self.inference_repository.repository_arn]),
                *captured,
            ],
        )
        acknowledge_wildcard_resources(
            policy, artifacts, "The model's pipelines write an artifact per execution under their own prefix; read-only."
        )
        if capture_files:
            acknowledge_wildcard_resources(
                policy,
                capture_files,
                "SageMaker names capture files per variant and hour under the endpoint's capture prefix; write-only.",
            )
        return policy

    def _release_records_policy(self, prefix: str) -> iam.ManagedPolicy:
        """For the canary deployer: write its release records (``releases/<group>/v<version>.json``), which a
        promotion to another environment requires, and nothing else; the key only through S3. Owned here, with
        the bucket, so its wildcard is acknowledged where the bucket's ARN is known."""
        records = self.artifacts_bucket.arn_for_objects(f"{RELEASE_RECORDS_PREFIX}*")
        policy = iam.ManagedPolicy(
            self,
            "ReleaseRecordsWrite",
            description=f"{prefix}: write the deployer's release records, for promotions to other environments",
            statements=[
                iam.PolicyStatement(sid="WriteReleaseRecords", actions=["s3:PutObject"], resources=[records]),
                iam.PolicyStatement(
                    sid="EncryptReleaseRecords",
                    actions=["kms:GenerateDataKey"],
                    resources=[self.key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": self._via("s3")}},
                ),
            ],
        )
        acknowledge_wildcard_resources(policy, [records], "One record per model package group and version, named when the version goes live; write-only.")
        return policy

    def _mlflow_artifact_access_policy(self, prefix: str) -> iam.ManagedPolicy:
        """For the MLflow tracking server: its artifact store, a prefix of the artifacts bucket, and nothing else."""
        return self._artifacts_prefix_policy(
            "MlflowArtifactAccess",
            f"{prefix}: the MLflow tracking server's artifact store",
            read=[MLFLOW_ARTIFACTS_PREFIX],
            write=[MLFLOW_ARTIFACTS_PREFIX],
            key_services=["s3"],
            reason="MLflow names artifact objects per experiment and run, under the server's own prefix.",
        )

    def _monitoring_access_policy(self, prefix: str, monitors: tuple[MonitoringPaths, ...]) -> iam.ManagedPolicy:
        """For the data-quality monitors: read the captured traffic and the baselines, write their reports (and
        their jobs' volumes, encrypted through SageMaker)."""
        return self._artifacts_prefix_policy(
            "DataQualityMonitoringAccess",
            f"{prefix}: what the data-quality monitor reads and writes",
            read=[p for paths in monitors for p in (paths.captured_data, paths.baseline) if p],
            write=[paths.reports for paths in monitors],
            key_services=["s3", "sagemaker"],
            reason="Captured traffic, baseline and reports are files named per hour and run under fixed prefixes.",
        )

    def _artifacts_prefix_policy(
        self, construct_id: str, description: str, *, read: list[str], write: list[str], key_services: list[str], reason: str
    ) -> iam.ManagedPolicy:
        """Reading objects under the `read` prefixes and writing under the `write` prefixes of the artifacts
        bucket, with the key used only through `key_services`."""
        readable = [self.artifacts_bucket.arn_for_objects(f"{p}*") for p in read]
        writable = [self.artifacts_bucket.arn_for_objects(f"{p}*") for p in write]
        policy = iam.ManagedPolicy(
            self,
            construct_id,
            description=description,
            statements=[
                iam.PolicyStatement(sid="ListTheArtifactsBucket", actions=["s3:ListBucket", "s3:GetBucketLocation"], resources=[self.artifacts_bucket.bucket_arn]),
                iam.PolicyStatement(sid="ReadObjects", actions=["s3:GetObject"], resources=readable),
                iam.PolicyStatement(sid="WriteObjects", actions=["s3:PutObject"], resources=writable),
                iam.PolicyStatement(
                    sid="UseTheKeyThroughServices",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[self.key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": [self._via(service) for service in key_services]}},
                ),
                *([_let_sagemaker_encrypt_job_volumes(self.key, self._via("sagemaker"))] if "sagemaker" in key_services else []),
            ],
        )
        acknowledge_wildcard_resources(policy, [*dict.fromkeys([*readable, *writable])], reason)
        return policy

    def _studio_build_context_policies(self, prefix: str) -> tuple[iam.ManagedPolicy, iam.ManagedPolicy]:
        """Studio users upload and delete sm-docker's build contexts; the image build role reads them. Nothing
        else of the artifacts bucket."""
        contexts = self.artifacts_bucket.arn_for_objects(f"{STUDIO_BUILD_CONTEXT_PREFIX}*")
        policies = []
        for construct_id, description, actions, key_actions in (
            ("BuildContextUpload", "Studio users upload sm-docker build contexts", ["s3:PutObject", "s3:DeleteObject"], ["kms:GenerateDataKey", "kms:Decrypt"]),
            ("BuildContextRead", "the Studio image build reads sm-docker build contexts", ["s3:GetObject", "s3:GetObjectVersion"], ["kms:Decrypt"]),
        ):
            policy = iam.ManagedPolicy(
                self,
                construct_id,
                description=f"{prefix}: {description}",
                statements=[
                    iam.PolicyStatement(sid="BuildContexts", actions=actions, resources=[contexts]),
                    iam.PolicyStatement(
                        sid="UseTheKeyThroughS3", actions=key_actions, resources=[self.key.key_arn], conditions={"StringEquals": {"kms:ViaService": self._via("s3")}}
                    ),
                ],
            )
            acknowledge_wildcard_resources(policy, [contexts], "sm-docker names each build context at random, under this prefix only.")
            policies.append(policy)
        return policies[0], policies[1]

    def _evaluation_reports_policy(self, prefix: str) -> iam.ManagedPolicy:
        """Read-only, for notifications: the evaluation reports the pipelines write, and nothing else of the
        artifacts (reports are at pipelines/<pipeline>/<execution>/<step>/<output>/evaluation.json)."""
        reports = self.artifacts_bucket.arn_for_objects(f"{ARTIFACTS_PREFIX}{prefix}-*/evaluation.json")
        policy = iam.ManagedPolicy(
            self,
            "EvaluationReportsAccess",
            description=f"{prefix}: read the evaluation reports of the pipelines",
            statements=[
                iam.PolicyStatement(sid="ReadEvaluationReports", actions=["s3:GetObject"], resources=[reports]),
                iam.PolicyStatement(
                    sid="DecryptEvaluationReports", actions=["kms:Decrypt"], resources=[self.key.key_arn], conditions={"StringEquals": {"kms:ViaService": self._via("s3")}}
                ),
            ],
        )
        acknowledge_wildcard_resources(policy, [reports], "Pipelines write an evaluation report per execution under their own prefix; read-only.")
        return policy

    def _batch_inference_access_policy(self, prefix: str) -> iam.ManagedPolicy:
        """For the batch inference jobs only: read inputs, code and model artifacts in both buckets; write only
        under the batch output and work prefixes of the artifacts bucket, so that no job can change registered
        model artifacts (which endpoints load), the delivered batch code (which every run executes) or training
        data (whose uploads start pipelines); use the key through S3 and SageMaker; pull the batch inference
        image. Owned here for the same reason as DataAccess."""
        readable = [bucket.arn_for_objects("*") for bucket in (self.data_bucket, self.artifacts_bucket)]
        writable = [self.artifacts_bucket.arn_for_objects(f"{p}*") for p in (BATCH_INFERENCE_OUTPUT_PREFIX, BATCH_INFERENCE_WORK_PREFIX)]
        policy = iam.ManagedPolicy(
            self,
            "BatchInferenceAccess",
            description=f"{prefix}: what the batch inference jobs read, write and pull",
            statements=[
                iam.PolicyStatement(
                    sid="ListTheBuckets",
                    actions=["s3:ListBucket", "s3:GetBucketLocation"],
                    resources=[self.data_bucket.bucket_arn, self.artifacts_bucket.bucket_arn],
                ),
                iam.PolicyStatement(sid="ReadInputsCodeAndModels", actions=["s3:GetObject"], resources=readable),
                iam.PolicyStatement(
                    sid="WriteOnlyBatchOutputsAndWorkFiles",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                    resources=writable,
                ),
                iam.PolicyStatement(
                    sid="UseTheKeyThroughS3AndSageMaker",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[self.key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": [self._via(s) for s in ("s3", "sagemaker")]}},
                ),
                image_pull("PullTheBatchInferenceImage", [self.batch_inference_repository.repository_arn]),
            ],
        )
        acknowledge_wildcard_resources(
            policy, [*readable, *writable], "Batch inputs, outputs and model artifacts are named per run inside this environment's buckets."
        )
        return policy

    def _promotion(self, prefix: str, sources: dict[str, PromotionSource], promoter_role_names: list[str]) -> ModelPromotion | None:
        """What promotes versions of the models config takes from another environment (`mlops model promote`):
        copies into the artifacts bucket, registered in each model's group; and the policy that lets the roles
        `promoter_role_names` start it."""
        if not sources:
            return None
        promotion = ModelPromotion(
            self,
            "ModelPromotion",
            role_name=promotion_role_name(prefix),
            function_name=promotion_function_name(prefix),
            bucket=self.artifacts_bucket,
            key=self.key,
            copies_prefix=promoted_artifacts_prefix(prefix),
            models=[
                PromotedModel(
                    name=name,
                    target_group_name=source.target_group_name,
                    source_environment=source.environment,
                    source_account=source.account,
                    source_region=source.region,
                    source_group_name=source.group_name,
                    source_object_patterns=tuple(promotable_object_patterns(source.prefix)),
                    # Every model of an environment has its deployer: only a version released there is promoted.
                    source_serves=True,
                )
                for name, source in sorted(sources.items())
            ],
        )
        promotion.promoter_policy(self, promoter_policy_name(prefix), promoter_role_names)
        automatic = sorted({(source.account, source.deployer_name) for source in sources.values() if source.automatic})
        if automatic:
            promotion.promote_automatically(
                bus_name=promotion_bus_name(prefix), dead_letter_alarm_name=promotion_dead_letter_alarm_name(prefix), sources=automatic
            )
            self.alarm_names.append(promotion_dead_letter_alarm_name(prefix))
        return promotion

    def _deliver_batch_inference_code(self) -> str:
        """Copy the batch inference scripts, side by side, under a fixed prefix of the artifacts bucket on every
        deploy (dropping stale ones); returns that prefix's URI, the only code the workflow runs."""
        scripts = s3_assets.Asset(
            self, "BatchInferenceScripts", path=str(BATCH_INFERENCE_CODE), exclude=["*", *(f"!{script}" for script in BATCH_INFERENCE_SCRIPTS)]
        )
        s3_deployment.BucketDeployment(
            self,
            "BatchInferenceCode",
            sources=[s3_deployment.Source.bucket(scripts.bucket, scripts.s3_object_key)],
            destination_bucket=self.artifacts_bucket,
            destination_key_prefix=BATCH_INFERENCE_CODE_PREFIX,
            prune=True,
            # A replaced deployment (a renamed construct) must not empty the prefix every batch run executes.
            retain_on_delete=True,
        )
        handler = next(child for child in self.node.children if child.node.id.startswith("Custom::CDKBucketDeployment"))
        acknowledge(
            handler,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "aws-cdk-lib's bucket-deployment function uses the AWS managed basic execution role for its logs.",
        )
        acknowledge(handler, "AwsSolutions-L1", "aws-cdk-lib pins the bucket-deployment function's runtime.")
        acknowledge_wildcard_resources(
            handler,
            [scripts.bucket.arn_for_objects("*"), self.artifacts_bucket.arn_for_objects("*")],
            "aws-cdk-lib's bucket deployment reads the CDK assets bucket and replaces the objects under its destination prefix.",
        )
        for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*", "kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge(
                handler,
                f"AwsSolutions-IAM5[Action::{action}]",
                "aws-cdk-lib's grants for the bucket deployment's copy: read the asset, replace the destination prefix, on this key.",
            )
        return f"s3://{self.artifacts_bucket.bucket_name}/{BATCH_INFERENCE_CODE_PREFIX}"

    def _via(self, service: str) -> str:
        return f"{service}.{self.region}.amazonaws.com"

    def _repository(self, construct_id: str, storage: Storage, removal_policy: cdk.RemovalPolicy) -> ecr.Repository:
        return ecr.Repository(
            self,
            construct_id,
            image_scan_on_push=True,
            # Immutable tags: a deployed image URI always means the same bytes.
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.KMS,
            encryption_key=self.key,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description="Drop untagged layers left by interrupted pushes",
                    rule_priority=1,
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=cdk.Duration.days(7),
                ),
                ecr.LifecycleRule(
                    description="Keep the newest images only",
                    rule_priority=2,
                    tag_status=ecr.TagStatus.ANY,
                    max_image_count=storage.ecr_max_image_count,
                ),
            ],
            removal_policy=removal_policy,
            empty_on_delete=removal_policy == cdk.RemovalPolicy.DESTROY,
        )


def _let_sagemaker_encrypt_job_volumes(key: kms.IKey, via_sagemaker: str) -> iam.PolicyStatement:
    """Starting a job with VolumeKmsKeyId: SageMaker creates a grant on the key, as the caller, for the job's
    storage volumes; the grant is only ever for an AWS resource and only through SageMaker."""
    return iam.PolicyStatement(
        sid="LetSageMakerEncryptJobVolumes",
        actions=["kms:CreateGrant"],
        resources=[key.key_arn],
        conditions={"StringEquals": {"kms:ViaService": via_sagemaker}, "Bool": {"kms:GrantIsForAWSResource": "true"}},
    )
