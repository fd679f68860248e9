"""The notify function (functions/notify/handler.py) run in-process as Lambda would run it, and what it published.

`NotifyFunction` calls the handler with the environment the operations stack gives it; `received()` reads the
messages on the topic back as subscribers see them: the subject, the text e-mail gets, and the AWS Chatbot
custom notification chat channels get.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from botocore import xform_name
from botocore.client import BaseClient
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from tests.behaviour.sfn_harness import Call

_HANDLER_PATH = Path(__file__).parents[2] / "functions" / "notify" / "handler.py"
_spec = importlib.util.spec_from_file_location("notify_handler", _HANDLER_PATH)
handler = importlib.util.module_from_spec(_spec)
# Registered before it runs: its dataclasses look their module up.
sys.modules[_spec.name] = handler
_spec.loader.exec_module(handler)


@dataclass(frozen=True)
class Received:
    subject: str
    text: str
    chat: dict


class NotifyFunction:
    def __init__(self, region: str, topic_arn: str, **environment: str) -> None:
        self.region, self.topic_arn = region, topic_arn
        self.environment = {"TOPIC_ARN": topic_arn, "AWS_REGION": region, **environment}
        self.calls: list[Call] = []

    @classmethod
    def from_template(cls, operations: dict, region: str, topic_arn: str, **world: str) -> NotifyFunction:
        """The notify function with the environment the operations stack's template gives it. `world` names
        the values that stand for other resources in the test's world (its topic, its deployer); each must be a
        variable the template sets, and every other variable the template sets must be plain text."""
        ((properties,),) = [[r["Properties"] for r in operations["Resources"].values() if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == "handler.handler"]]
        variables = properties["Environment"]["Variables"]
        unknown = set(world) - set(variables)
        if unknown:
            raise KeyError(f"the template sets no {sorted(unknown)} on the notify function")
        world = {"TOPIC_ARN": topic_arn, **world}
        unresolved = sorted(name for name, value in variables.items() if name not in world and not isinstance(value, str))
        if unresolved:
            raise ValueError(f"the world gives no value for {unresolved}, which the template sets from other resources")
        environment = {name: world.get(name, value) for name, value in variables.items()}
        return cls(region, topic_arn, **{name: value for name, value in environment.items() if name != "TOPIC_ARN"})

    def __call__(self, event: dict) -> dict:
        """Run the handler on `event`; every AWS call it makes is appended to `calls` (for the permission checks)."""
        make_api_call = BaseClient._make_api_call
        calls = self.calls

        def recorded(client: BaseClient, operation_name: str, api_params: dict) -> Any:
            calls.append(Call("notify", client.meta.service_model.service_name, xform_name(operation_name), dict(api_params)))
            return make_api_call(client, operation_name, api_params)

        with mock.patch.dict(os.environ, self.environment), mock.patch.object(BaseClient, "_make_api_call", recorded):
            return handler.handler(event, None)

    def received(self) -> list[Received]:
        """Every message on the topic, oldest first."""
        topic = sns_backends[DEFAULT_ACCOUNT_ID][self.region].topics[self.topic_arn]
        messages = []
        for _, message, subject, *_ in topic.sent_notifications:
            structured = json.loads(message)
            messages.append(Received(subject, structured["email"], json.loads(structured["https"])))
        return messages
