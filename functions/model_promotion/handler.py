"""Promotes a model version from another environment (the source, in its own account) into this one.

Invoked with ``{"model": <name>, "version": <source version>, "sourceEnvironment": <optional, checked>}``
(the model may be left out where the environment promotes one model), or, by the rule of automatic
promotion, with ``{"sourcePackageArn": <the version a source deployer announced as live>}``. The source is the one configured
for the model (the ``MODELS`` variable). In order:

1. Describe the source version (the source group's resource policy lets this function's role do that) and
   refuse, with a sentence saying why, unless it is Approved there and, where the source serves the model,
   its deployer recorded a release of it: ``releases/<group>/v<version>.json`` in the source's artifacts
   bucket (the bucket of the version's model artifact), written when the version went live (a first release
   or a canary that passed; a canary that rolled back writes nothing).
2. If the target group already holds a version promoted from that source version, answer with it:
   re-running registers nothing twice.
3. Copy every S3 object the version refers to (the model artifact, the evaluation report and other metric
   files, any ``s3://`` value in the container environment), once S3 confirms its bucket is the source
   account's (``ExpectedBucketOwner``), into this environment's artifacts bucket
   under ``<COPIES_PREFIX><model>/<source env>/v<version>/``, server-side, encrypted with this
   environment's key, so nothing here depends on the source bucket afterwards.
4. Register the copy in the target group as PendingManualApproval, with its lineage (source account,
   environment, group, version, package ARN, the source's release record and description) in CustomerMetadataProperties
   and its metrics pointing at the copies. The target's reviewer approves it; the target's deployer then
   releases exactly those bytes.

boto3 only. Each step logs one line, so a run's progress is readable in its log group.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

_CONFIG = Config(retries={"mode": "standard"})
# Large artifacts are copied in parts of this size, several at a time, within the function's 15 minutes.
_TRANSFER = TransferConfig(multipart_threshold=256 * 1024**2, multipart_chunksize=256 * 1024**2, max_concurrency=8)

# Where the source deployer writes down a version that went live, in its artifacts bucket (as
# config.naming.release_record_key, which this function cannot import), and how it went live (the record's
# "release"): CANARY_PASSED after a bake, FIRST_RELEASE for a first release, which has nothing to compare against.
RELEASE_RECORDS_PREFIX = "releases/"
CANARY_PASSED = "canary-passed"
FIRST_RELEASE = "first-release"
ACCEPTED_RELEASES = (CANARY_PASSED, FIRST_RELEASE)

# The lineage a promoted version carries in the target group (CustomerMetadataProperties).
LINEAGE_PREFIX = "mlops:promoted-from-"
_METADATA_VALUE_LENGTH = 256
_UUID_NAMESPACE = uuid.UUID("0d4c2a57-7f60-4f5e-9a8e-2c1f1f5e6b11")

# The parts of a container definition that are copied as they are (the S3 locations are rewritten).
_CONTAINER_FIELDS = ("ContainerHostname", "Image", "Framework", "FrameworkVersion", "NearestModelName")
_INFERENCE_FIELDS = ("SupportedTransformInstanceTypes", "SupportedRealtimeInferenceInstanceTypes", "SupportedContentTypes", "SupportedResponseMIMETypes")


def release_record_key(group: str, version: int) -> str:
    return f"{RELEASE_RECORDS_PREFIX}{group}/v{version}.json"


class PromotionRefused(RuntimeError):
    """The version cannot be promoted; the message says why and what to do (what the caller shows)."""


@dataclass(frozen=True)
class Source:
    """Where a model is promoted from, as the target's stack configured it."""

    environment: str
    account: str
    region: str
    group: str
    # The source's artifacts bucket, where the target's stack knows its name; the source account owns it either way.
    bucket: str | None
    # Whether the source environment serves this model, so its deployer must have released the version.
    serves: bool
    target_group: str

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Source:
        return cls(
            environment=value["sourceEnvironment"],
            account=value["sourceAccount"],
            region=value["sourceRegion"],
            group=value["sourceGroup"],
            bucket=value.get("sourceBucket"),
            serves=bool(value["sourceServes"]),
            target_group=value["targetGroup"],
        )

    def package_arn(self, version: int, partition: str = "aws") -> str:
        return f"arn:{partition}:sagemaker:{self.region}:{self.account}:model-package/{self.group.lower()}/{version}"


