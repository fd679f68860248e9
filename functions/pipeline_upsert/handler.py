"""Custom resource that creates or updates a SageMaker pipeline from a definition rendered at synth time.

The definition is a JSON asset in S3 holding ``${Name}`` placeholders for values known only at deploy time
(role, buckets, key); ``Substitutions`` fills them in. The pipeline is tagged with the SHA-256 of the
definition it was given, which lets a deploy:
- skip SageMaker entirely when nothing changed;
- notice that someone changed the pipeline since (in Studio, say): the live definition no longer has the
  tagged hash. It says so, and in strict mode refuses to overwrite the change.
A definition SageMaker rejects fails the CloudFormation operation with SageMaker's own message; the
pipeline keeps its previous definition because the failed call changed nothing.

The physical id is the pipeline's name, so CloudFormation's sequences can name one pipeline from two
resources: a replacement through a new logical id creates the new resource (same name) and then deletes
the old one; a failed update that added a resource deletes it again while the old one stays. The pipeline
therefore carries its owner, `<stack id>/<logical id>` in the `mlops:owner` tag, and:
- a Create (or an Update to a new name) takes over a pipeline only from another resource of this stack;
  one created outside the stack or owned by another stack is refused unless `AdoptExisting` is true;
- a Delete deletes only a pipeline this resource owns, and hands it back instead when another resource
  of the stack still names it.
A rollback (UPDATE_ROLLBACK_IN_PROGRESS) restores the definition CloudFormation deployed before, so strict
mode never refuses it: refusing would leave the stack in UPDATE_ROLLBACK_FAILED.
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
OWNER_TAG = "mlops:owner"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
_CONFIG = Config(retries={"mode": "standard"})
# Clients by service and region, built once per container: Lambda reuses a container between invocations,
# and building a client costs more than most of the calls it makes.
_clients = {}


class PipelineUpsertError(RuntimeError):
    """The deploy must stop; the message is what CloudFormation shows."""


def on_event(event, context=None):
    props = event["ResourceProperties"]
    name = props["PipelineName"]
    sagemaker = _client("sagemaker")
    if event["RequestType"] == "Delete":
        return _delete(sagemaker, event)
    definition = _definition(_client("s3"), props)
    return upsert(sagemaker, name, definition, props, event)


def upsert(sagemaker, name: str, definition: str, props: dict, event: dict) -> dict:
    digest = definition_hash(definition)
    owner = _owner(event)
    live = _describe(sagemaker, name)
    if live is None:
        logger.info("Creating pipeline %s (definition %s)", name, digest)
        tags = [{"Key": HASH_TAG, "Value": digest}, {"Key": OWNER_TAG, "Value": owner}]
        arn = _call(sagemaker.create_pipeline, name, **_request(name, definition, props), Tags=tags)["PipelineArn"]
        return _result(name, arn, digest, changed=True, studio_edit=False)

    arn = live["PipelineArn"]
    tags = _tags(sagemaker, arn)
    _check_ownership(name, tags.get(OWNER_TAG), props, event)
    deployed = tags.get(HASH_TAG)
    live_hash = definition_hash(live["PipelineDefinition"])
    if live_hash == digest and live.get("RoleArn") == props["RoleArn"]:
        # Live already matches what we deploy (e.g. an earlier tagging failed, or this resource takes the
        # pipeline over): record it, change nothing else.
        missing = {key: value for key, value in ((HASH_TAG, digest), (OWNER_TAG, owner)) if tags.get(key) != value}
        if missing:
            sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": key, "Value": value} for key, value in missing.items()])
        logger.info("Pipeline %s already has definition %s; nothing to do", name, digest)
        return _result(name, arn, digest, changed=False, studio_edit=False)

    studio_edit = deployed is not None and live_hash != deployed
    if studio_edit:
        message = (
            f"Pipeline {name} was changed outside this stack since the last deploy (live definition "
            f"{live_hash}, deployed {deployed}), e.g. edited in Studio."
        )
        if _flag(props, "Strict") and not _rolling_back(event):
            raise PipelineUpsertError(
                f"{message} Strict mode: not overwriting it. To keep the change, port it into "
                f"pipeline_code/ and deploy again after acknowledging the live version; to discard it, "
                f"acknowledge it and deploy. Acknowledge with: aws sagemaker add-tags --resource-arn {arn} "
                f"--tags Key={HASH_TAG},Value={live_hash}"
            )
        logger.warning("%s Overwriting it with the definition from pipeline_code/.", message)

    logger.info("Updating pipeline %s to definition %s", name, digest)
    _call(sagemaker.update_pipeline, name, **_request(name, definition, props))
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": HASH_TAG, "Value": digest}, {"Key": OWNER_TAG, "Value": owner}])
    return _result(name, arn, digest, changed=True, studio_edit=studio_edit)


def _check_ownership(name: str, current_owner, props: dict, event: dict) -> None:
    if event.get("PhysicalResourceId") == name:
        return  # CloudFormation already records this resource as the pipeline's manager.
    if current_owner is not None and current_owner.rsplit("/", 1)[0] == event["StackId"]:
        logger.info("Pipeline %s taken over from %s of this stack (a replacement)", name, current_owner)
        return
    who = f"owned by {current_owner}" if current_owner else f"created outside CloudFormation (no {OWNER_TAG} tag)"
    if _flag(props, "AdoptExisting"):
        logger.warning("Adopting pipeline %s, %s: this stack now updates it and may delete it", name, who)
        return
    raise PipelineUpsertError(
        f"Pipeline {name} already exists and is not this stack's: {who}. This stack would overwrite it and "
        "could delete it. Delete or rename that pipeline, or set model_build.adopt_existing_pipelines: true "
        "to take it over."
    )


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


def _delete(sagemaker, event: dict) -> dict:
    physical_id = event["PhysicalResourceId"]
    result = {"PhysicalResourceId": physical_id}
    if not _flag(event["ResourceProperties"], "DeleteOnStackDelete"):
        logger.info("Retaining pipeline %s", physical_id)
        return result
    live = _describe(sagemaker, physical_id)
    if live is None:
        return result
    owner = _tags(sagemaker, live["PipelineArn"]).get(OWNER_TAG)
    if owner != _owner(event):
        logger.info("Leaving pipeline %s: it is not this resource's (owner %s)", physical_id, owner)
        return result
    successor = _other_resource_naming(event, physical_id)
    if successor is not None:
        logger.info("Leaving pipeline %s to %s, which still names it (a rollback)", physical_id, successor)
        sagemaker.add_tags(
            ResourceArn=live["PipelineArn"], Tags=[{"Key": OWNER_TAG, "Value": f"{event['StackId']}/{successor}"}]
        )
        return result
    try:
        sagemaker.delete_pipeline(PipelineName=physical_id)
        logger.info("Deleted pipeline %s", physical_id)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFound":
            raise
    return result


def _other_resource_naming(event: dict, physical_id: str):
    """The logical id of another resource of this stack whose physical id is this pipeline, if any."""
    pages = _client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=event["StackId"])
    for resource in (r for page in pages for r in page["StackResourceSummaries"]):
        if (
            resource["ResourceType"] == event["ResourceType"]
            and resource.get("PhysicalResourceId") == physical_id
            and resource["LogicalResourceId"] != event["LogicalResourceId"]
            and not resource["ResourceStatus"].startswith("DELETE")
        ):
            return resource["LogicalResourceId"]
    return None


def _rolling_back(event: dict) -> bool:
    stack = _client("cloudformation").describe_stacks(StackName=event["StackId"])["Stacks"][0]
    return stack["StackStatus"].startswith("UPDATE_ROLLBACK")


def _owner(event: dict) -> str:
    return f"{event['StackId']}/{event['LogicalResourceId']}"


def _describe(sagemaker, name: str):
    try:
        return sagemaker.describe_pipeline(PipelineName=name)
    except ClientError as err:
        if err.response["Error"]["Code"] == "ResourceNotFound":
            return None
        raise


def _tags(sagemaker, arn: str) -> dict:
    return {tag["Key"]: tag["Value"] for tag in sagemaker.list_tags(ResourceArn=arn).get("Tags", [])}


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
    """The container's client of `service` in the function's region."""
    region = os.environ.get("AWS_REGION")
    if (service, region) not in _clients:
        _clients[(service, region)] = boto3.client(service, region_name=region, config=_CONFIG)
    return _clients[(service, region)]
