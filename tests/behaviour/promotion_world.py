"""Two accounts in moto for promotion tests: staging (the source) and prod (the target).

Each account is reached through credentials of its own (moto answers STS AssumeRole with credentials of the
role's account). The promotion function runs with the target's credentials; a SageMaker call on a resource
of the source account (DescribeModelPackage of the source version) is made with the source's credentials,
because moto keeps each account's resources apart and has no resource policies: whether AWS would allow
the cross-account call is decided separately, for every recorded call, by the policy evaluator against
the synthesized identity and resource policies (`decide`). S3 buckets are global in moto as in AWS, so
copies between the accounts' buckets happen as they would.

Names are those of the test-only promotion app (tests/promotion_app.py), so a recorded call names the
resources the evaluator knows.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore import xform_name
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from config.naming import promoted_artifacts_prefix, release_record_key
from functions.model_promotion import handler as promotion
from tests import promotion_app as app
from tests.behaviour import iam_calls
from tests.behaviour.iam_calls import WorldNames
from tests.behaviour.sfn_harness import Call
from tests.permissions import Decision

IMAGE = f"141502667606.dkr.ecr.{app.REGION}.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
EXECUTION = "pipelines/mlops-staging-training/exec-1"
ARTIFACT_KEY = f"{EXECUTION}/Train/pipelines-exec-1-Train/output/model.tar.gz"
REPORT_KEY = f"{EXECUTION}/Evaluate/evaluation/evaluation.json"
ARTIFACT_BYTES = b"model artifact bytes"
REPORT = {"binary_classification_metrics": {"auc": {"value": 0.93}}}
COPIES_PREFIX = promoted_artifacts_prefix(app.TARGET_PREFIX)


def session_in(account: str, role: str) -> boto3.Session:
    sts = boto3.client("sts", region_name=app.REGION)
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="promotion-test")["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=app.REGION,
    )


class _CrossAccountSageMaker:
    """The target's SageMaker client, except that a source version is described in the source account."""

    def __init__(self, target: Any, source: Any) -> None:
        self._target, self._source = target, source

    def describe_model_package(self, **parameters: Any) -> dict:
        client = self._source if parameters["ModelPackageName"].split(":")[4] == app.SOURCE_ACCOUNT else self._target
        return client.describe_model_package(**parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class _ExpectedBucketOwner:
    """S3's answer to a HeadObject whose ExpectedBucketOwner does not own the bucket: 403, as S3 gives it
    (moto ignores the parameter). The parameters are read as the call is built, and answered before it is sent."""

    def __init__(self, bucket_owners: dict[str, str]) -> None:
        self.bucket_owners = bucket_owners

    def register(self, session: boto3.Session) -> None:
        for operation in ("HeadObject", "GetObject"):
            session.events.register(f"before-parameter-build.s3.{operation}", self.note)
            session.events.register(f"before-call.s3.{operation}", self.answer)

    def note(self, params: dict, context: dict, **_: Any) -> None:
        context["expected_bucket_owner"] = (params["Bucket"], params.get("ExpectedBucketOwner"))

    def answer(self, params: dict, context: dict, **_: Any) -> tuple[AWSResponse, dict] | None:
        bucket, expected = context.get("expected_bucket_owner", (None, None))
        if expected is None or self.bucket_owners.get(bucket) == expected:
            return None
        return AWSResponse(params["url"], 403, {}, None), {"Error": {"Code": "403", "Message": "Forbidden"}, "ResponseMetadata": {"HTTPStatusCode": 403}}


class PromotionClients(promotion.Clients):
    """The clients the promotion function gets in these tests: the target role's, and every call recorded."""

    def __init__(self, calls: list[Call], bucket_owners: dict[str, str]) -> None:
        super().__init__()
        self._sessions = (session_in(app.TARGET_ACCOUNT, "mlops-prod-model-promotion"), session_in(app.SOURCE_ACCOUNT, "cross-account-access"))
        for session in self._sessions:
            _ExpectedBucketOwner(bucket_owners).register(session)
            session.events.register(
                "before-parameter-build",
                lambda params, model, **_: calls.append(
                    Call("model promotion", model.service_model.service_name, xform_name(model.name), json.loads(json.dumps(params, default=str)))
                ),
            )
        self._sagemaker = _CrossAccountSageMaker(self._sessions[0].client("sagemaker"), self._sessions[1].client("sagemaker"))

    def sagemaker(self, region: str | None = None) -> Any:
        return self._sagemaker

    def _new_client(self, service: str, region: str | None) -> Any:
        return self._sessions[0].client(service, region_name=region)


@dataclass
class PromotionWorld:
    source: boto3.Session
    target: boto3.Session
    calls: list[Call] = field(default_factory=list)
    # Which account owns each bucket (S3 checks ExpectedBucketOwner against it).
    bucket_owners: dict[str, str] = field(default_factory=dict)
    function_clients: PromotionClients | None = None

    def register_source_version(
        self, status: str = "Approved", release: str | None = promotion.CANARY_PASSED, description: str = "AUC 0.93", **changes: Any
    ) -> int:
        """A version of the staging group as its pipeline registers it, then `status`, and the deployer's record."""
        container = {"Image": IMAGE, "ModelDataUrl": f"s3://{app.SOURCE_BUCKET}/{ARTIFACT_KEY}", "Environment": {"SAGEMAKER_PROGRAM": "train.py"}}
        container.update(changes)
        # moto's UpdateModelPackage replaces the approval status with what the update leaves out, so the
        # package is created with the status the pipeline and reviewer give it.
        created = self.source.client("sagemaker").create_model_package(
            ModelPackageGroupName=app.SOURCE_GROUP,
            ModelPackageDescription=description,
            ModelApprovalStatus=status,
            InferenceSpecification={"Containers": [container], "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["application/json"]},
            ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{app.SOURCE_BUCKET}/{REPORT_KEY}"}}},
        )
        version = int(created["ModelPackageArn"].rsplit("/", 1)[-1])
        if release:
            self.record_release(version, release)
        return version

    def record_release(self, version: int, release: str) -> None:
        """The record the staging deployer writes once the version goes live, where it writes it."""
        record = {"release": release, "endpoint": "mlops-staging-endpoint", "modelPackageArn": f"arn:aws:sagemaker:{app.REGION}:{app.SOURCE_ACCOUNT}:model-package/{app.SOURCE_GROUP}/{version}", "version": version}
        self.source.client("s3").put_object(
            Bucket=app.SOURCE_BUCKET,
            Key=release_record_key(app.SOURCE_GROUP, version),
            Body=json.dumps(record).encode(),
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=app.SOURCE_KEY_ARN,
        )

    def promote(self, version: int, *, serves: bool = True, source_environment: str | None = "staging") -> dict:
        event = {"model": app.MODEL, "version": version, **({"sourceEnvironment": source_environment} if source_environment else {})}
        return self.handle(event, serves=serves)

    def handle(self, event: dict, *, serves: bool = True, source_names_known: bool = True) -> dict:
        """What the promotion function does with `event`, configured as the promotion app's target."""
        model = app.promoted_model(serves=serves, source_names_known=source_names_known)
        target = promotion.Target(
            bucket=app.TARGET_BUCKET, key_arn=app.TARGET_KEY_ARN, copies_prefix=COPIES_PREFIX, models={app.MODEL: promotion.Source.from_json(model.as_json())}
        )
        return promotion.promote(self._function_clients(), target, event)

    def _function_clients(self) -> PromotionClients:
        """The promotion function's clients, made at its first invocation and kept for the next, as the function
        keeps its own for its container's life."""
        if self.function_clients is None:
            self.function_clients = PromotionClients(self.calls, self.bucket_owners)
        return self.function_clients

    def create_bucket(self, session: boto3.Session, account: str, name: str) -> None:
        session.client("s3").create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": app.REGION})
        self.bucket_owners[name] = account

    def target_packages(self) -> list[dict]:
        sagemaker = self.target.client("sagemaker")
        summaries = sagemaker.list_model_packages(ModelPackageGroupName=app.TARGET_GROUP)["ModelPackageSummaryList"]
        return [sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]

    def decide(self) -> list[Decision]:
        """Every recorded call of the promotion function, as AWS would authorize it, decided against the app's policies."""
        policies = app.policies()
        names = WorldNames(policies, "target", app.REGION, bucket_keys={app.SOURCE_BUCKET: app.SOURCE_KEY_ARN, app.TARGET_BUCKET: app.TARGET_KEY_ARN})
        return policies.decide([r for call in self.calls for r in iam_calls.requests(call, app.PROMOTION_ROLE_ARN, names)])


@contextlib.contextmanager
def promotion_world() -> Iterator[PromotionWorld]:
    """Within mock_aws: staging's artifacts bucket holding a trained model and its evaluation report, its group,
    and prod's artifacts bucket and group, each in its own account."""
    with mock_aws():
        world = PromotionWorld(source=session_in(app.SOURCE_ACCOUNT, "staging-admin"), target=session_in(app.TARGET_ACCOUNT, "prod-admin"))
        world.create_bucket(world.source, app.SOURCE_ACCOUNT, app.SOURCE_BUCKET)
        world.create_bucket(world.target, app.TARGET_ACCOUNT, app.TARGET_BUCKET)
        source_s3 = world.source.client("s3")
        encrypted = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": app.SOURCE_KEY_ARN}
        source_s3.put_object(Bucket=app.SOURCE_BUCKET, Key=ARTIFACT_KEY, Body=ARTIFACT_BYTES, **encrypted)
        source_s3.put_object(Bucket=app.SOURCE_BUCKET, Key=REPORT_KEY, Body=json.dumps(REPORT).encode(), **encrypted)
        world.source.client("sagemaker").create_model_package_group(ModelPackageGroupName=app.SOURCE_GROUP)
        world.target.client("sagemaker").create_model_package_group(ModelPackageGroupName=app.TARGET_GROUP)
        yield world
