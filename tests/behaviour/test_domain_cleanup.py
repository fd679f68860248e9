"""Behaviour of the Studio domain clean-up custom resource, driven through CloudFormation's event sequences."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.behaviour import iam_calls
from tests.behaviour.cfn_sequences import StackReplay
from tests.behaviour.iam_calls import WorldNames
from tests.behaviour.sfn_harness import Call
from tests.behaviour.studio_shim import studio_shim
from tests.conftest import aws_unreachable
from tests.permissions import EnvironmentPolicies

REGION = "eu-west-1"
ACCOUNT = "123456789012"
MAX_POLLS = 50
DOMAIN_LOGICAL_ID = "Domain1A2B3C4D"

_HANDLER_PATH = Path(__file__).parents[2] / "functions" / "domain_cleanup" / "handler.py"
_spec = importlib.util.spec_from_file_location("domain_cleanup_handler", _HANDLER_PATH)
handler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handler)
# Each test in a container of its own: the function keeps its clients for a container's life.
pytestmark = pytest.mark.usefixtures("new_container")


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


def _props(domain_id, retained=False):
    return {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
        "DomainId": domain_id,
        "DomainLogicalId": DOMAIN_LOGICAL_ID,
        "DomainRetained": str(retained).lower(),
    }


def _stack(domain_id, **options):
    """The studio stack: its domain, and the clean-up resource as its first deploy created it."""
    stack = StackReplay(
        handler,
        resource_type="Custom::StudioDomainCleanup",
        logical_id="DomainCleanup",
        stack_name="dev-studio",
        region=REGION,
        account=ACCOUNT,
        **options,
    )
    stack.set_resource(DOMAIN_LOGICAL_ID, domain_id, "AWS::SageMaker::Domain")
    stack.create(_props(domain_id), stack_create=True)
    return stack


@pytest.fixture
def stack(domain_id):
    return _stack(domain_id)


def _contents(sm, shim, domain_id):
    """What exists of the domain: its status (None once gone), apps, spaces and profiles."""
    try:
        status = sm.describe_domain(DomainId=domain_id)["Status"]
    except ClientError as err:
        assert err.response["Error"]["Code"] == "ResourceNotFound"
        status = None
    return {
        "domain": status,
        "apps": shim.app_statuses(domain_id),
        "spaces": shim.space_statuses(domain_id),
        "profiles": shim.profile_statuses(domain_id),
    }


GONE = {"domain": None, "apps": {}, "spaces": {}, "profiles": {}}


def _delete_event(stack, domain_id):
    return {
        "RequestType": "Delete",
        "StackId": stack.stack_id,
        "LogicalResourceId": "DomainCleanup",
        "PhysicalResourceId": domain_id,
        "ResourceProperties": _props(domain_id),
    }


def _poll(event, after_on_event=None):
    """on_event, then is_complete until it reports completion, as the Provider does; is_complete's answers."""
    event = {**event, **handler.on_event(event)}
    if after_on_event:
        after_on_event()
    answers = []
    for _ in range(MAX_POLLS):
        answers.append(handler.is_complete(event)["IsComplete"])
        if answers[-1]:
            return answers
    pytest.fail(f"not complete after {MAX_POLLS} polls")


# --- the stack is deleted: everything goes ---------------------------------------------------


def test_stack_delete_deletes_apps_spaces_profiles_and_the_domain_with_its_home_efs(sm, shim, domain_id, stack):
    stack.delete_stack()

    assert _contents(sm, shim, domain_id) == GONE
    assert shim.retention_policy(domain_id) == {"HomeEfsFileSystem": "Delete"}


def test_stack_delete_asks_for_the_app_deletes_then_waits_until_they_are_deleted(sm, shim, domain_id, stack):
    stack.status("DELETE_IN_PROGRESS")
    seen_after_on_event = {}

    answers = _poll(
        _delete_event(stack, domain_id),
        after_on_event=lambda: seen_after_on_event.update(shim.app_statuses(domain_id)),
    )

    assert set(seen_after_on_event.values()) == {"Deleting"}
    assert False in answers and answers[-1] is True