@dataclass(frozen=True)
class Target:
    bucket: str
    key_arn: str
    copies_prefix: str
    models: dict[str, Source]

    @classmethod
    def from_environment(cls) -> Target:
        return cls(
            bucket=os.environ["TARGET_BUCKET"],
            key_arn=os.environ["TARGET_KEY_ARN"],
            copies_prefix=os.environ["COPIES_PREFIX"],
            models={name: Source.from_json(value) for name, value in json.loads(os.environ["MODELS"]).items()},
        )


class Clients:
    """The AWS clients a promotion uses: SageMaker in each region it reads or writes, and S3."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str | None], Any] = {}

    def sagemaker(self, region: str | None = None) -> Any:
        return self._client("sagemaker", region)

    def s3(self, region: str | None = None) -> Any:
        return self._client("s3", region)

    def _client(self, service: str, region: str | None) -> Any:
        if (service, region) not in self._clients:
            self._clients[(service, region)] = self._new_client(service, region)
        return self._clients[(service, region)]

    def _new_client(self, service: str, region: str | None) -> Any:
        return boto3.client(service, region_name=region, config=_CONFIG)


# Kept for the container's life: Lambda reuses a container between invocations, and its clients with it.
_clients = Clients()


def handler(event, context=None):
    try:
        return promote(_clients, Target.from_environment(), event)
    except PromotionRefused as refusal:
        logger.info("Refused: %s", refusal)
        raise


def promote(clients: Clients, target: Target, event: dict[str, Any]) -> dict[str, Any]:
    """Promote the version `event` names; return where it landed (see the module's docstring)."""
    model, version, source = _request(target, event)
    source_arn = source.package_arn(version)
    logger.info("Promoting %s version %s from %s (%s)", model, version, source.environment, source_arn)
    package = _describe_source(clients, source, model, version, source_arn)
    release = _check_releasable(clients, package, source, model, version)

    existing = _already_promoted(clients.sagemaker(), source.target_group, source_arn)
    if existing is not None:
        logger.info("Already promoted as %s", existing["ModelPackageArn"])
        return _answer(model, source, version, source_arn, existing, already_promoted=True)

    destination = f"{target.copies_prefix}{model}/{source.environment}/v{version}/"
    copies = _Copies(clients, source, target, destination)
    containers = [copies.container(container, index) for index, container in enumerate(package["InferenceSpecification"]["Containers"])]
    metrics = copies.metrics(package.get("ModelMetrics", {}))
    inference = {name: package["InferenceSpecification"][name] for name in _INFERENCE_FIELDS if name in package["InferenceSpecification"]}
    lineage = {
        f"{LINEAGE_PREFIX}account": source.account,
        f"{LINEAGE_PREFIX}environment": source.environment,
        f"{LINEAGE_PREFIX}group": source.group,
        f"{LINEAGE_PREFIX}version": str(version),
        f"{LINEAGE_PREFIX}package": source_arn,
        f"{LINEAGE_PREFIX}release": release,
    }
    if package.get("ModelPackageDescription"):
        # What the source's pipeline or reviewer wrote about the version (its metrics, often); metadata values
        # hold at most 256 characters.
        lineage[f"{LINEAGE_PREFIX}description"] = package["ModelPackageDescription"][:_METADATA_VALUE_LENGTH]
    created = clients.sagemaker().create_model_package(
        ModelPackageGroupName=source.target_group,
        ModelPackageDescription=_description(source, source_arn),
        InferenceSpecification={"Containers": containers, **inference},
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=lineage,
        # SageMaker answers a repeated request with the same token with the same package.
        ClientToken=str(uuid.uuid5(_UUID_NAMESPACE, source_arn)),
        **({"ModelMetrics": metrics} if metrics else {}),
    )
    logger.info("Registered %s as PendingManualApproval", created["ModelPackageArn"])
    registered = clients.sagemaker().describe_model_package(ModelPackageName=created["ModelPackageArn"])
    return _answer(model, source, version, source_arn, registered, already_promoted=False)


def _request(target: Target, event: dict[str, Any]) -> tuple[str, int, Source]:
    if "sourcePackageArn" in event:
        return _announced(target, event["sourcePackageArn"])
    model = event.get("model")
    if model is None and len(target.models) == 1:
        (model,) = target.models
    if model not in target.models:
        known = ", ".join(sorted(target.models)) or "none"
        raise PromotionRefused(f"this environment promotes no model named {model!r}; the models it promotes: {known}")
    source = target.models[model]
    asked = event.get("sourceEnvironment")
    if asked and asked != source.environment:
        raise PromotionRefused(f"model {model} is promoted from {source.environment}, not from {asked}")
    try:
        version = int(event.get("version"))
    except (TypeError, ValueError):
        raise PromotionRefused(f"the version to promote must be a number, not {event.get('version')!r}") from None
    if version < 1:
        raise PromotionRefused(f"model package versions start at 1, not {version}")
    return model, version, source


def _announced(target: Target, arn: str) -> tuple[str, int, Source]:
    """The model and version a source deployer announced as live (automatic promotion)."""
    parts = arn.split(":", 5)
    resource = parts[5] if len(parts) == 6 else ""
    kind, _, rest = resource.partition("/")
    group, _, version = rest.rpartition("/")
    for model, source in target.models.items():
        if kind == "model-package" and (parts[3], parts[4], group) == (source.region, source.account, source.group.lower()) and version.isdigit():
            return model, int(version), source
    raise PromotionRefused(f"{arn} is no version of a group this environment promotes from")


def _describe_source(clients: Clients, source: Source, model: str, version: int, arn: str) -> dict[str, Any]:
    sagemaker = clients.sagemaker(source.region)
    try:
        return sagemaker.describe_model_package(ModelPackageName=arn)
    except sagemaker.exceptions.ClientError as error:
        code = error.response["Error"].get("Code", "")
        message = error.response["Error"].get("Message", "")
        if code in ("ValidationException", "ResourceNotFound") and "not found" in message.lower():
            raise PromotionRefused(f"{source.environment} has no version {version} of {model} ({source.group}): {message}") from None
        if code == "AccessDeniedException":
            raise PromotionRefused(
                f"{source.environment} does not let this environment read {arn} ({message}): is {source.environment} deployed "
                "with its promotion grants for this environment?"
            ) from None
        raise


def _check_releasable(clients: Clients, package: dict[str, Any], source: Source, model: str, version: int) -> str:
    """How the version went live in the source, from its deployer's release record ("not served" where the
    source does not serve the model)."""
    status = package.get("ModelApprovalStatus", "unknown")
    if status != "Approved":
        raise PromotionRefused(
            f"{model} version {version} is {status} in {source.environment}, not Approved: only an Approved version is "
            f"promoted (a reviewer approves it there: mlops model approve {version} --env {source.environment})"
        )
    if not source.serves:
        return "not served"
    record = _release_record(clients, package, source, model, version)
    release = record.get("release") if isinstance(record, dict) else None
    if release not in ACCEPTED_RELEASES:
        how = f"its release record says {release!r}" if release else "its deployer recorded no release of it"
        raise PromotionRefused(
            f"{model} version {version} has not passed its canary in {source.environment} ({how}): a version is promoted "
            f"once {source.environment}'s deployer has released it; a canary that rolled back records nothing"
        )
    return release


def _release_record(clients: Clients, package: dict[str, Any], source: Source, model: str, version: int) -> Any:
    """The release record in the bucket of the version's model artifact (the source's artifacts bucket), or
    None if there is none. Without s3:ListBucket, S3 answers a missing object with 403 rather than 404, so
    both mean "no record this environment can read"."""
    urls = [c["ModelDataUrl"] for c in package.get("InferenceSpecification", {}).get("Containers", []) if c.get("ModelDataUrl", "").startswith("s3://")]
    bucket = source.bucket
    if bucket is None:
        if not urls:
            raise PromotionRefused(
                f"{model} version {version} has no model artifact in S3, so {source.environment}'s artifacts bucket, where its "
                "deployer records releases, is unknown: set the source's bucket in the promotion config"
            )
        # Only a bucket of the source account can hold the source deployer's records.
        bucket, _, artifact = urls[0].removeprefix("s3://").partition("/")
        _check_owner(clients, source, urls[0], bucket, artifact)
    key = release_record_key(package.get("ModelPackageGroupName") or source.group, version)
    s3 = clients.s3(source.region)
    try:
        body = s3.get_object(Bucket=bucket, Key=key, ExpectedBucketOwner=source.account)["Body"].read()
    except s3.exceptions.ClientError as error:
        if error.response["Error"].get("Code") in ("403", "AccessDenied", "404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            logger.info("No release record at s3://%s/%s (%s)", bucket, key, error.response["Error"].get("Code"))
            return None
        raise
    try:
        return json.loads(body)
    except ValueError:
        return {"release": "unreadable"}


def _description(source: Source, source_arn: str) -> str:
    # What finds an earlier promotion of the same version: ListModelPackages returns descriptions, not metadata.
    return f"Promoted from {source.environment}: {source_arn}"


def _already_promoted(sagemaker: Any, group: str, source_arn: str) -> dict[str, Any] | None:
    for page in sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group, ModelPackageType="Versioned"):
        for summary in page["ModelPackageSummaryList"]:
            if summary.get("ModelPackageDescription", "").endswith(f": {source_arn}"):
                found = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
                if found.get("CustomerMetadataProperties", {}).get(f"{LINEAGE_PREFIX}package") == source_arn:
                    return found
    return None


class _Copies:
    """Copies the objects a source version refers to under `destination` of the target bucket."""

    def __init__(self, clients: Clients, source: Source, target: Target, destination: str) -> None:
        self.clients, self.source, self.target, self.destination = clients, source, target, destination
        self.copied: dict[str, str] = {}

    def container(self, container: dict[str, Any], index: int) -> dict[str, Any]:
        if "ModelDataSource" in container and "ModelDataUrl" not in container:
            raise PromotionRefused(
                "the version's model data is an uncompressed S3 prefix (ModelDataSource); promotion copies single "
                "model artifacts (ModelDataUrl) only"
            )
        image = container.get("Image", "")
        if image.split(".", 1)[0] == self.source.account:
            raise PromotionRefused(
                f"the version's image {image} is in {self.source.environment}'s own ECR registry, which this environment "
                "cannot pull from; only images from registries both accounts can pull (such as SageMaker's) are promoted"
            )
        copied = {name: container[name] for name in _CONTAINER_FIELDS if name in container}
        where = f"container{index}/" if index else ""
        if "ModelDataUrl" in container:
            copied["ModelDataUrl"] = self.copy(container["ModelDataUrl"], f"{where}model/")
        environment = container.get("Environment") or {}
        if environment:
            copied["Environment"] = {
                name: self.copy(value, f"{where}environment/{name}/") if value.startswith("s3://") else value for name, value in environment.items()
            }
        return copied

    def metrics(self, metrics: Any, path: tuple[str, ...] = ()) -> Any:
        """`metrics` (ModelMetrics) with every S3Uri replaced by its copy's."""
        if isinstance(metrics, dict):
            return {
                name: self.copy(value, f"metrics/{'-'.join(path)}/") if name == "S3Uri" else self.metrics(value, (*path, name))
                for name, value in metrics.items()
            }
        return metrics

    def copy(self, uri: str, folder: str) -> str:
        if uri in self.copied:
            return self.copied[uri]
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not uri.startswith("s3://") or not key or bucket != (self.source.bucket or bucket):
            raise PromotionRefused(
                f"the version refers to {uri}, outside {self.source.environment}'s artifacts bucket ({self.source.bucket}); "
                "only that bucket is shared with this environment"
            )
        self._check_owner(uri, bucket, key)
        copy_key = f"{self.destination}{folder}{key.rsplit('/', 1)[-1]}"
        self.clients.s3().copy(
            {"Bucket": bucket, "Key": key},
            self.target.bucket,
            copy_key,
            ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.target.key_arn},
            SourceClient=self.clients.s3(self.source.region),
            Config=_TRANSFER,
        )
        logger.info("Copied %s to s3://%s/%s", uri, self.target.bucket, copy_key)
        self.copied[uri] = f"s3://{self.target.bucket}/{copy_key}"
        return self.copied[uri]

    def _check_owner(self, uri: str, bucket: str, key: str) -> None:
        _check_owner(self.clients, self.source, uri, bucket, key)


