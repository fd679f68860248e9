"""SageMaker Studio user profiles, spaces and apps for moto 5.2.5, which lacks them.

`studio_shim()` patches moto's `SageMakerModelBackend` (state and behaviour) and
`SageMakerResponse` (one snake_case method per API action, which is how moto dispatches), so plain
boto3 calls inside `mock_aws()` take moto's normal request path; the patch is undone on exit.

It aims to behave like SageMaker, not like any caller of it:
- apps are InService on create, or, when a test asked for it (`apps_start_pending`), Pending for that
  many ListApps/DescribeApp reads first, during which DeleteApp answers ResourceInUse (AWS does not
  document what DeleteApp answers for a Pending app; this is the shape the clean-up must survive);
  DeleteApp makes them Deleting, and after `reads_until_done`
  further ListApps/DescribeApp reads of them they are Deleted (and stay listed) or, when a test
  asked for it, Failed with a FailureReason;
- spaces and user profiles go Deleting and disappear after `reads_until_done` reads or, when a test
  asked for it, end in Delete_Failed with a FailureReason (once: deleting them again succeeds);
- DeleteSpace, DeleteUserProfile and DeleteDomain answer ResourceInUse while something still
  depends on them; DescribeDomain and DeleteDomain answer ResourceNotFound for unknown ids (moto
  itself answers ValidationException); DeleteDomain also goes through Deleting, and the
  RetentionPolicy it was given is recorded; when a test asked for it, the domain's delete ends in
  Delete_Failed with a FailureReason instead (once).
Known simplifications: list calls always sort newest first and ignore SortBy/SortOrder, and
nothing but the shape of ids and names is validated.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterator
from unittest import mock

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemaker.utils import arn_formatter

# SageMaker's default page size for these list calls.
_DEFAULT_MAX_RESULTS = 10
_ORDER = itertools.count()


@dataclass
class _Resource:
    domain_id: str
    name: str
    arn: str
    status: str = "InService"
    failure_reason: str = ""
    created: Any = field(default_factory=utcnow)
    # Sort key and pagination cursor: creation order, stable while items come and go.
    order: int = field(default_factory=lambda: next(_ORDER))
    reads_while_deleting: int = 0
    fail_deletion_with: str | None = None
    reads_while_pending: int = 0


@dataclass
class _Profile(_Resource):
    pass


@dataclass
class _Space(_Resource):
    owner: str | None = None  # OwnershipSettings.OwnerUserProfileName (private spaces)
    sharing_type: str = "Private"


@dataclass
class _App(_Resource):
    app_type: str = ""
    owner_key: str = ""  # "UserProfileName" or "SpaceName"
    owner: str = ""

    def details(self) -> dict[str, Any]:
        return {
            "DomainId": self.domain_id,
            self.owner_key: self.owner,
            "AppType": self.app_type,
            "AppName": self.name,
            "Status": self.status,
            "CreationTime": self.created,
        }


@dataclass
class _StudioState:
    reads_until_done: int
    # Reads a new app stays Pending for (0: InService on create).
    pending_reads: int = 0
    profiles: dict[tuple[str, str], _Profile] = field(default_factory=dict)
    spaces: dict[tuple[str, str], _Space] = field(default_factory=dict)
    apps: dict[tuple[str, str, str, str, str], _App] = field(default_factory=dict)
    domain_reads: dict[str, int] = field(default_factory=dict)
    retention_policies: dict[str, dict[str, str] | None] = field(default_factory=dict)
    domain_delete_failures: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Backend: state and behaviour, patched onto SageMakerModelBackend.
# ---------------------------------------------------------------------------------------------


def _studio(self: SageMakerModelBackend) -> _StudioState:
    # Lazily per backend instance: moto's reset() rebuilds backends, taking this state with it.
    if "_studio_state" not in self.__dict__:
        self.__dict__["_studio_state"] = _StudioState(reads_until_done=_reads_until_done)
    return self.__dict__["_studio_state"]


def _observe(state: _StudioState, res: _Resource) -> bool:
    """Count a read of `res`; finish a start or a deletion after enough reads. False once `res` is gone."""
    if res.status == "Pending":
        if res.reads_while_pending < state.pending_reads:
            res.reads_while_pending += 1
        else:
            res.status = "InService"
        return True
    if res.status != "Deleting":
        return True
    if res.reads_while_deleting < state.reads_until_done:
        res.reads_while_deleting += 1
        return True
    if isinstance(res, _App):
        res.status = "Failed" if res.fail_deletion_with else "Deleted"
        res.failure_reason = res.fail_deletion_with or ""
        return True
    if res.fail_deletion_with:
        res.status, res.failure_reason, res.fail_deletion_with = "Delete_Failed", res.fail_deletion_with, None
        return True
    table = state.profiles if isinstance(res, _Profile) else state.spaces
    del table[(res.domain_id, res.name)]
    return False


def _page(
    state: _StudioState, items: list[_Resource], max_results: int | None, next_token: str | None
) -> tuple[list[_Resource], str | None]:
    items = sorted(items, key=lambda r: r.order, reverse=True)
    if next_token:
        items = [r for r in items if r.order < int(next_token)]
    page = items[: max_results or _DEFAULT_MAX_RESULTS]
    token = str(page[-1].order) if len(items) > len(page) else None
    return [r for r in page if _observe(state, r)], token


def _existing_domain(self: SageMakerModelBackend, domain_id: str) -> Any:
    self._studio_tick_domains()
    if domain_id not in self.domains:
        raise ResourceNotFound(f"Domain [{domain_id}] not found.")
    return self.domains[domain_id]


def _tick_domains(self: SageMakerModelBackend) -> None:
    state = self._studio()
    for domain_id in list(state.domain_reads):
        if domain_id not in self.domains:
            del state.domain_reads[domain_id]
        elif state.domain_reads[domain_id] < state.reads_until_done:
            state.domain_reads[domain_id] += 1
        elif domain_id in state.domain_delete_failures:
            domain = self.domains[domain_id]
            domain.status, domain.failure_reason = "Delete_Failed", state.domain_delete_failures.pop(domain_id)
            del state.domain_reads[domain_id]
        else:
            del self.domains[domain_id]
            del state.domain_reads[domain_id]
            for table in (state.profiles, state.spaces, state.apps):
                for key in [k for k in table if k[0] == domain_id]:
                    del table[key]


def describe_domain(self: SageMakerModelBackend, domain_id: str) -> dict[str, Any]:
    return self._studio_existing_domain(domain_id).describe()


def list_domains(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
    self._studio_tick_domains()
    return _original_list_domains(self, *args, **kwargs)


def delete_domain(
    self: SageMakerModelBackend, domain_id: str, retention_policy: dict[str, str] | None
) -> None:
    domain = self._studio_existing_domain(domain_id)
    state = self._studio()
    if any(k[0] == domain_id for k in itertools.chain(state.profiles, state.spaces)):
        raise ResourceInUseException(
            f"Unable to delete Domain [{domain.arn}] because UserProfile(s) or Space(s) "
            "are associated with it."
        )
    domain.status = "Deleting"
    state.domain_reads.setdefault(domain_id, 0)
    state.retention_policies[domain_id] = retention_policy


def create_user_profile(self: SageMakerModelBackend, domain_id: str, name: str) -> str:
    self._studio_existing_domain(domain_id)
    state = self._studio()
    if (domain_id, name) in state.profiles:
        raise ResourceInUseException(f"UserProfile [{name}] already exists.")
    arn = arn_formatter("user-profile", f"{domain_id}/{name}", self.account_id, self.region_name)
    state.profiles[(domain_id, name)] = _Profile(domain_id, name, arn)
    return arn


def _profile(self: SageMakerModelBackend, domain_id: str, name: str) -> _Profile:
    profile = self._studio().profiles.get((domain_id, name))
    if profile is None:
        raise ResourceNotFound(f"UserProfile [{name}] in domain [{domain_id}] not found.")
    return profile


def describe_user_profile(self: SageMakerModelBackend, domain_id: str, name: str) -> _Profile:
    profile = self._studio_profile(domain_id, name)
    if not _observe(self._studio(), profile):
        raise ResourceNotFound(f"UserProfile [{name}] in domain [{domain_id}] not found.")
    return profile


def list_user_profiles(
    self: SageMakerModelBackend,
    domain_id: str | None,
    max_results: int | None,
    next_token: str | None,
) -> tuple[list[_Resource], str | None]:
    state = self._studio()
    profiles = [p for p in state.profiles.values() if domain_id in (None, p.domain_id)]
    return _page(state, profiles, max_results, next_token)


def delete_user_profile(self: SageMakerModelBackend, domain_id: str, name: str) -> None:
    profile = self._studio_profile(domain_id, name)
    state = self._studio()
    if profile.status == "Deleting":
        raise ResourceInUseException(f"UserProfile [{profile.arn}] is being deleted.")
    if any(
        a.domain_id == domain_id and a.owner_key == "UserProfileName" and a.owner == name
        and a.status != "Deleted"
        for a in state.apps.values()
    ):
        raise ResourceInUseException(
            f"Unable to delete UserProfile [{profile.arn}] because App(s) are associated with it."
        )
    if any(s.domain_id == domain_id and s.owner == name for s in state.spaces.values()):
        raise ResourceInUseException(
            f"Unable to delete UserProfile [{profile.arn}] because Space(s) are associated with it."
        )
    profile.status = "Deleting"
    profile.reads_while_deleting = 0


def create_space(
    self: SageMakerModelBackend,
    domain_id: str,
    name: str,
    ownership_settings: dict[str, str] | None,
    sharing_settings: dict[str, str] | None,
) -> str:
    self._studio_existing_domain(domain_id)
    state = self._studio()
    if (domain_id, name) in state.spaces:
        raise ResourceInUseException(f"Space [{name}] already exists.")
    owner = (ownership_settings or {}).get("OwnerUserProfileName")
    if owner is not None:
        self._studio_profile(domain_id, owner)
    arn = arn_formatter("space", f"{domain_id}/{name}", self.account_id, self.region_name)
    sharing_type = (sharing_settings or {}).get("SharingType", "Private" if owner else "Shared")
    state.spaces[(domain_id, name)] = _Space(
        domain_id, name, arn, owner=owner, sharing_type=sharing_type
    )
    return arn


def _space(self: SageMakerModelBackend, domain_id: str, name: str) -> _Space:
    space = self._studio().spaces.get((domain_id, name))
    if space is None:
        raise ResourceNotFound(f"Space [{name}] in domain [{domain_id}] not found.")
    return space


def describe_space(self: SageMakerModelBackend, domain_id: str, name: str) -> _Space:
    space = self._studio_space(domain_id, name)
    if not _observe(self._studio(), space):
        raise ResourceNotFound(f"Space [{name}] in domain [{domain_id}] not found.")
    return space


def list_spaces(
    self: SageMakerModelBackend,
    domain_id: str | None,
    max_results: int | None,
    next_token: str | None,
) -> tuple[list[_Resource], str | None]:
    state = self._studio()
    spaces = [s for s in state.spaces.values() if domain_id in (None, s.domain_id)]
    return _page(state, spaces, max_results, next_token)


def delete_space(self: SageMakerModelBackend, domain_id: str, name: str) -> None:
    space = self._studio_space(domain_id, name)
    if space.status == "Deleting":
        raise ResourceInUseException(f"Space [{space.arn}] is being deleted.")
    if any(
        a.domain_id == domain_id and a.owner_key == "SpaceName" and a.owner == name
        and a.status != "Deleted"
        for a in self._studio().apps.values()
    ):
        raise ResourceInUseException(
            f"Unable to delete Space [{space.arn}] because App(s) are associated with it."
        )
    space.status = "Deleting"
    space.reads_while_deleting = 0


def _owner(user_profile_name: str | None, space_name: str | None) -> tuple[str, str]:
    if bool(user_profile_name) == bool(space_name):
        raise ValidationError("Exactly one of UserProfileName and SpaceName must be set.")
    if user_profile_name:
        return "UserProfileName", user_profile_name
    return "SpaceName", space_name


def create_app(
    self: SageMakerModelBackend,
    domain_id: str,
    user_profile_name: str | None,
    space_name: str | None,
    app_type: str,
    name: str,
) -> str:
    self._studio_existing_domain(domain_id)
    owner_key, owner = _owner(user_profile_name, space_name)
    owner_obj = (
        self._studio_profile(domain_id, owner)
        if owner_key == "UserProfileName"
        else self._studio_space(domain_id, owner)
    )
    if owner_obj.status == "Deleting":
        raise ResourceInUseException(f"[{owner_obj.arn}] is being deleted.")
    state = self._studio()
    key = (domain_id, owner_key, owner, app_type, name)
    if key in state.apps and state.apps[key].status != "Deleted":
        raise ResourceInUseException(f"App [{state.apps[key].arn}] already exists.")
    arn = arn_formatter(
        "app", f"{domain_id}/{owner}/{app_type.lower()}/{name}", self.account_id, self.region_name
    )
    # A Deleted app's name can be reused: the new app replaces it in listings.
    state.apps[key] = _App(
        domain_id, name, arn, app_type=app_type, owner_key=owner_key, owner=owner,
        status="Pending" if state.pending_reads else "InService",
    )
    return state.apps[key].arn


def _app(
    self: SageMakerModelBackend,
    domain_id: str,
    user_profile_name: str | None,
    space_name: str | None,
    app_type: str,
    name: str,
) -> _App:
    owner_key, owner = _owner(user_profile_name, space_name)
    app = self._studio().apps.get((domain_id, owner_key, owner, app_type, name))
    if app is None:
        raise ResourceNotFound(f"App [{app_type}/{name}] of [{owner}] not found.")
    return app


def describe_app(self: SageMakerModelBackend, *args: Any) -> _App:
    app = self._studio_app(*args)
    _observe(self._studio(), app)
    return app


def list_apps(
    self: SageMakerModelBackend,
    domain_id: str | None,
    user_profile_name: str | None,
    space_name: str | None,
    max_results: int | None,
    next_token: str | None,
) -> tuple[list[_Resource], str | None]:
    state = self._studio()
    apps = [
        a
        for a in state.apps.values()
        if domain_id in (None, a.domain_id)
        and user_profile_name in (None, a.owner if a.owner_key == "UserProfileName" else None)
        and space_name in (None, a.owner if a.owner_key == "SpaceName" else None)
    ]
    return _page(state, apps, max_results, next_token)


def delete_app(self: SageMakerModelBackend, *args: Any) -> None:
    app = self._studio_app(*args)
    if app.status == "Deleted":
        raise ResourceNotFound(f"App [{app.arn}] has already been deleted.")
    if app.status == "Deleting":
        raise ResourceInUseException(f"App [{app.arn}] is already being deleted.")
    if app.status == "Pending":
        raise ResourceInUseException(f"App [{app.arn}] is still starting.")
    app.status = "Deleting"
    app.reads_while_deleting = 0


# ---------------------------------------------------------------------------------------------
# Responses: request parsing and output shapes, patched onto SageMakerResponse.
# ---------------------------------------------------------------------------------------------


def _r_create_user_profile(self: SageMakerResponse) -> ActionResult:
    arn = self.sagemaker_backend.create_user_profile(
        self._get_param("DomainId"), self._get_param("UserProfileName")
    )
    return ActionResult({"UserProfileArn": arn})


def _r_describe_user_profile(self: SageMakerResponse) -> ActionResult:
    p = self.sagemaker_backend.describe_user_profile(
        self._get_param("DomainId"), self._get_param("UserProfileName")
    )
    return ActionResult(
        {
            "DomainId": p.domain_id,
            "UserProfileArn": p.arn,
            "UserProfileName": p.name,
            "Status": p.status,
            "CreationTime": p.created,
            "LastModifiedTime": p.created,
            **({"FailureReason": p.failure_reason} if p.failure_reason else {}),
        }
    )


def _r_list_user_profiles(self: SageMakerResponse) -> ActionResult:
    profiles, token = self.sagemaker_backend.list_user_profiles(
        self._get_param("DomainIdEquals"),
        self._get_param("MaxResults"),
        self._get_param("NextToken"),
    )
    summaries = [
        {
            "DomainId": p.domain_id,
            "UserProfileName": p.name,
            "Status": p.status,
            "CreationTime": p.created,
            "LastModifiedTime": p.created,
        }
        for p in profiles
    ]
    return ActionResult({"UserProfiles": summaries, "NextToken": token})


def _r_delete_user_profile(self: SageMakerResponse) -> EmptyResult:
    self.sagemaker_backend.delete_user_profile(
        self._get_param("DomainId"), self._get_param("UserProfileName")
    )
    return EmptyResult()


def _space_details(s: _Space) -> dict[str, Any]:
    details = {
        "DomainId": s.domain_id,
        "SpaceName": s.name,
        "Status": s.status,
        "CreationTime": s.created,
        "LastModifiedTime": s.created,
        "SpaceSharingSettingsSummary": {"SharingType": s.sharing_type},
    }
    if s.owner:
        details["OwnershipSettingsSummary"] = {"OwnerUserProfileName": s.owner}
    return details


def _r_create_space(self: SageMakerResponse) -> ActionResult:
    arn = self.sagemaker_backend.create_space(
        self._get_param("DomainId"),
        self._get_param("SpaceName"),
        self._get_param("OwnershipSettings"),
        self._get_param("SpaceSharingSettings"),
    )
    return ActionResult({"SpaceArn": arn})


def _r_describe_space(self: SageMakerResponse) -> ActionResult:
    s = self.sagemaker_backend.describe_space(
        self._get_param("DomainId"), self._get_param("SpaceName")
    )
    details = _space_details(s)
    details["SpaceArn"] = s.arn
    if s.owner:
        details["OwnershipSettings"] = details.pop("OwnershipSettingsSummary")
    details["SpaceSharingSettings"] = details.pop("SpaceSharingSettingsSummary")
    if s.failure_reason:
        details["FailureReason"] = s.failure_reason
    return ActionResult(details)


def _r_list_spaces(self: SageMakerResponse) -> ActionResult:
    spaces, token = self.sagemaker_backend.list_spaces(
        self._get_param("DomainIdEquals"),
        self._get_param("MaxResults"),
        self._get_param("NextToken"),
    )
    return ActionResult({"Spaces": [_space_details(s) for s in spaces], "NextToken": token})


def _r_delete_space(self: SageMakerResponse) -> EmptyResult:
    self.sagemaker_backend.delete_space(self._get_param("DomainId"), self._get_param("SpaceName"))
    return EmptyResult()


def _app_params(self: SageMakerResponse) -> list[Any]:
    return [
        self._get_param(p)
        for p in ("DomainId", "UserProfileName", "SpaceName", "AppType", "AppName")
    ]


def _r_create_app(self: SageMakerResponse) -> ActionResult:
    return ActionResult({"AppArn": self.sagemaker_backend.create_app(*_app_params(self))})


def _r_describe_app(self: SageMakerResponse) -> ActionResult:
    app = self.sagemaker_backend.describe_app(*_app_params(self))
    details = app.details()
    details["AppArn"] = app.arn
    if app.failure_reason:
        details["FailureReason"] = app.failure_reason
    return ActionResult(details)


def _r_list_apps(self: SageMakerResponse) -> ActionResult:
    apps, token = self.sagemaker_backend.list_apps(
        self._get_param("DomainIdEquals"),
        self._get_param("UserProfileNameEquals"),
        self._get_param("SpaceNameEquals"),
        self._get_param("MaxResults"),
        self._get_param("NextToken"),
    )
    return ActionResult({"Apps": [a.details() for a in apps], "NextToken": token})


def _r_delete_app(self: SageMakerResponse) -> EmptyResult:
    self.sagemaker_backend.delete_app(*_app_params(self))
    return EmptyResult()


# ---------------------------------------------------------------------------------------------
# Patching, and hooks for tests.
# ---------------------------------------------------------------------------------------------

_original_list_domains = SageMakerModelBackend.list_domains
_reads_until_done = 2

_BACKEND_PATCHES = {
    "_studio": _studio,
    "_studio_existing_domain": _existing_domain,
    "_studio_tick_domains": _tick_domains,
    "_studio_profile": _profile,
    "_studio_space": _space,
    "_studio_app": _app,
    "describe_domain": describe_domain,
    "list_domains": list_domains,
    "delete_domain": delete_domain,
    "create_user_profile": create_user_profile,
    "describe_user_profile": describe_user_profile,
    "list_user_profiles": list_user_profiles,
    "delete_user_profile": delete_user_profile,
    "create_space": create_space,
    "describe_space": describe_space,
    "list_spaces": list_spaces,
    "delete_space": delete_space,
    "create_app": create_app,
    "describe_app": describe_app,
    "list_apps": list_apps,
    "delete_app": delete_app,
}
# moto already answers DescribeDomain, ListDomains and DeleteDomain from the backend methods.
_RESPONSE_PATCHES = {
    "create_user_profile": _r_create_user_profile,
    "describe_user_profile": _r_describe_user_profile,
    "list_user_profiles": _r_list_user_profiles,
    "delete_user_profile": _r_delete_user_profile,
    "create_space": _r_create_space,
    "describe_space": _r_describe_space,
    "list_spaces": _r_list_spaces,
    "delete_space": _r_delete_space,
    "create_app": _r_create_app,
    "describe_app": _r_describe_app,
    "list_apps": _r_list_apps,
    "delete_app": _r_delete_app,
}


class StudioShim:
    """Test-side view of the shim's state. Reading it does not count as an API read."""

    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id

    @property
    def _state(self) -> _StudioState:
        return sagemaker_backends[self.account_id][self.region]._studio()

    def app_statuses(self, domain_id: str) -> dict[str, str]:
        """{"<owner>/<AppType>/<AppName>": status} for every app still listed."""
        return {
            f"{a.owner}/{a.app_type}/{a.name}": a.status
            for a in self._state.apps.values()
            if a.domain_id == domain_id
        }

    def profile_statuses(self, domain_id: str) -> dict[str, str]:
        return {p.name: p.status for p in self._state.profiles.values() if p.domain_id == domain_id}

    def apps_start_pending(self, reads: int) -> None:
        """Apps created from now on are Pending for `reads` ListApps/DescribeApp reads, then InService."""
        self._state.pending_reads = reads

    def fail_next_deletion(self, domain_id: str, kind: str, name: str, reason: str) -> None:
        """Make the next deletion of the space or user profile (`kind` "space" or "profile") end in
        Delete_Failed with `reason`."""
        table = self._state.spaces if kind == "space" else self._state.profiles
        table[(domain_id, name)].fail_deletion_with = reason

    def fail_next_domain_deletion(self, domain_id: str, reason: str) -> None:
        """Make the domain's next deletion end in Delete_Failed with `reason`."""
        self._state.domain_delete_failures[domain_id] = reason

    def space_statuses(self, domain_id: str) -> dict[str, str]:
        return {s.name: s.status for s in self._state.spaces.values() if s.domain_id == domain_id}

    def retention_policy(self, domain_id: str) -> dict[str, str] | None:
        """RetentionPolicy given to DeleteDomain; KeyError if DeleteDomain was never accepted."""
        return self._state.retention_policies[domain_id]

    def fail_app(self, domain_id: str, app_key: str, reason: str, *, on_delete: bool) -> None:
        """Make the app ("<owner>/<AppType>/<AppName>", as in `app_statuses`) Failed now, or,
        with on_delete=True, when its next deletion completes instead of Deleted."""
        (app,) = [
            a
            for a in self._state.apps.values()
            if a.domain_id == domain_id and f"{a.owner}/{a.app_type}/{a.name}" == app_key
        ]
        if on_delete:
            app.fail_deletion_with = reason
        else:
            app.status, app.failure_reason = "Failed", reason


@contextlib.contextmanager
def studio_shim(
    region: str = "eu-west-1", account_id: str = DEFAULT_ACCOUNT_ID, reads_until_done: int = 2
) -> Iterator[StudioShim]:
    """Patch moto for the duration of the block. Use inside (or around) `mock_aws()`."""
    global _reads_until_done
    previous, _reads_until_done = _reads_until_done, reads_until_done
    try:
        with mock.patch.multiple(SageMakerModelBackend, create=True, **_BACKEND_PATCHES):
            with mock.patch.multiple(SageMakerResponse, create=True, **_RESPONSE_PATCHES):
                yield StudioShim(region, account_id)
    finally:
        _reads_until_done = previous