def test_stack_delete_covers_apps_and_spaces_beyond_the_first_page(sm, shim):
    domain = _create_domain(sm)
    for i in range(12):  # ListApps and ListSpaces return 10 per page by default
        sm.create_space(DomainId=domain, SpaceName=f"s{i}")
        sm.create_app(
            DomainId=domain, SpaceName=f"s{i}", AppType="CodeEditor", AppName="default"
        )

    _stack(domain).delete_stack()

    assert _contents(sm, shim, domain) == GONE


def test_apps_still_starting_refuse_their_delete_for_a_while_and_are_deleted_once_started(sm, shim):
    domain = _create_domain(sm)
    shim.apps_start_pending(reads=3)
    sm.create_space(DomainId=domain, SpaceName="team")
    sm.create_app(DomainId=domain, SpaceName="team", AppType="CodeEditor", AppName="starting")
    assert shim.app_statuses(domain) == {"team/CodeEditor/starting": "Pending"}
    with pytest.raises(ClientError) as refused:
        sm.delete_app(DomainId=domain, SpaceName="team", AppType="CodeEditor", AppName="starting")
    assert refused.value.response["Error"]["Code"] == "ResourceInUse"

    _stack(domain).delete_stack()

    assert _contents(sm, shim, domain) == GONE


def test_app_that_failed_before_the_delete_is_deleted_too(sm, shim, domain_id, stack):
    shim.fail_app(domain_id, "team/CodeEditor/default", "Lifecycle config failed", on_delete=False)

    stack.delete_stack()

    assert _contents(sm, shim, domain_id) == GONE


def test_app_that_fails_to_delete_fails_the_operation_with_its_reason(sm, shim):
    domain = _create_domain(sm)
    sm.create_space(DomainId=domain, SpaceName="team")
    sm.create_app(DomainId=domain, SpaceName="team", AppType="CodeEditor", AppName="stuck")
    shim.fail_app(domain, "team/CodeEditor/stuck", "ENI could not be detached", on_delete=True)
    stack = _stack(domain)

    with pytest.raises(handler.DomainCleanupError) as failure:
        stack.delete_stack()

    assert "stuck" in str(failure.value)
    assert "ENI could not be detached" in str(failure.value)


@pytest.mark.parametrize(("kind", "name"), [("space", "team"), ("profile", "alice")])
def test_a_space_or_profile_that_fails_to_delete_fails_at_the_next_poll_with_its_reason(
    sm, shim, domain_id, stack, kind, name
):
    shim.fail_next_deletion(domain_id, kind, name, "EFS access point could not be removed")
    stack.status("DELETE_IN_PROGRESS")

    with pytest.raises(handler.DomainCleanupError) as failure:
        _poll(_delete_event(stack, domain_id))

    assert name in str(failure.value)
    assert "EFS access point could not be removed" in str(failure.value)


def test_a_domain_that_fails_to_delete_fails_at_the_next_poll_with_its_reason(sm, shim, domain_id, stack):
    shim.fail_next_domain_deletion(domain_id, "Home EFS mount targets are in use")

    with pytest.raises(handler.DomainCleanupError, match="Home EFS mount targets are in use"):
        stack.delete_stack()


def test_a_stack_delete_retried_after_a_failed_domain_delete_deletes_it(sm, shim, domain_id, stack):
    shim.fail_next_domain_deletion(domain_id, "Home EFS mount targets are in use")
    with pytest.raises(handler.DomainCleanupError):
        stack.delete_stack()

    stack.delete_stack()

    assert _contents(sm, shim, domain_id) == GONE


def test_a_stack_delete_retried_after_a_failed_space_delete_deletes_everything(sm, shim, domain_id, stack):
    shim.fail_next_deletion(domain_id, "space", "team", "EFS access point could not be removed")
    with pytest.raises(handler.DomainCleanupError):
        stack.delete_stack()

    stack.delete_stack()

    assert _contents(sm, shim, domain_id) == GONE


def test_a_repeated_stack_delete_finds_the_domain_gone(sm, shim, domain_id):
    _stack(domain_id, repeat_each_event=2).delete_stack()

    assert _contents(sm, shim, domain_id) == GONE


