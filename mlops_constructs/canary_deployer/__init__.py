"""A Step Functions state machine that deploys approved model packages to a SageMaker endpoint safely.

The phases live in their own modules, in the order an execution meets them: `release` (check the
package, take the endpoint's lock, name the release, create its model, find the endpoint),
`first_release`, `canary` (canary, bake, traffic and approval guards) or `guardrails` or `serverless` (one
variant replaced whole, baked with the same guards), `promote`, `rollback`, and `permissions`; `states`
holds the building blocks they share.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_events as events
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from config.deployer_timings import MAX_EXECUTION_SECONDS, CanaryTimings
from mlops_constructs.canary_deployer import canary, first_release, guardrails, permissions, promote, release, rollback, serverless as serverless_release
from mlops_constructs.sdk_errors import end_uncaught_sdk_errors
from mlops_constructs.canary_deployer.states import DEPLOYMENT_EVENT, IN_SERVICE, SCALING_POLICY, DataCapture, DeployerStates, ReleaseRecords, ServerlessCapacity, VariantScaling
from mlops_constructs.json_paths import list_at, string_at
from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources

__all__ = ["DEPLOYMENT_EVENT", "SCALING_POLICY", "CanaryDeployer", "CanaryTimings", "DataCapture", "ServerlessCapacity", "VariantScaling"]


class CanaryDeployer(Construct):
    """Deploys an approved model package to `endpoint_name`, shifting `canary_weight` of the traffic first.

    Input: ``{"ModelPackageArn": "..."}`` from an approval event, which deploys only a version newer than
    the one serving; ``{"ModelPackageArn": "...", "Release": "rollback"}`` deploys an older one. The endpoint's two production variants are always ``blue`` and
    ``green``: a release goes to the colour not in use, so the per-variant alarms in `alarm_names` stay
    valid across releases. The first release creates the endpoint on ``blue``. Later ones bake a canary
    while checking the new colour's alarms, then promote (the new colour takes the live capacity) or roll
    back to the live model at its live capacity and end FAILED with the reason. Every AWS call retries
    throttling; any other failure after autoscaling came off the live variant rolls back. Outcomes and
    approval requests are announced as EventBridge events matching `event_pattern` on `event_bus`, which
    nobody but the deployer may put events on, for whoever tells people. Approval requests carry no task
    token: `approver_policy` is the permission to read it from the execution and answer.
    With `data_capture`, every endpoint config it creates captures traffic, encrypted with `key`.
    One deployment at a time per endpoint rests on a conditional write to `lock_table` (ListExecutions is
    eventually consistent); an endpoint left Failed by a first release is deleted by the next release,
    which then releases afresh.
    With `serverless`, the endpoint serves one serverless variant: a release replaces it with the new model
    on the other colour (no canary share, no autoscaling), bakes it with the same alarms and guards, and an
    alarm puts the live model back. It takes no `subnet_ids`: serverless endpoints refuse models with a VPC
    configuration. Every release that serves deletes `retired_endpoint_name`, the other serving mode's endpoint, if
    it exists: SageMaker cannot convert an endpoint between modes, so switching modes moves to a new endpoint.
    Every release that goes live (a first release, or a canary that passed) is written down in
    the bucket named `release_records_bucket_name` under ``releases/<group>/v<version>.json``, which is what a
    promotion of that version to another environment requires; `release_records_policy` (the bucket owner's)
    is the deployer's permission to write there.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine_name: str,
        endpoint_name: str,
        model_name_prefix: str,
        model_package_group_name: str,
        model_role: iam.IRole,
        instance_type: str,
        initial_instance_count: int,
        canary_weight: float,
        timings: CanaryTimings,
        strategy: str = "variants",
        min_canary_invocations: int = 0,
        manual_approval: cdk.Duration | None = None,
        guardrails_traffic_routing: str = "CANARY",
        scaling: VariantScaling,
        alarm_names: dict[str, list[str]],
        key: kms.IKey,
        release_records_bucket_name: str,
        release_records_policy: iam.IManagedPolicy,
        subnet_ids: list[str] | None = None,
        security_group_ids: list[str] | None = None,
        data_capture: DataCapture | None = None,
        serverless: ServerlessCapacity | None = None,
        retired_endpoint_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if serverless and (strategy != "variants" or data_capture or subnet_ids):
            raise ValueError("a serverless endpoint takes no 'guardrails' strategy, no data capture and no VPC configuration")
        self.state_machine_name = state_machine_name
        approval_seconds = int(manual_approval.to_seconds()) if manual_approval else 0
        timeout = timings.execution_timeout_seconds(approval_seconds)
        if timeout > MAX_EXECUTION_SECONDS:
            raise ValueError(f"the deployer's longest path needs {timeout} s, more than a Standard workflow's {MAX_EXECUTION_SECONDS} s")
        # Announcements ("rolled back", "awaits approval") go on a bus of their own, which only the deployer may put events on.
        announcements = f"{state_machine_name}-announcements"
        self.event_bus = events.EventBus(self, "Announcements", event_bus_name=announcements)
        states = DeployerStates(
            self,
            endpoint_name=endpoint_name,
            model_name_prefix=model_name_prefix,
            timings=timings,
            scaling=scaling,
            event_source=state_machine_name,
            event_bus=self.event_bus,
            key_arn=key.key_arn,
            release_records=ReleaseRecords(release_records_bucket_name, model_package_group_name),
            data_capture=data_capture,
            serverless=serverless,
            retired_endpoint_name=retired_endpoint_name,
        )
        package_arns = [states.sagemaker_arn("model-package", f"{model_package_group_name.lower()}/*")]
        # One item per endpoint: the execution deploying to it. A lock, so nothing worth keeping or restoring.
        self.lock_table = dynamodb.Table(
            self,
            "EndpointLock",
            partition_key=dynamodb.Attribute(name="Endpoint", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        execution_arns = states.stack.format_arn(
            service="states", resource="execution", resource_name=f"{state_machine_name}:*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )
        vpc_config = {"VpcConfig": {"Subnets": subnet_ids, "SecurityGroupIds": security_group_ids}} if subnet_ids and security_group_ids else {}
        alarm_arns = [
            states.stack.format_arn(service="cloudwatch", resource="alarm", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
            for names in alarm_names.values()
            for name in names
        ]

        nothing_changed = rollback.nothing_changed(states)
        roll_back = rollback.roll_back(states)

        if serverless:
            after_bake = serverless_release.complete(states)
            if manual_approval:
                after_bake = canary.approval(states, manual_approval, after_bake, roll_back)
            if min_canary_invocations:
                after_bake = canary.enough_traffic(states, min_canary_invocations, after_bake, roll_back)
            baked = canary.bake(states, alarm_arns, after_bake, roll_back)
            change = canary.pick_colour(states, alarm_names, serverless_release.replace_variant(states, bake=baked, nothing_changed=nothing_changed, rollback=roll_back))
        elif strategy == "guardrails":
            change = guardrails.guardrails(
                states, weight=canary_weight, traffic_routing=guardrails_traffic_routing, alarm_names=alarm_names, nothing_changed=nothing_changed, rollback=roll_back
            )
        else:
            after_bake = promote.promote(states, roll_back)
            if manual_approval:
                after_bake = canary.approval(states, manual_approval, after_bake, roll_back)
            if min_canary_invocations:
                after_bake = canary.enough_traffic(states, min_canary_invocations, after_bake, roll_back)
            baked = canary.bake(states, alarm_arns, after_bake, roll_back)
            shift = canary.canary(states, weight=canary_weight, instance_type=instance_type, bake=baked, nothing_changed=nothing_changed, rollback=roll_back)
            change = canary.pick_colour(states, alarm_names, shift)

        check_package, approved = release.check_package(states, model_package_group_name, package_arns, nothing_changed)
        approved.when(
            sfn.Condition.and_(
                sfn.Condition.string_equals("$.package.Status", "Approved"),
                sfn.Condition.string_equals("$.package.Group", model_package_group_name),
            ),
            release.one_deployment_at_a_time(states, self.lock_table, execution_arns, nothing_changed)
            .next(release.name_the_release(states))
            .next(
                release.find_endpoint(
                    states,
                    release.create_model(states, model_role.role_arn, vpc_config, nothing_changed, label="first release").next(
                        first_release.first_release(states, instance_type, initial_instance_count)
                    ),
                    self._later_release(
                        states,
                        release.create_model(states, model_role.role_arn, vpc_config, nothing_changed, label="later release").next(change),
                        nothing_changed,
                    ),
                    nothing_changed,
                )
            ),
        )

        states.release_lock_at_every_end(self.lock_table)
        end_uncaught_sdk_errors(self)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            definition_body=sfn.DefinitionBody.from_chainable(release.read_request(states, check_package)),
            timeout=cdk.Duration.seconds(timeout),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "Logs", retention=logs.RetentionDays.SIX_MONTHS, removal_policy=cdk.RemovalPolicy.DESTROY),
                level=sfn.LogLevel.ALL,
                # Every state's transitions, without inputs, outputs and parameters: the approval's task token is a parameter.
                include_execution_data=False,
            ),
        )
        self.state_machine.role.add_managed_policy(release_records_policy)
        permissions.grant(states, self.state_machine.role, model_role=model_role, key=key, package_arns=package_arns, execution_arns=execution_arns)
        # The bus's own policy, not an AWS::Events::EventBusPolicy: CDK sets that resource's deprecated principal,
        # and every synth would warn about it.
        bus = self.event_bus.node.default_child
        bus.policy = {
            "Version": "2012-10-17",
            "Statement": [
                iam.PolicyStatement(
                    sid="OnlyTheDeployerAnnounces",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["events:PutEvents"],
                    # Built from the name: the bus's own Arn attribute would make it depend on itself.
                    resources=[states.stack.format_arn(service="events", resource="event-bus", resource_name=announcements)],
                    conditions={"ArnNotEquals": {"aws:PrincipalArn": self.state_machine.role.role_arn}},
                ).to_statement_json()
            ],
        }
        # What the deployer announces, on its bus (Step Functions adds the state machine's ARN to each event).
        self.event_pattern = events.EventPattern(
            source=[state_machine_name], detail_type=[DEPLOYMENT_EVENT], resources=[self.state_machine.state_machine_arn]
        )
        self.execution_arns = execution_arns

    def approver_policy(self, scope: Construct, managed_policy_name: str, role_names: list[str]) -> iam.ManagedPolicy:
        """Answering the deployer's approval requests: reading its executions' history, where the waiting
        state's task token is, and SendTaskSuccess or SendTaskFailure with it. Attached to the existing roles
        named in `role_names`; builders and jobs never hold it."""
        policy = iam.ManagedPolicy(
            scope,
            "DeploymentApprover",
            managed_policy_name=managed_policy_name,
            description=f"Approve or reject the promotions {self.state_machine_name} waits for",
            statements=[
                iam.PolicyStatement(sid="FindTheWaitingDeployment", actions=["states:ListExecutions"], resources=[self.state_machine.state_machine_arn]),
                iam.PolicyStatement(
                    sid="ReadTheApprovalRequest", actions=["states:DescribeExecution", "states:GetExecutionHistory"], resources=[self.execution_arns]
                ),
                # SendTaskSuccess and SendTaskFailure have no resource-level permissions (AWS's service authorization
                # reference lists no resource type or condition key for them): the token itself is the secret, and
                # only this deployer's execution history holds it.
                iam.PolicyStatement(sid="AnswerTheApprovalRequest", actions=["states:SendTaskSuccess", "states:SendTaskFailure"], resources=["*"]),
            ],
            roles=[iam.Role.from_role_name(scope, f"Approver-{name}", name) for name in role_names],
        )
        acknowledge_wildcard_resources(policy, [self.execution_arns], "Every execution of this deployer, and no other state machine's.")
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", "states:SendTaskSuccess and SendTaskFailure have no resource-level permissions; the token is only in this deployer's history.")
        return policy

    def _later_release(self, states: DeployerStates, change: sfn.IChainable, nothing_changed: sfn.IChainable) -> sfn.IChainable:
        """The endpoint exists: go ahead only if it serves one variant, InService, not this release, and
        either an older version than this one or a deliberate rollback."""
        busy = states.ending(
            sfn.Fail(
                self,
                "Endpoint is busy with another deployment",
                error="EndpointBusy",
                cause="The endpoint is not InService on a single variant; another deployment is running or failed",
            )
        )
        remember = states.sagemaker(
            "Remember the live config",
            "describeEndpointConfig",
            {"EndpointConfigName": string_at("$.live.ConfigName")},
            states.config_arns,
            result_selector={
                "Model": sfn.JsonPath.array_get_item(list_at("$.ProductionVariants[*].ModelName"), 0),
                # What the rollback config puts back: the live variant's capacity.
                **(
                    {"ServerlessConfig": sfn.JsonPath.array_get_item(list_at("$.ProductionVariants[*].ServerlessConfig"), 0)}
                    if states.serverless
                    else {"InstanceType": sfn.JsonPath.array_get_item(list_at("$.ProductionVariants[*].InstanceType"), 0)}
                ),
            },
            result_path="$.liveConfig",
        )
        states.on_failure(remember, nothing_changed, label="remembering the live config")
        return (
            sfn.Choice(self, "Is the endpoint free?")
            .when(
                sfn.Condition.and_(sfn.Condition.string_equals("$.live.Status", IN_SERVICE), sfn.Condition.number_equals("$.live.Variants", 1)),
                remember.next(
                    sfn.Choice(self, "Is this release already live?")
                    .when(sfn.Condition.string_equals_json_path("$.liveConfig.Model", "$.release.ModelName"), states.ending(sfn.Succeed(self, "Already serving this release")))
                    .otherwise(release.only_newer_versions(states, change, nothing_changed))
                ),
            )
            .otherwise(busy)
        )
