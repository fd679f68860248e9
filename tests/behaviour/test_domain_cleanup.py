"""Behaviour of the Studio domain clean-up custom resource, driven like the CDK Provider would."""

import importlib.util
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.behaviour.studio_shim import studio_shim

REGION = "eu-west-1"
MAX_POLLS = 50

_HANDLER_PATH = Path(__file__).parents[2] / "functions" / "domain_cleanup" / "handler.py"
_spec = importlib.util.spec_from_file_location("domain_cleanup_handler", _HANDLER_PATH)
handler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handler)




@pytest.fixture
def shim(aws_env):
    with mock_aws(), studio_shim(region=REGION) as studio:
        yield studio


@pytest.fixture
def sm(shim):
    return boto3.client("sagemaker", region_name=REGION)


def _create_domain(sm, name="studio"):
    arn = sm.create_domain(
        DomainName=name,
        AuthMode="IAM",
        DefaultUserSettings={"ExecutionRole": "arn:aws:iam::123456789012:role/studio"},
        SubnetIds=["subnet-0123456789abcdef0"],
        VpcId="vpc-0123456789abcdef0",
    )["DomainArn"]
    return arn.rsplit("/", 1)[1]


@pytest.fixture
def domain_id(sm):
    """A domain in use: two users, a private and a shared space, apps of users and of spaces."""
    domain = _create_domain(sm)
    for user in ("alice", "bob"):
        sm.create_user_profile(DomainId=domain, UserProfileName=user)
    sm.create_space(
        DomainId=domain,
        SpaceName="alice-private",
        OwnershipSettings={"OwnerUserProfileName": "alice"},
        SpaceSharingSettings={"SharingType": "Private"},
    )
    sm.create_space(
        DomainId=domain, SpaceName="team", SpaceSharingSettings={"SharingType": "Shared"}
    )
    for owner, app_type in [
        ({"SpaceName": "alice-private"}, "JupyterLab"),
        ({"SpaceName": "team"}, "CodeEditor"),
        ({"UserProfileName": "bob"}, "JupyterServer"),  # Studio Classic: the app is the user's
    ]:
        sm.create_app(DomainId=domain, AppType=app_type, AppName="default", **owner)
    return domain


def _event(request_type, domain_id, delete_home_efs="false", physical_id=None):
    event = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
        "ResourceType": "Custom::StudioDomainCleanup",
        "LogicalResourceId": "DomainCleanup",
        "RequestId": "request-1",
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/dev/guid",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
            "DomainId": domain_id,
            "DeleteHomeEfs": delete_home_efs,
        },
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = physical_id or domain_id
    return event


def _run(event, after_on_event=None):
    """Call on_event, then is_complete until it reports completion; return is_complete's answers."""
    result = handler.on_event(event)
    event = {**event, **result}
    if after_on_event:
        after_on_event()
    answers = []
    for _ in range(MAX_POLLS):
        answers.append(handler.is_complete(event)["IsComplete"])
        if answers[-1]:
            return answers
    pytest.fail(f"not complete after {MAX_POLLS} polls")


def _apps(sm, domain_id):
    paginator = sm.get_paginator("list_apps")
    return [a for page in paginator.paginate(DomainIdEquals=domain_id) for a in page["Apps"]]


def _names(sm, operation, key, name_key, domain_id):
    pages = sm.get_paginator(operation).paginate(DomainIdEquals=domain_id)
    return sorted(item[name_key] for page in pages for item in page[key])


def test_delete_removes_apps_and_spaces_and_waits_until_apps_are_deleted(sm, shim, domain_id):
    seen_after_on_event = {}

    answers = _run(
        _event("Delete", domain_id),
        after_on_event=lambda: seen_after_on_event.update(shim.app_statuses(domain_id)),
    )

    assert set(seen_after_on_event.values()) == {"Deleting"}
    assert False in answers and answers[-1] is True
    assert {a["Status"] for a in _apps(sm, domain_id)} == {"Deleted"}
    assert _names(sm, "list_spaces", "Spaces", "SpaceName", domain_id) == []


def test_delete_keeps_profiles_domain_and_home_efs_when_retaining(sm, shim, domain_id):
    _run(_event("Delete", domain_id, delete_home_efs="false"))

    assert _names(sm, "list_user_profiles", "UserProfiles", "UserProfileName", domain_id) == [
        "alice",
        "bob",
    ]
    assert sm.describe_domain(DomainId=domain_id)["Status"] == "InService"
    with pytest.raises(KeyError):  # DeleteDomain never called: CloudFormation's will retain EFS
        shim.retention_policy(domain_id)


