"""Custom resource that creates or updates a SageMaker pipeline from a definition rendered at synth time.

The definition is a JSON asset in S3 holding ``${Name}`` placeholders for values known only at deploy time
(role, buckets, key); ``Substitutions`` fills them in. The pipeline is tagged with the SHA-256 of the
definition it was given, which lets a deploy:
- skip SageMaker entirely when nothing changed;
- notice that someone changed the pipeline since (in Studio, say): the live definition no longer has the
  tagged hash. It says so, and in strict mode refuses to overwrite the change.
A definition SageMaker rejects fails the CloudFormation operation with SageMaker's own message; the
pipeline keeps its previous definition because the failed call changed nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

HASH_TAG = "mlops:definition-sha256"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
_CONFIG = Config(retries={"mode": "standard"})


class PipelineUpsertError(RuntimeError):
    """The deploy must stop; the message is what CloudFormation shows."""


def on_event(event, context=None):
    props = event["ResourceProperties"]
    name = props["PipelineName"]
    sagemaker = _client("sagemaker")
    if event["RequestType"] == "Delete":
        return _delete(sagemaker, name, props, event.get("PhysicalResourceId", name))
    definition = _definition(_client("s3"), props)
    return upsert(sagemaker, name, definition, props)


def upsert(sagemaker, name: str, definition: str, props: dict) -> dict:
    digest = definition_hash(definition)
    live = _describe(sagemaker, name)
    if live is None:
        logger.info("Creating pipeline %s (definition %s)", name, digest)
        arn = _call(sagemaker.create_pipeline, name, **_request(name, definition, props), Tags=[{"Key": HASH_TAG, "Value": digest}])["PipelineArn"]
        return _result(name, arn, digest, changed=True, studio_edit=False)

    arn = live["PipelineArn"]
    deployed = _tag(sagemaker, arn, HASH_TAG)
    live_hash = definition_hash(live["PipelineDefinition"])
    if live_hash == digest and live.get("RoleArn") == props["RoleArn"]:
        if deployed != digest:
            # Live already matches what we deploy (e.g. an earlier tagging failed): record it, change nothing.
            sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": HASH_TAG, "Value": digest}])
        logger.info("Pipeline %s already has definition %s; nothing to do", name, digest)
        return _result(name, arn, digest, changed=False, studio_edit=False)

    studio_edit = deployed is not None and live_hash != deployed
    if studio_edit:
        message = (
            f"Pipeline {name} was changed outside this stack since the last deploy (live definition "
            f"{live_hash}, deployed {deployed}), e.g. edited in Studio."
        )
        if _flag(props, "Strict"):
            raise PipelineUpsertError(
                f"{message} Strict mode: not overwriting it. To keep the change, port it into "
                f"pipeline_code/ and deploy again after acknowledging the live version; to discard it, "
                f"acknowledge it and deploy. Acknowledge with: aws sagemaker add-tags --resource-arn {arn} "
                f"--tags Key={HASH_TAG},Value={live_hash}"
            )
        logger.warning("%s Overwriting it with the definition from pipeline_code/.", message)

    logger.info("Updating pipeline %s to definition %s", name, digest)
    _call(sagemaker.update_pipeline, name, **_request(name, definition, props))
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": HASH_TAG, "Value": digest}])
    return _result(name, arn, digest, changed=True, studio_edit=studio_edit)


def definition_hash(definition: str) -> str:
    """SHA-256 of the definition's JSON content, independent of whitespace and key order."""
    canonical = json.dumps(json.loads(definition), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def substitute(template: str, values: dict) -> str:
    missing = sorted({m for m in _PLACEHOLDER.findall(template) if m not in values})
    if missing:
        raise PipelineUpsertError(f"The definition needs values for {', '.join(missing)}, which the stack did not pass")
    # Values land inside JSON strings: escape them as JSON would, so a quote or backslash cannot break out.
    return _PLACEHOLDER.sub(lambda match: json.dumps(values[match.group(1)])[1:-1], template)


def _definition(s3, props: dict) -> str:
    body = s3.get_object(Bucket=props["DefinitionBucket"], Key=props["DefinitionKey"])["Body"].read().decode()
    return substitute(body, props.get("Substitutions", {}))


def _request(name: str, definition: str, props: dict) -> dict:
    return {
        "PipelineDefinition": definition,
        "PipelineDisplayName": name,
        "PipelineDescription": props.get("Description", ""),
        "RoleArn": props["RoleArn"],
    }


def _call(operation, name: str, **kwargs):
    try:
        return operation(PipelineName=name, **kwargs)
    except ClientError as err:
        error = err.response["Error"]
        raise PipelineUpsertError(
            f"SageMaker rejected pipeline {name}: {error['Code']}: {error['Message']}. "
            "The pipeline keeps its previous definition."
        ) from None


def _delete(sagemaker, name: str, props: dict, physical_id: str) -> dict:
    if not _flag(props, "DeleteOnStackDelete"):
        logger.info("Retaining pipeline %s", physical_id)
        return {"PhysicalResourceId": physical_id}
    try:
        sagemaker.delete_pipeline(PipelineName=physical_id)
        logger.info("Deleted pipeline %s", physical_id)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFound":
            raise
    return {"PhysicalResourceId": physical_id}


def _describe(sagemaker, name: str):
    try:
        return sagemaker.describe_pipeline(PipelineName=name)
    except ClientError as err:
        if err.response["Error"]["Code"] == "ResourceNotFound":
            return None
        raise


def _tag(sagemaker, arn: str, key: str):
    tags = sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
    return next((tag["Value"] for tag in tags if tag["Key"] == key), None)


def _result(name: str, arn: str, digest: str, *, changed: bool, studio_edit: bool) -> dict:
    return {
        "PhysicalResourceId": name,
        "Data": {
            "PipelineArn": arn,
            "DefinitionSha256": digest,
            "Changed": str(changed).lower(),
            "StudioEditOverwritten": str(studio_edit).lower(),
        },
    }


def _flag(props: dict, key: str) -> bool:
    return str(props.get(key, "false")).lower() == "true"


def _client(service: str):
    return boto3.client(service, region_name=os.environ.get("AWS_REGION"), config=_CONFIG)