def test_a_failed_first_create_of_the_stack_deletes_the_domain_it_created(sm, shim, domain_id):
    stack = StackReplay(
        handler, resource_type="Custom::StudioDomainCleanup", logical_id="DomainCleanup",
        stack_name="dev-studio", region=REGION, account=ACCOUNT,
    )
    stack.set_resource(DOMAIN_LOGICAL_ID, domain_id, "AWS::SageMaker::Domain")

    stack.create_rolled_back(_props(domain_id), "DomainCleanup", stack_create=True)

    assert _contents(sm, shim, domain_id) == GONE


def test_missing_domain_on_stack_delete_is_not_an_error(shim):
    _stack("d-doesnotexist").delete_stack()


# --- the domain is replaced: the old one goes, the new one stays -----------------------------


def test_a_replaced_domain_is_emptied_and_deleted_and_the_new_one_kept(sm, shim, domain_id, stack):
    new_domain = _create_domain(sm, "studio-2")
    sm.create_user_profile(DomainId=new_domain, UserProfileName="alice")
    before = _contents(sm, shim, new_domain)

    stack.update(_props(new_domain), others={DOMAIN_LOGICAL_ID: (new_domain, "AWS::SageMaker::Domain")})

    assert _contents(sm, shim, domain_id) == GONE
    assert _contents(sm, shim, new_domain) == before


def test_a_rolled_back_domain_replacement_deletes_the_new_domain_and_keeps_the_old_one(sm, shim, domain_id, stack):
    new_domain = _create_domain(sm, "studio-2")
    before = _contents(sm, shim, domain_id)

    stack.update_rolled_back(_props(new_domain), others={DOMAIN_LOGICAL_ID: (new_domain, "AWS::SageMaker::Domain")})

    assert _contents(sm, shim, domain_id) == before
    assert _contents(sm, shim, new_domain) == GONE


def test_a_domain_removed_from_the_template_is_deleted(sm, shim, domain_id, stack):
    stack.set_resource(DOMAIN_LOGICAL_ID, None, "AWS::SageMaker::Domain")

    stack.remove()

    assert _contents(sm, shim, domain_id) == GONE


# --- the domain stays: nothing in it is touched ----------------------------------------------


@pytest.mark.parametrize("repeat", [1, 2], ids=["once", "retried"])
def test_replacing_the_clean_up_through_a_new_logical_id_leaves_the_domain_alone(sm, shim, domain_id, repeat):
    stack = _stack(domain_id, repeat_each_event=repeat)
    before = _contents(sm, shim, domain_id)

    stack.replace_logical_id("MovedDomainCleanup")

    assert _contents(sm, shim, domain_id) == before


def test_rollback_of_an_update_that_added_the_clean_up_leaves_the_domain_alone(sm, shim, domain_id):
    stack = StackReplay(
        handler, resource_type="Custom::StudioDomainCleanup", logical_id="DomainCleanup",
        stack_name="dev-studio", region=REGION, account=ACCOUNT,
    )
    stack.set_resource(DOMAIN_LOGICAL_ID, domain_id, "AWS::SageMaker::Domain")
    before = _contents(sm, shim, domain_id)

    stack.create_rolled_back(_props(domain_id), "DomainCleanup")

    assert _contents(sm, shim, domain_id) == before


def test_an_update_rolled_back_after_a_later_failure_leaves_the_domain_alone(sm, shim, domain_id, stack):
    before = _contents(sm, shim, domain_id)

    stack.update_rolled_back(_props(domain_id))

    assert _contents(sm, shim, domain_id) == before


def test_removing_the_clean_up_from_the_template_leaves_the_domain_alone(sm, shim, domain_id, stack):
    # storage.removal switched to retain: the domain stays in the stack, the clean-up resource goes.
    before = _contents(sm, shim, domain_id)

    stack.remove()

    assert _contents(sm, shim, domain_id) == before


