"""Custom resource that empties a SageMaker Studio domain and deletes it with its home EFS, when the domain goes.

CloudFormation deletes the user profiles and the domain right after this resource, and SageMaker refuses
both while apps or spaces exist; CloudFormation's own DeleteDomain also keeps the home EFS. So when the
domain is going away we delete, one phase at a time: apps, spaces, user profiles, then the domain with
`RetentionPolicy HomeEfsFileSystem=Delete`.

CloudFormation also sends Delete when the domain stays: for the old physical id after this resource is
replaced (a new logical id), and for this resource when a failed update that created it rolls back. Apps
and spaces hold users' work, so the clean-up acts only when the stack is being deleted (or its failed
create rolled back), or when the stack's domain (by the logical id in `DomainLogicalId`) is no longer the
domain this Delete names: the domain was replaced, or left the template, and CloudFormation deletes it.
A domain whose removal policy is retain (`DomainRetained`) never goes with the stack: its clean-up does nothing.

The same functions answer a second resource, `Custom::StudioDomainsToCleanUp`, which calls nothing: it
reports the domain in the template and, during an update that replaces it, the domain it replaces
(`PreviousDomainId`). The clean-up role's policy names both, so that the Delete CloudFormation sends for
the old domain's clean-up, after the update, may still reach the old domain; a policy naming only the
template's domain made AWS refuse it.

Used through the CDK Provider framework: `on_event` starts the work and `is_complete` is polled until it
reports completion. Both call `reconcile`, which re-reads the live state every time, so any invocation
can be retried or repeated safely. A delete that SageMaker reports as failed fails the operation at once
with SageMaker's reason, rather than being polled until CloudFormation's timeout.
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
# The whole stack goes: deleted, or rolled back after its first create failed.
_STACK_GOING_AWAY = ("DELETE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS")


class DomainCleanupError(RuntimeError):
    """The operation must stop; the message is what CloudFormation shows."""


_DOMAINS_TO_CLEAN_UP = "Custom::StudioDomainsToCleanUp"


def on_event(event, context=None):
    if event.get("ResourceType") == _DOMAINS_TO_CLEAN_UP:
        return _domains_to_clean_up(event)
    props = event["ResourceProperties"]
    if event["RequestType"] != "Delete":
        # A new DomainId (domain replaced) gives a new physical id, so CloudFormation sends a
        # Delete for the old one, with the old properties, once the update has succeeded.
        return {"PhysicalResourceId": props["DomainId"]}
    if _domain_is_going_away(event):
        reconcile(_client("sagemaker"), props["DomainId"], retry_failed=True)
    # The framework rejects a Delete that changes the physical id.
    return {"PhysicalResourceId": event["PhysicalResourceId"]}


def is_complete(event, context=None):
    if event.get("ResourceType") == _DOMAINS_TO_CLEAN_UP or event["RequestType"] != "Delete" or not _domain_is_going_away(event):
        return {"IsComplete": True}
    return {"IsComplete": reconcile(_client("sagemaker"), event["ResourceProperties"]["DomainId"])}


def _domains_to_clean_up(event):
    """The domain in the template, and the one it replaces in this update (itself when nothing is replaced).

    A rollback of a replacing update is an Update too, from the new domain back to the old: the new one is
    then the previous, and its clean-up may reach it. The physical id never changes, so CloudFormation never
    sends this resource a Delete before the clean-up's.
    """
    domain_id = event["ResourceProperties"]["DomainId"]
    previous = event.get("OldResourceProperties", {}).get("DomainId", domain_id) if event["RequestType"] == "Update" else domain_id
    physical_id = event.get("PhysicalResourceId") or event["LogicalResourceId"]
    return {"PhysicalResourceId": physical_id, "Data": {"DomainId": domain_id, "PreviousDomainId": previous}}


def reconcile(client, domain_id, retry_failed=False):
    """Take the next deletion steps; return True once the domain is gone.

    Apps, spaces, profiles and a domain whose delete failed earlier are deleted again on the first pass
    (on_event: a new Delete, e.g. CloudFormation retrying after the cause was fixed). Seen on a later
    pass, the delete we asked for failed, and polling would only run into the Provider's timeout:
    raise instead, with SageMaker's reason.
    """
    domain = _describe_domain(client, domain_id)
    if domain is None:
        logger.info("Domain %s does not exist (any more), nothing to clean up", domain_id)
        return True
    if domain["Status"] == "Delete_Failed" and not retry_failed:
        raise DomainCleanupError(
            f"SageMaker could not delete domain {domain_id}: {domain.get('FailureReason') or 'no FailureReason given'}"
        )

    if not _delete_apps(client, domain_id, retry_failed):
        return False
    if not _delete_spaces(client, domain_id, retry_failed):
        return False
    if not _delete_user_profiles(client, domain_id, retry_failed):
        return False

    if domain["Status"] != "Deleting":
        logger.info("Deleting domain %s and its home EFS", domain_id)
        _tolerate_busy(
            client.delete_domain,
            DomainId=domain_id,
            RetentionPolicy={"HomeEfsFileSystem": "Delete"},
        )
    # Complete only once DescribeDomain no longer finds it.
    return False


def _delete_apps(client, domain_id, retry_failed):
    done = True
    failed = []
    for app in _list(client, "list_apps", "Apps", domain_id):
        status = app["Status"]
        if status == "Deleted":
            continue
        done = False
        if status == "Deleting":
            continue
        if status == "Failed" and not retry_failed:
            failed.append(app)
            continue
        logger.info("Deleting %s (was %s)", _app_label(app), status)
        _tolerate_busy(
            client.delete_app,
            DomainId=domain_id,
            AppType=app["AppType"],
            AppName=app["AppName"],
            **_owner(app),
        )
    if failed:
        raise DomainCleanupError(
            f"Studio app(s) of domain {domain_id} failed to delete: "
            + "; ".join(_failure(client, domain_id, app) for app in failed)
        )
    return done


def _delete_spaces(client, domain_id, retry_failed):
    spaces = list(_list(client, "list_spaces", "Spaces", domain_id))
    _raise_failed_deletes(
        client.describe_space, "space", "SpaceName", domain_id, spaces, retry_failed
    )
    for space in spaces:
        if space["Status"] != "Deleting":
            logger.info("Deleting space %s (was %s)", space["SpaceName"], space["Status"])
            _tolerate_busy(client.delete_space, DomainId=domain_id, SpaceName=space["SpaceName"])
    return not spaces


def _delete_user_profiles(client, domain_id, retry_failed):
    profiles = list(_list(client, "list_user_profiles", "UserProfiles", domain_id))
    _raise_failed_deletes(
        client.describe_user_profile, "user profile", "UserProfileName", domain_id, profiles, retry_failed
    )
    for profile in profiles:
        if profile["Status"] != "Deleting":
            name = profile["UserProfileName"]
            logger.info("Deleting user profile %s (was %s)", name, profile["Status"])
            _tolerate_busy(client.delete_user_profile, DomainId=domain_id, UserProfileName=name)
    return not profiles


def _raise_failed_deletes(describe, kind, name_key, domain_id, items, retry_failed):
    failed = [item[name_key] for item in items if item["Status"] == "Delete_Failed"]
    if failed and not retry_failed:
        # The list calls do not return the FailureReason.
        reasons = (
            f"{name}: {describe(DomainId=domain_id, **{name_key: name}).get('FailureReason') or 'no FailureReason given'}"
            for name in failed
        )
        raise DomainCleanupError(f"SageMaker could not delete {kind}(s) of domain {domain_id}: " + "; ".join(reasons))


def _failure(client, domain_id, app):
    # ListApps does not return the FailureReason.
    described = client.describe_app(
        DomainId=domain_id, AppType=app["AppType"], AppName=app["AppName"], **_owner(app)
    )
    return f"{_app_label(app)}: {described.get('FailureReason') or 'no FailureReason given'}"


def _owner(app):
    # An app belongs to a user profile (Studio Classic) or to a space; DeleteApp needs which.
    return {k: app[k] for k in ("UserProfileName", "SpaceName") if app.get(k)}


def _app_label(app):
    where = ", ".join(f"{k}={v}" for k, v in _owner(app).items())
    return f"{app['AppType']} app {app['AppName']} ({where})"


def _describe_domain(client, domain_id):
    try:
        return client.describe_domain(DomainId=domain_id)
    except ClientError as err:
        if err.response["Error"]["Code"] == "ResourceNotFound":
            return None
        raise


def _list(client, operation, key, domain_id):
    for page in client.get_paginator(operation).paginate(DomainIdEquals=domain_id):
        yield from page[key]


def _tolerate_busy(call, **kwargs):
    # What we list can change before we act on it (already gone, still in use by something
    # that is being deleted); the next poll re-reads the state and tries again.
    try:
        call(**kwargs)
    except ClientError as err:
        if err.response["Error"]["Code"] not in ("ResourceInUse", "ResourceNotFound"):
            raise
        logger.info("%s(%s) deferred: %s", call.__name__, kwargs, err)


def _domain_is_going_away(event):
    props = event["ResourceProperties"]
    if _retained(props):
        logger.info("Domain %s is retained with the stack: leaving it alone", props["DomainId"])
        return False
    cloudformation = _client("cloudformation")
    stack_id = event["StackId"]
    status = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
    if status in _STACK_GOING_AWAY:
        return True
    domain_id = props["DomainId"]
    logical_id = props.get("DomainLogicalId")
    if logical_id is None:
        logger.info("Stack is %s and the properties do not name the domain's logical id: leaving it alone", status)
        return False
    try:
        resource = cloudformation.describe_stack_resource(StackName=stack_id, LogicalResourceId=logical_id)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ValidationError":
            raise
        logger.info("Stack is %s and no longer has %s: domain %s is going away", status, logical_id, domain_id)
        return True
    current = resource["StackResourceDetail"].get("PhysicalResourceId")
    if current == domain_id:
        logger.info(
            "Stack is %s and %s is still domain %s (a replacement or rollback of this resource): leaving it alone",
            status, logical_id, domain_id,
        )
        return False
    logger.info("Stack is %s and %s is now domain %s: domain %s is going away", status, logical_id, current, domain_id)
    return True


def _retained(props):
    if "DomainRetained" in props:
        return str(props["DomainRetained"]).lower() == "true"
    # Properties of the previous version, which a rollback can restore, said so with DeleteHomeEfs.
    return str(props.get("DeleteHomeEfs", "false")).lower() != "true"


def _client(service):
    """The container's client of `service` in the function's region."""
    region = os.environ.get("AWS_REGION")
    if (service, region) not in _clients:
        _clients[(service, region)] = boto3.client(service, region_name=region, config=_CONFIG)
    return _clients[(service, region)]
