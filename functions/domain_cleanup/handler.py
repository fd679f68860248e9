"""Custom resource that empties a SageMaker Studio domain before CloudFormation deletes it.

CloudFormation deletes user profiles and the domain right after this resource, and SageMaker
refuses both while apps or spaces exist. On Delete we therefore drive the domain to a deletable
state, one phase at a time: apps, then spaces, then (only when DeleteHomeEfs is "true") user
profiles and the domain itself, so that the home EFS can be deleted with it.

Used through the CDK Provider framework: `on_event` starts the work and `is_complete` is polled
until it reports completion. Both call `reconcile`, which re-reads the live state every time, so
any invocation can be retried or repeated safely.
"""

import logging
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

_CONFIG = Config(retries={"mode": "standard"})


def on_event(event, context=None):
    props = event["ResourceProperties"]
    if event["RequestType"] != "Delete":
        # A new DomainId (domain replaced) gives a new physical id, so CloudFormation sends a
        # Delete for the old one, with the old properties, once the update has succeeded.
        return {"PhysicalResourceId": props["DomainId"]}

    reconcile(_client(), props["DomainId"], _delete_home_efs(props), retry_failed_apps=True)
    # The framework rejects a Delete that changes the physical id.
    return {"PhysicalResourceId": event["PhysicalResourceId"]}


def is_complete(event, context=None):
    if event["RequestType"] != "Delete":
        return {"IsComplete": True}
    props = event["ResourceProperties"]
    return {"IsComplete": reconcile(_client(), props["DomainId"], _delete_home_efs(props))}


def reconcile(client, domain_id, delete_home_efs, retry_failed_apps=False):
    """Take the next deletion steps; return True once the domain is ready for CloudFormation.

    Apps in `Failed` are deleted on the first pass (on_event). A `Failed` app seen on a later
    pass failed after our delete attempt, so retrying would loop until the Provider times out:
    raise instead, with SageMaker's reason.
    """
    domain = _describe_domain(client, domain_id)
    if domain is None:
        logger.info("Domain %s does not exist (any more), nothing to clean up", domain_id)
        return True

    if not _delete_apps(client, domain_id, retry_failed_apps):
        return False
    if not _delete_spaces(client, domain_id):
        return False
    if not delete_home_efs:
        # CloudFormation deletes the profiles and the domain; its DeleteDomain retains the EFS.
        return True
    if not _delete_user_profiles(client, domain_id):
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
        raise RuntimeError(
            f"Studio app(s) of domain {domain_id} failed to delete: "
            + "; ".join(_failure(client, domain_id, app) for app in failed)
        )
    return done


def _delete_spaces(client, domain_id):
    spaces = list(_list(client, "list_spaces", "Spaces", domain_id))
    for space in spaces:
        if space["Status"] != "Deleting":
            logger.info("Deleting space %s (was %s)", space["SpaceName"], space["Status"])
            _tolerate_busy(client.delete_space, DomainId=domain_id, SpaceName=space["SpaceName"])
    return not spaces


def _delete_user_profiles(client, domain_id):
    profiles = list(_list(client, "list_user_profiles", "UserProfiles", domain_id))
    for profile in profiles:
        if profile["Status"] != "Deleting":
            name = profile["UserProfileName"]
            logger.info("Deleting user profile %s (was %s)", name, profile["Status"])
            _tolerate_busy(client.delete_user_profile, DomainId=domain_id, UserProfileName=name)
    return not profiles


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


def _delete_home_efs(props):
    return str(props.get("DeleteHomeEfs", "false")).lower() == "true"


def _client():
    return boto3.client("sagemaker", region_name=os.environ["AWS_REGION"], config=_CONFIG)