def test_a_retained_domain_survives_a_stack_delete_and_its_replacement_untouched(sm, shim, domain_id, monkeypatch):
    stack = StackReplay(
        handler, resource_type="Custom::StudioDomainCleanup", logical_id="DomainCleanup",
        stack_name="prod-studio", region=REGION, account=ACCOUNT,
    )
    stack.set_resource(DOMAIN_LOGICAL_ID, domain_id, "AWS::SageMaker::Domain")
    new_domain = _create_domain(sm, "studio-2")
    before = _contents(sm, shim, domain_id)

    def no_aws_calls(*args, **kwargs):
        raise AssertionError("the clean-up of a retained domain must not call AWS")

    monkeypatch.setattr(handler.boto3, "client", no_aws_calls)
    stack.create(_props(domain_id, retained=True))
    stack.update(_props(new_domain, retained=True), others={DOMAIN_LOGICAL_ID: (new_domain, "AWS::SageMaker::Domain")})
    stack.delete_stack()
    monkeypatch.undo()

    assert _contents(sm, shim, domain_id) == before


@pytest.mark.parametrize(
    ("previous_props", "status"),
    [({"DeleteHomeEfs": "false"}, "DELETE_IN_PROGRESS"), ({"DeleteHomeEfs": "true"}, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")],
    ids=["retained-stack-delete", "disposable-replacement"],
)
def test_properties_of_the_previous_version_restored_by_a_rollback_never_delete_a_domain_that_stays(
    sm, shim, domain_id, stack, previous_props, status
):
    before = _contents(sm, shim, domain_id)
    stack.status(status)
    event = {**_delete_event(stack, domain_id), "ResourceProperties": {"DomainId": domain_id, **previous_props}}

    _poll(event)

    assert _contents(sm, shim, domain_id) == before


def test_create_and_update_make_no_aws_calls(sm, shim, domain_id, monkeypatch):
    stack = StackReplay(
        handler, resource_type="Custom::StudioDomainCleanup", logical_id="DomainCleanup",
        stack_name="dev-studio", region=REGION, account=ACCOUNT,
    )
    before = _contents(sm, shim, domain_id)

    def no_aws_calls(*args, **kwargs):
        raise AssertionError("Create and Update must not call AWS")

    monkeypatch.setattr(handler.boto3, "client", no_aws_calls)
    created = stack.create(_props(domain_id))
    updated = stack.update(_props(domain_id))

    assert created == updated == domain_id
    monkeypatch.undo()
    assert _contents(sm, shim, domain_id) == before


def test_delete_keeps_the_physical_resource_id(sm, shim, domain_id, stack):
    # The Provider framework rejects a Delete whose answer changes the physical id.
    stack.status("DELETE_IN_PROGRESS")
    event = {**_delete_event(stack, domain_id), "PhysicalResourceId": "some-earlier-id"}

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


def _recording_handler_calls(monkeypatch) -> list[Call]:
    """Every AWS call the handler makes from now on, with its parameters."""
    session = boto3.Session(region_name=REGION)
    calls: list[Call] = []
    session.events.register(
        "before-parameter-build",
        lambda params, model, **_: calls.append(Call("domain clean-up", model.service_model.service_name, xform_name(model.name), dict(params))),
    )
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=session.client))
    return calls


def _decided(synthesized, calls: list[Call], stack: StackReplay, domains: dict[str, str]) -> list:
    """Each call decided against the clean-up role of dev's studio template; `domains` maps each domain id
    to the attribute (logical id, name) the template names it by."""
    policies = EnvironmentPolicies(synthesized, "dev")
    resources = policies.templates["studio"]["Resources"]
    (role_id,) = [logical_id for logical_id, r in resources.items() if r["Type"] == "AWS::IAM::Role" and logical_id.startswith("DomainCleanupHandlerRole")]
    names = WorldNames(
        policies,
        "studio",
        REGION,
        {
            **{domain: policies.resolve("studio", {"Fn::GetAtt": [_logical_id(resources, kind), attribute]}) for domain, (kind, attribute) in domains.items()},
            stack.stack_id: policies.resolve("studio", {"Ref": "AWS::StackId"}),
        },
    )
    caller = policies.arn("studio", role_id)
    return policies.decide([r for call in calls for r in iam_calls.requests(call, caller, names)])


def _logical_id(resources: dict, resource_type: str) -> str:
    (logical_id,) = [logical_id for logical_id, r in resources.items() if r["Type"] == resource_type]
    return logical_id


