"""CloudFormation's documented event sequences for a custom resource, replayed against its handler in moto.

CloudFormation does not send a custom resource single events but sequences of them, and a handler must be
right for each sequence:
- create: Create;
- update: Update with OldResourceProperties; if the answer changes the physical id, the old one gets a
  Delete (with the old properties) in UPDATE_COMPLETE_CLEANUP_IN_PROGRESS;
- replacement through a new logical id: Create of the new resource, then Delete of the old one in
  UPDATE_COMPLETE_CLEANUP_IN_PROGRESS;
- update rollback: after a later failure (or this resource's own), an Update back to the old properties in
  UPDATE_ROLLBACK_IN_PROGRESS, and, if the failed update changed the physical id, a Delete of the new one
  in UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS;
- rollback of a create: a Delete of the just-created resource (UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS
  when a stack update added it, ROLLBACK_IN_PROGRESS when the stack's own create failed);
- stack delete: Delete in DELETE_IN_PROGRESS;
- any event may be sent again (`repeat_each_event`).

`StackReplay` sends them as the CDK Provider framework passes them on (on_event, then is_complete until it
reports completion), and keeps moto's stack as CloudFormation would report it while it sends each event:
its status, and its resources (this one, and others set with `set_resource`) with their physical ids.
moto cannot hold a stack in an in-progress status or list custom resources, so both are set on moto's stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import boto3
import pytest
from moto.cloudformation.models import cloudformation_backends


@dataclass
class _Resource:
    physical_id: str
    props: dict
    resource_type: str


class StackReplay:
    def __init__(
        self,
        handler: Any,
        *,
        resource_type: str,
        logical_id: str,
        stack_name: str,
        region: str,
        account: str,
        repeat_each_event: int = 1,
        max_polls: int = 50,
    ) -> None:
        self.handler = handler
        self.resource_type = resource_type
        self.logical_id = logical_id
        self.region = region
        self.repeat_each_event = repeat_each_event
        self.max_polls = max_polls
        cloudformation = boto3.client("cloudformation", region_name=region)
        # moto needs one resource it supports to create a stack; the replay then owns the resource list.
        template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}}}
        self.stack_id = cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(template))["StackId"]
        self._stack = cloudformation_backends[account][region].stacks[self.stack_id]
        self._stack.resource_map = {}
        self.resources: dict[str, _Resource] = {}
        # The Data of the handler's last answer for each logical id: what Fn::GetAtt reads after the sequence.
        self.reported: dict[str, dict] = {}

    # --- what CloudFormation reports ----------------------------------------------------------

    def status(self, status: str) -> None:
        self._stack.status = status

    def set_resource(self, logical_id: str, physical_id: str | None, resource_type: str) -> None:
        """Another resource of the stack as CloudFormation lists it; None removes it."""
        if physical_id is None:
            self._stack.resource_map.pop(logical_id, None)
            return
        self._stack.resource_map[logical_id] = SimpleNamespace(
            logical_resource_id=logical_id, physical_resource_id=physical_id, cf_resource_type=resource_type
        )

    def _record(self, logical_id: str, resource: _Resource | None) -> None:
        if resource is None:
            self.resources.pop(logical_id, None)
        else:
            self.resources[logical_id] = resource
        self.set_resource(logical_id, resource and resource.physical_id, self.resource_type)

    # --- the sequences ------------------------------------------------------------------------

    def create(self, props: dict, logical_id: str | None = None, *, stack_create: bool = False) -> str:
        logical_id = logical_id or self.logical_id
        self.status("CREATE_IN_PROGRESS" if stack_create else "UPDATE_IN_PROGRESS")
        physical_id = self._send("Create", logical_id, props)
        self._record(logical_id, _Resource(physical_id, props, self.resource_type))
        self.status("CREATE_COMPLETE" if stack_create else "UPDATE_COMPLETE")
        return physical_id

    def update(self, props: dict, logical_id: str | None = None, *, others: dict | None = None) -> str:
        """Update to `props`; `others` ({logical id: (physical id, type)}) change in the same stack update."""
        logical_id = logical_id or self.logical_id
        old = self.resources[logical_id]
        self.status("UPDATE_IN_PROGRESS")
        self._set_others(others)
        physical_id = self._send("Update", logical_id, props, old.physical_id, old.props)
        self._record(logical_id, _Resource(physical_id, props, self.resource_type))
        if physical_id != old.physical_id:
            self.status("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
            self._send("Delete", logical_id, old.props, old.physical_id)
        self.status("UPDATE_COMPLETE")
        return physical_id

    def replace_logical_id(self, new_logical_id: str, props: dict | None = None) -> str:
        """The construct moved: Create under `new_logical_id`, then Delete of the old logical id."""
        old = self.resources[self.logical_id]
        props = props or old.props
        self.status("UPDATE_IN_PROGRESS")
        physical_id = self._send("Create", new_logical_id, props)
        self._record(new_logical_id, _Resource(physical_id, props, self.resource_type))
        self.status("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        self._record(self.logical_id, None)
        self._send("Delete", self.logical_id, old.props, old.physical_id)
        self.status("UPDATE_COMPLETE")
        self.logical_id = new_logical_id
        return physical_id

    def update_rolled_back(
        self,
        props: dict,
        logical_id: str | None = None,
        *,
        others: dict | None = None,
        update_fails: Callable[[], Any] | None = None,
    ) -> None:
        """Update to `props`, then a later resource fails (or, with `update_fails`, this update does, with
        the given failure injected while it runs), and CloudFormation rolls everything back."""
        logical_id = logical_id or self.logical_id
        old = self.resources[logical_id]
        others_before = {name: self._other(name) for name in (others or {})}
        self.status("UPDATE_IN_PROGRESS")
        self._set_others(others)
        if update_fails is None:
            physical_id = self._send("Update", logical_id, props, old.physical_id, old.props)
        else:
            with update_fails() as injected, pytest.raises(Exception) as raised:
                self._send("Update", logical_id, props, old.physical_id, old.props)
            # The update must fail because of the injected failure, not for any reason (a KeyError would do).
            assert injected, f"the update failed before it met its injected failure: {raised.value!r}"
            assert _caused_by(raised.value, injected[-1]), f"the update failed with {raised.value!r}, not with the injected {injected[-1]!r}"
            physical_id = old.physical_id
        self._record(logical_id, _Resource(physical_id, props, self.resource_type))

        self.status("UPDATE_ROLLBACK_IN_PROGRESS")
        self._set_others(others_before)
        rolled_back = self._send("Update", logical_id, old.props, physical_id, props)
        self._record(logical_id, _Resource(rolled_back, old.props, self.resource_type))
        if physical_id != rolled_back:
            self.status("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
            self._send("Delete", logical_id, props, physical_id)
        self.status("UPDATE_ROLLBACK_COMPLETE")

    def create_rolled_back(self, props: dict, logical_id: str, *, stack_create: bool = False) -> None:
        """A stack update (or the stack's first create) adds this resource, then a later resource fails."""
        self.status("CREATE_IN_PROGRESS" if stack_create else "UPDATE_IN_PROGRESS")
        physical_id = self._send("Create", logical_id, props)
        self._record(logical_id, _Resource(physical_id, props, self.resource_type))
        self.status("ROLLBACK_IN_PROGRESS" if stack_create else "UPDATE_ROLLBACK_IN_PROGRESS")
        if not stack_create:
            self.status("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        self._send("Delete", logical_id, props, physical_id)
        self._record(logical_id, None)
        self.status("ROLLBACK_COMPLETE" if stack_create else "UPDATE_ROLLBACK_COMPLETE")

    def remove(self, logical_id: str | None = None) -> None:
        """The resource leaves the template: Delete in UPDATE_COMPLETE_CLEANUP_IN_PROGRESS."""
        logical_id = logical_id or self.logical_id
        old = self.resources[logical_id]
        self.status("UPDATE_IN_PROGRESS")
        self._record(logical_id, None)
        self.status("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        self._send("Delete", logical_id, old.props, old.physical_id)
        self.status("UPDATE_COMPLETE")

    def delete_stack(self) -> None:
        self.status("DELETE_IN_PROGRESS")
        for logical_id, resource in reversed(list(self.resources.items())):
            self._send("Delete", logical_id, resource.props, resource.physical_id)
        self.status("DELETE_COMPLETE")

    # --- sending -------------------------------------------------------------------------------

    def _other(self, logical_id: str):
        resource = self._stack.resource_map.get(logical_id)
        return resource and (resource.physical_resource_id, resource.cf_resource_type)

    def _set_others(self, others: dict | None) -> None:
        for logical_id, value in (others or {}).items():
            physical_id, resource_type = value or (None, None)
            self.set_resource(logical_id, physical_id, resource_type)

    def _send(self, request_type, logical_id, props, physical_id=None, old_props=None) -> str:
        event = {
            "RequestType": request_type,
            "ServiceToken": f"arn:aws:lambda:{self.region}:123456789012:function:provider",
            "ResponseURL": "https://cloudformation-custom-resource-response.s3.amazonaws.com/response",
            "StackId": self.stack_id,
            "RequestId": f"{request_type}-{logical_id}",
            "LogicalResourceId": logical_id,
            "ResourceType": self.resource_type,
            "ResourceProperties": props,
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_props is not None:
            event["OldResourceProperties"] = old_props
        for _ in range(self.repeat_each_event):
            result = self._run(event)
        self.reported[logical_id] = result.get("Data", {})
        return result["PhysicalResourceId"]

    def _run(self, event: dict) -> dict:
        result = self.handler.on_event(event)
        is_complete = getattr(self.handler, "is_complete", None)
        if is_complete is None:
            return result
        polled = {**event, **result}
        for _ in range(self.max_polls):
            if is_complete(polled)["IsComplete"]:
                return result
        pytest.fail(f"{event['RequestType']} of {event['LogicalResourceId']} not complete after {self.max_polls} polls")


def _caused_by(error: BaseException, injected: BaseException) -> bool:
    """Whether `error` is `injected`, wraps it (raise ... from, or raised while handling it) or reports its text."""
    seen: BaseException | None = error
    while seen is not None:
        if seen is injected:
            return True
        seen = seen.__cause__ or seen.__context__
    return str(injected) in str(error)