def test_delete_with_home_efs_deletion_removes_profiles_then_domain_with_delete_retention(
    sm, shim, domain_id
):
    answers = _run(_event("Delete", domain_id, delete_home_efs="true"))

    assert answers[-1] is True
    assert shim.retention_policy(domain_id) == {"HomeEfsFileSystem": "Delete"}
    with pytest.raises(ClientError) as missing:
        sm.describe_domain(DomainId=domain_id)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"


def test_delete_covers_apps_and_spaces_beyond_the_first_page(sm, shim):
    domain = _create_domain(sm)
    for i in range(12):  # ListApps and ListSpaces return 10 per page by default
        sm.create_space(DomainId=domain, SpaceName=f"s{i}")
        sm.create_app(
            DomainId=domain, SpaceName=f"s{i}", AppType="CodeEditor", AppName="default"
        )

    _run(_event("Delete", domain))

    assert set(shim.app_statuses(domain).values()) == {"Deleted"}
    assert shim.space_statuses(domain) == {}


def test_app_that_failed_before_the_delete_is_deleted_too(sm, shim, domain_id):
    shim.fail_app(domain_id, "team/CodeEditor/default", "Lifecycle config failed", on_delete=False)

    _run(_event("Delete", domain_id))

    assert set(shim.app_statuses(domain_id).values()) == {"Deleted"}


def test_app_that_fails_to_delete_fails_the_operation_with_its_reason(sm, shim):
    domain = _create_domain(sm)
    sm.create_space(DomainId=domain, SpaceName="team")
    sm.create_app(DomainId=domain, SpaceName="team", AppType="CodeEditor", AppName="stuck")
    shim.fail_app(domain, "team/CodeEditor/stuck", "ENI could not be detached", on_delete=True)

    with pytest.raises(RuntimeError) as failure:
        _run(_event("Delete", domain))

    assert "stuck" in str(failure.value)
    assert "ENI could not be detached" in str(failure.value)


def test_missing_domain_on_delete_is_not_an_error(aws_env):
    with mock_aws(), studio_shim(region=REGION):
        answers = _run(_event("Delete", "d-doesnotexist"))

    assert answers == [True]


def test_create_and_update_make_no_changes(sm, shim, domain_id, monkeypatch):
    before = shim.app_statuses(domain_id)

    def no_aws_calls(*args, **kwargs):
        raise AssertionError("Create and Update must not call AWS")

    monkeypatch.setattr(handler.boto3, "client", no_aws_calls)
    created = handler.on_event(_event("Create", domain_id))
    updated = handler.on_event(_event("Update", "d-replacement", physical_id=domain_id))

    assert created == {"PhysicalResourceId": domain_id}
    assert updated == {"PhysicalResourceId": "d-replacement"}
    assert handler.is_complete({**_event("Create", domain_id), **created}) == {"IsComplete": True}
    assert handler.is_complete({**_event("Update", domain_id), **updated}) == {"IsComplete": True}
    assert shim.app_statuses(domain_id) == before


def test_delete_keeps_the_physical_resource_id(sm, shim, domain_id):
    # The Provider framework rejects a Delete whose answer changes the physical id.
    event = _event("Delete", domain_id, physical_id="some-earlier-id")

    assert handler.on_event(event) == {"PhysicalResourceId": "some-earlier-id"}


def test_shim_refuses_to_delete_a_domain_that_still_has_profiles(sm, domain_id):
    with pytest.raises(ClientError) as refused:
        sm.delete_domain(DomainId=domain_id, RetentionPolicy={"HomeEfsFileSystem": "Delete"})

    assert refused.value.response["Error"]["Code"] == "ResourceInUse"


def test_shim_refuses_to_delete_a_space_with_running_apps(sm, domain_id):
    with pytest.raises(ClientError) as refused:
        sm.delete_space(DomainId=domain_id, SpaceName="team")

    assert refused.value.response["Error"]["Code"] == "ResourceInUse"


def test_shim_patch_is_undone_on_exit(aws_env):
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    original_describe = SageMakerModelBackend.describe_domain
    with mock_aws(), studio_shim(region=REGION):
        assert hasattr(SageMakerResponse, "list_apps")

    assert not hasattr(SageMakerResponse, "list_apps")
    assert not hasattr(SageMakerModelBackend, "list_apps")
    assert SageMakerModelBackend.describe_domain is original_describe