def _check_owner(clients: Clients, source: Source, uri: str, bucket: str, key: str) -> None:
    """Refuse an object whose bucket is not the source account's (S3 answers 403 to ExpectedBucketOwner)."""
    s3 = clients.s3(source.region)
    try:
        s3.head_object(Bucket=bucket, Key=key, ExpectedBucketOwner=source.account)
    except s3.exceptions.ClientError as error:
        if error.response["Error"].get("Code") in ("403", "AccessDenied", "404", "NoSuchKey", "NotFound"):
            raise PromotionRefused(
                f"the version refers to {uri}, which this environment cannot read as an object of {source.environment}'s "
                f"account {source.account} (S3 answered {error.response['Error'].get('Code')}): only the source's model "
                "artifacts and evaluation reports are shared"
            ) from None
        raise


def _answer(model: str, source: Source, version: int, source_arn: str, package: dict[str, Any], *, already_promoted: bool) -> dict[str, Any]:
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    return {
        "model": model,
        "sourceEnvironment": source.environment,
        "sourceVersion": version,
        "sourcePackageArn": source_arn,
        "targetGroup": source.target_group,
        "targetPackageArn": package["ModelPackageArn"],
        "targetVersion": package.get("ModelPackageVersion"),
        "approvalStatus": package.get("ModelApprovalStatus"),
        "modelDataUrls": [c["ModelDataUrl"] for c in containers if "ModelDataUrl" in c],
        "alreadyPromoted": already_promoted,
    }
