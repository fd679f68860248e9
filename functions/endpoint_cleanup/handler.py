"""Custom resource that deletes what the canary deployer created outside CloudFormation, with its stack.

The deployer creates the endpoint, its endpoint configs, models and Application Auto Scaling targets at
run time, so CloudFormation does not know about them. On Delete, and only when the stack itself is being
deleted, we take them down in dependency order: stop running deployments (one could be mid-canary and
would otherwise keep changing the endpoint), deregister the scalable targets (which deletes their scaling
policies), delete the endpoint, wait until it is gone, then delete the endpoint configs and models whose
names carry the environment's prefix. The endpoint of the other serving mode (instances or serverless), if
a switch of modes left it, goes the same way.

CloudFormation also sends Delete when the stack is not going away: for the old physical id after a
replacement (in UPDATE_COMPLETE_CLEANUP_IN_PROGRESS), and for a resource created by a failed Create or
Update that is being rolled back. The live endpoint must survive those, so the stack's own status decides.

Used through the CDK Provider framework: `on_event` starts the work and `is_complete` is polled until it
reports completion. Both call `reconcile`, which re-reads the live state every time, so any invocation
can be retried or repeated safely.
"""

import logging
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

_CONFIG = Config(retries={"mode": "standard"})
# Clients by service and region, built once per container: Lambda reuses a container between invocations,
# and building a client costs more than most of the calls it makes.
_clients = {}
_STACK_BEING_DELETED = "DELETE_IN_PROGRESS"
_BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")


class EndpointCleanupError(RuntimeError):
    """The stack delete must stop; the message is what CloudFormation shows."""


def on_event(event, context=None):
    props = event["ResourceProperties"]
    if event["RequestType"] != "Delete":
        # A new endpoint name gives a new physical id: CloudFormation then deletes the old one during
        # UPDATE_COMPLETE_CLEANUP_IN_PROGRESS, which leaves the old endpoint alone (see module doc).
        return {"PhysicalResourceId": props["EndpointName"]}
    if _stack_is_being_deleted(event):
        reconcile(_Clients(), props, retry_failed_delete=True)
    # The framework rejects a Delete that changes the physical id.
    return {"PhysicalResourceId": event["PhysicalResourceId"]}


def is_complete(event, context=None):
    if event["RequestType"] != "Delete" or not _stack_is_being_deleted(event):
        return {"IsComplete": True}
    return {"IsComplete": reconcile(_Clients(), event["ResourceProperties"])}


def reconcile(clients, props, retry_failed_delete=False):
    """Take the next clean-up steps; return True once nothing the deployer created is left.

    A `Failed` endpoint that we asked to delete is deleted again on the first pass (on_event: a new
    Delete, e.g. CloudFormation retrying after the cause was fixed); seen on a later pass, SageMaker
    could not delete it, and waiting would only run into the Provider's timeout: raise its reason.
    """
    # The serving mode's endpoint, and the other mode's, which a switch of modes leaves until a release retires it.
    endpoints = [(props["EndpointName"], props["EndpointConfigPrefix"], props["ModelPrefix"])]
    if props.get("RetiredEndpointName"):
        endpoints.append((props["RetiredEndpointName"], props["RetiredEndpointConfigPrefix"], props["RetiredModelPrefix"]))
    _stop_deployments(clients.stepfunctions, props["StateMachineArn"])
    for endpoint_name, _, _ in endpoints:
        _deregister_autoscaling(clients.autoscaling, endpoint_name)
    # Every endpoint is asked to go on each pass, so they are deleted side by side.
    gone = [_delete_endpoint(clients.sagemaker, name, props["DeleteRequestedTag"], retry_failed_delete) for name, _, _ in endpoints]
    if not all(gone):
        return False
    for _, config_prefix, model_prefix in endpoints:
        _delete_named(
            clients.sagemaker,
            "list_endpoint_configs",
            "EndpointConfigs",
            "EndpointConfigName",
            config_prefix,
            clients.sagemaker.delete_endpoint_config,
        )
        _delete_named(
            clients.sagemaker,
            "list_models",
            "Models",
            "ModelName",
            model_prefix,
            clients.sagemaker.delete_model,
        )
    return True


