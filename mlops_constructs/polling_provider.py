"""The CDK Provider framework with an on_event and an is_complete Lambda from one handler folder: the shape
of every custom resource here that waits for SageMaker to finish deleting something."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from mlops_constructs.function_code import platform_function


def polling_provider(
    scope: Construct, *, handler_folder: str, role: iam.IRole, poll_interval: cdk.Duration, total_timeout: cdk.Duration
) -> cr.Provider:
    """`handler.on_event` and `handler.is_complete` of functions/`handler_folder`/, run as `role`, polled every
    `poll_interval` until `total_timeout`; the waiter logs everything, so a stuck delete can be read."""
    handlers = {
        name: platform_function(
            scope,
            name,
            folder=handler_folder,
            entry=entry,
            role=role,
            timeout=cdk.Duration.minutes(5),
            log_group=logs.LogGroup(scope, f"{name}Logs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY),
        )
        for name, entry in (("OnEvent", "on_event"), ("IsComplete", "is_complete"))
    }
    for function in handlers.values():
        function.log_group.grant_write(role)
    return cr.Provider(
        scope,
        "Provider",
        on_event_handler=handlers["OnEvent"],
        is_complete_handler=handlers["IsComplete"],
        query_interval=poll_interval,
        total_timeout=total_timeout,
        disable_waiter_state_machine_logging=False,
        waiter_state_machine_log_options=cr.LogOptions(
            destination=logs.LogGroup(scope, "WaiterLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY),
            level=sfn.LogLevel.ALL,
        ),
    )