THE_DOMAIN = ("AWS::SageMaker::Domain", "DomainId")


def test_every_call_of_a_stack_delete_is_allowed_to_the_synthesized_role_on_the_resource_it_names(synthesized, sm, shim, domain_id, stack, monkeypatch):
    calls = _recording_handler_calls(monkeypatch)
    stack.delete_stack()

    decided = _decided(synthesized, calls, stack, {domain_id: THE_DOMAIN})

    assert {call.operation for call in calls} >= {"describe_domain", "list_apps", "delete_app", "delete_space", "delete_user_profile", "delete_domain"}
    assert [d.explain() for d in decided if not d.allowed] == []


def test_every_call_of_a_domain_replacement_is_allowed_to_the_synthesized_role_on_the_resource_it_names(synthesized, sm, shim, domain_id, monkeypatch):
    calls = _recording_handler_calls(monkeypatch)
    new_domain = _create_domain(sm, "studio-2")
    stack = _stack(domain_id)
    domains = _domains_to_clean_up(domain_id)
    domains.update({"DomainId": new_domain})
    reported = domains.reported[DOMAINS_TO_CLEAN_UP]
    calls.clear()
    stack.update(_props(new_domain), others={DOMAIN_LOGICAL_ID: (new_domain, "AWS::SageMaker::Domain")})

    decided = _decided(synthesized, calls, stack, {new_domain: THE_DOMAIN, reported["PreviousDomainId"]: ("Custom::StudioDomainsToCleanUp", "PreviousDomainId")})

    assert reported == {"DomainId": new_domain, "PreviousDomainId": domain_id}
    assert {call.operation for call in calls} >= {"describe_domain", "delete_app", "delete_domain"}
    assert [d.explain() for d in decided if not d.allowed] == []


def test_the_domains_to_clean_up_keep_their_physical_id_so_cloudformation_deletes_nothing(shim):
    domains = _domains_to_clean_up("d-old")
    created = domains.resources[DOMAINS_TO_CLEAN_UP].physical_id

    assert domains.update({"DomainId": "d-new"}) == created


def test_a_rollback_of_a_replacement_lets_the_clean_up_reach_the_domain_the_update_created(shim):
    domains = _domains_to_clean_up("d-old")

    # The rollback updates the template's domain back to the old one; the new one's clean-up follows.
    domains.update_rolled_back({"DomainId": "d-new"})

    assert domains.reported[DOMAINS_TO_CLEAN_UP] == {"DomainId": "d-old", "PreviousDomainId": "d-new"}


def test_an_update_that_keeps_the_domain_lets_the_clean_up_reach_that_domain_alone(shim):
    domains = _domains_to_clean_up("d-same")

    domains.update({"DomainId": "d-same"})

    assert domains.reported[DOMAINS_TO_CLEAN_UP] == {"DomainId": "d-same", "PreviousDomainId": "d-same"}


def test_the_first_deploy_lets_the_clean_up_reach_its_domain_alone(shim):
    domains = _domains_to_clean_up("d-first")

    assert domains.reported[DOMAINS_TO_CLEAN_UP] == {"DomainId": "d-first", "PreviousDomainId": "d-first"}


def test_the_domains_to_clean_up_never_call_aws(shim):
    domains = _domains_to_clean_up("d-old")
    attempts: list[str] = []

    with aws_unreachable(attempts):
        domains.update({"DomainId": "d-new"})
        domains.delete_stack()

    assert attempts == []


DOMAINS_TO_CLEAN_UP = "DomainCleanupDomainsToCleanUp"


def _domains_to_clean_up(domain_id: str) -> StackReplay:
    """The resource that reports the domains the clean-up may reach, as the stack's first deploy created it;
    every one of its events must be complete at the first poll."""
    domains = StackReplay(
        handler,
        resource_type="Custom::StudioDomainsToCleanUp",
        logical_id=DOMAINS_TO_CLEAN_UP,
        stack_name="dev-studio-domains",
        region=REGION,
        account=ACCOUNT,
        max_polls=1,
    )
    domains.create({"DomainId": domain_id}, stack_create=True)
    return domains