def _stop_deployments(stepfunctions, state_machine_arn):
    pages = stepfunctions.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING"
    )
    for execution in (e for page in pages for e in page["executions"]):
        logger.info("Stopping deployment %s", execution["executionArn"])
        stepfunctions.stop_execution(
            executionArn=execution["executionArn"],
            error="StackDeleted",
            cause="The deployment stack is being deleted; its endpoint is deleted with it.",
        )


def _deregister_autoscaling(autoscaling, endpoint_name):
    prefix = f"endpoint/{endpoint_name}/variant/"
    pages = autoscaling.get_paginator("describe_scalable_targets").paginate(ServiceNamespace="sagemaker")
    for target in (t for page in pages for t in page["ScalableTargets"]):
        if not target["ResourceId"].startswith(prefix):
            continue
        logger.info("Deregistering scalable target %s", target["ResourceId"])
        try:
            autoscaling.deregister_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=target["ResourceId"],
                ScalableDimension=target["ScalableDimension"],
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ObjectNotFoundException":
                raise


def _delete_endpoint(sagemaker, name, tag_key, retry_failed):
    """Return True once the endpoint does not exist.

    The endpoint is tagged `tag_key` just before we ask SageMaker to delete it: DescribeEndpoint cannot
    tell a failed delete from a create or update that failed on its own (the deployer's, stopped while
    SageMaker carried on), and is_complete keeps no state between polls.
    """
    endpoint = _describe_endpoint(sagemaker, name)
    if endpoint is None:
        return True
    status = endpoint["EndpointStatus"]
    if status in _BUSY:
        logger.info("Endpoint %s is %s; waiting", name, status)
        return False
    arn = endpoint["EndpointArn"]
    if status == "Failed" and not retry_failed and _has_tag(sagemaker, arn, tag_key):
        raise EndpointCleanupError(
            f"SageMaker could not delete endpoint {name}: "
            f"{endpoint.get('FailureReason') or 'no FailureReason given'}"
        )
    logger.info("Deleting endpoint %s (was %s)", name, status)
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": tag_key, "Value": "delete-requested"}])
    try:
        sagemaker.delete_endpoint(EndpointName=name)
    except ClientError as err:
        if not _not_found(err):
            raise
    return False


def _has_tag(sagemaker, arn, tag_key):
    pages = sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn)
    return any(tag["Key"] == tag_key for page in pages for tag in page["Tags"])


def _delete_named(sagemaker, operation, key, name_key, prefix, delete):
    # NameContains also matches the prefix in the middle of someone else's name.
    pages = sagemaker.get_paginator(operation).paginate(NameContains=prefix)
    names = [item[name_key] for page in pages for item in page[key] if item[name_key].startswith(prefix)]
    for name in names:
        logger.info("Deleting %s", name)
        try:
            delete(**{name_key: name})
        except ClientError as err:
            if not _not_found(err):
                raise


def _describe_endpoint(sagemaker, name):
    try:
        return sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as err:
        if _not_found(err):
            return None
        raise


def _not_found(err):
    # SageMaker reports missing endpoints, configs and models as ValidationException "Could not find ...".
    error = err.response["Error"]
    return error["Code"] == "ValidationException" and error.get("Message", "").startswith("Could not find")


def _stack_is_being_deleted(event):
    client = _client("cloudformation")
    status = client.describe_stacks(StackName=event["StackId"])["Stacks"][0]["StackStatus"]
    if status != _STACK_BEING_DELETED:
        logger.info(
            "Stack is %s, not being deleted (a replacement or rollback): leaving the endpoint alone", status
        )
    return status == _STACK_BEING_DELETED


class _Clients:
    def __init__(self):
        self.sagemaker = _client("sagemaker")
        self.autoscaling = _client("application-autoscaling")
        self.stepfunctions = _client("stepfunctions")


def _client(service):
    """The container's client of `service` in the function's region."""
    region = os.environ.get("AWS_REGION")
    if (service, region) not in _clients:
        _clients[(service, region)] = boto3.client(service, region_name=region, config=_CONFIG)
    return _clients[(service, region)]
