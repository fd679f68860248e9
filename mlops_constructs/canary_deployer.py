"""A Step Functions state machine that deploys approved model packages to a SageMaker endpoint safely."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources

COLOURS = ("blue", "green")
SCALING_POLICY = "SageMakerEndpointInvocationScalingPolicy"
_IN_SERVICE = "InService"


@dataclass(frozen=True)
class CanaryTimings:
    """Every wait of the deployer. Tests use ``poll_seconds=0``: the same definition, no sleeping."""

    poll_seconds: int
    bake_checks: int
    max_update_polls: int


@dataclass(frozen=True)
class VariantScaling:
    min_capacity: int
    max_capacity: int
    invocations_per_instance: float


class CanaryDeployer(Construct):
    """Deploys an approved model package to `endpoint_name`, shifting `canary_weight` of the traffic first.

    Input: ``{"ModelPackageArn": "..."}``. The endpoint's two production variants are always ``blue`` and
    ``green``: a release goes to the colour not in use, so the per-variant alarms in `alarm_names` stay
    valid across releases. The first release creates the endpoint on ``blue``. Later ones bake a canary
    while checking the new colour's alarms at every poll, then promote (the new colour takes the live
    capacity) or roll back to the remembered config and end FAILED with the reason. A failed, timed-out
    or silently rolled-back update counts as failed. Autoscaling is removed before a variant it targets
    is changed and registered again afterwards.
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
        topic: sns.ITopic,
        key: kms.IKey,
        subnet_ids: list[str] | None = None,
        security_group_ids: list[str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._stack = cdk.Stack.of(self)
        self._endpoint = endpoint_name
        self._timings = timings
        self._scaling = scaling
        self._topic = topic
        self._alarm_names = alarm_names
        self._instance_type = instance_type
        self._key = key
        self._manual_approval = manual_approval
        self._min_invocations = min_canary_invocations
        self._guardrails_routing = guardrails_traffic_routing
        self._weight = canary_weight

        endpoint_arn = self._arn("endpoint", endpoint_name.lower())
        self._endpoint_arns = [endpoint_arn]
        self._config_arns = [self._arn("endpoint-config", f"{endpoint_name.lower()}-*")]
        self._model_arns = [self._arn("model", f"{model_name_prefix.lower()}-*")]
        self._model_prefix = model_name_prefix
        self._package_arns = [self._arn("model-package", f"{model_package_group_name.lower()}/*")]
        self._scaling_alarms = self._stack.format_arn(
            service="cloudwatch", resource="alarm", resource_name="TargetTracking-endpoint/*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )

        describe_package = self._sagemaker(
            "Describe the model package",
            "describeModelPackage",
            {"ModelPackageName": sfn.JsonPath.string_at("$.ModelPackageArn")},
            self._package_arns,
            result_selector={
                "Status": sfn.JsonPath.string_at("$.ModelApprovalStatus"),
                "Group": sfn.JsonPath.string_at("$.ModelPackageGroupName"),
                "Version": sfn.JsonPath.number_at("$.ModelPackageVersion"),
            },
            result_path="$.package",
        )
        not_deployable = sfn.Fail(
            self,
            "Package is not an approved package of our group",
            error="PackageNotDeployable",
            cause=f"Only Approved packages of {model_package_group_name} are deployed",
        )
        describe_package.add_catch(not_deployable, errors=["States.ALL"], result_path="$.error")

        one_at_a_time = self._one_deployment_at_a_time(state_machine_name)
        name_release = sfn.Pass(
            self,
            "Name the release",
            parameters={
                "ModelName": sfn.JsonPath.format(f"{model_name_prefix}-v{{}}", sfn.JsonPath.string_at("$.package.Version")),
                "FirstConfig": sfn.JsonPath.format(f"{endpoint_name}-v{{}}-blue", sfn.JsonPath.string_at("$.package.Version")),
                "CanaryConfig": sfn.JsonPath.format(f"{endpoint_name}-v{{}}-canary", sfn.JsonPath.string_at("$.package.Version")),
                "PromotedConfig": sfn.JsonPath.format(f"{endpoint_name}-v{{}}", sfn.JsonPath.string_at("$.package.Version")),
            },
            result_path="$.release",
        )
        create_model = self._sagemaker(
            "Create the model",
            "createModel",
            {
                "ModelName": sfn.JsonPath.string_at("$.release.ModelName"),
                "ExecutionRoleArn": model_role.role_arn,
                "Containers": [{"ModelPackageName": sfn.JsonPath.string_at("$.ModelPackageArn")}],
                **(
                    {"VpcConfig": {"Subnets": subnet_ids, "SecurityGroupIds": security_group_ids}}
                    if subnet_ids and security_group_ids
                    else {}
                ),
            },
            self._model_arns,
            result_path=sfn.JsonPath.DISCARD,
        )
        # The same package twice gives the same model name: an existing model is this release's model.
        model_exists = self._sagemaker(
            "Use the existing model",
            "describeModel",
            {"ModelName": sfn.JsonPath.string_at("$.release.ModelName")},
            self._model_arns,
            result_path=sfn.JsonPath.DISCARD,
        )
        create_model.add_catch(model_exists, errors=["States.TaskFailed"], result_path="$.error")
        find_endpoint = self._sagemaker(
            "Find the endpoint",
            "describeEndpoint",
            {"EndpointName": endpoint_name},
            self._endpoint_arns,
            result_selector={
                "Status": sfn.JsonPath.string_at("$.EndpointStatus"),
                "ConfigName": sfn.JsonPath.string_at("$.EndpointConfigName"),
                "Variant": sfn.JsonPath.array_get_item(sfn.JsonPath.list_at("$.ProductionVariants[*].VariantName"), 0),
                "Count": sfn.JsonPath.array_get_item(sfn.JsonPath.list_at("$.ProductionVariants[*].CurrentInstanceCount"), 0),
                "Variants": sfn.JsonPath.array_length(sfn.JsonPath.list_at("$.ProductionVariants")),
            },
            result_path="$.live",
        )
        first_release = self._first_release(initial_instance_count)
        find_endpoint.add_catch(first_release, errors=["States.TaskFailed"], result_path="$.error")

        describe_package.next(
            sfn.Choice(self, "Is the package approved and ours?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals("$.package.Status", "Approved"),
                    sfn.Condition.string_equals("$.package.Group", model_package_group_name),
                ),
                one_at_a_time,
            )
            .otherwise(not_deployable)
        )
        one_at_a_time.next(name_release)
        name_release.next(create_model)
        create_model.next(find_endpoint)
        model_exists.next(find_endpoint)
        find_endpoint.next(self._later_release(strategy))

        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            definition_body=sfn.DefinitionBody.from_chainable(describe_package),
            timeout=cdk.Duration.seconds(max(3600, 4 * timings.poll_seconds * (timings.max_update_polls + timings.bake_checks))),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "Logs", retention=logs.RetentionDays.SIX_MONTHS, removal_policy=cdk.RemovalPolicy.DESTROY),
                level=sfn.LogLevel.ALL,
            ),
        )
        self._grant_rest(model_role)

    def _one_deployment_at_a_time(self, state_machine_name: str) -> sfn.Chain:
        """Only the oldest running execution deploys; any later one (a duplicate approval event, or the
        next approval arriving early) is refused before it touches the endpoint."""
        note = sfn.Pass(self, "Note this execution", parameters={"Id": sfn.JsonPath.execution_id}, result_path="$.execution")
        running = self._call(
            "List running deployments",
            "sfn",
            "listExecutions",
            {"StateMachineArn": sfn.JsonPath.state_machine_id, "StatusFilter": "RUNNING"},
            [
                self._stack.format_arn(
                    service="states", resource="stateMachine", resource_name=state_machine_name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
                )
            ],
            iam_action="states:ListExecutions",
            # Most recent first, as AWS documents: the last one is the oldest.
            result_selector={
                "Oldest": sfn.JsonPath.array_get_item(
                    sfn.JsonPath.list_at("$.Executions[*].ExecutionArn"),
                    cdk.Token.as_number(
                        sfn.JsonPath.math_add(cdk.Token.as_number(sfn.JsonPath.array_length(sfn.JsonPath.list_at("$.Executions"))), -1)
                    ),
                )
            },
            result_path="$.running",
        )
        deploying = sfn.Choice(self, "Is this the oldest running deployment?")
        go_ahead = sfn.Pass(self, "Go ahead")
        refused = sfn.Fail(
            self,
            "Another deployment is running",
            error="DeploymentInProgress",
            cause="An earlier execution is still deploying to this endpoint; approve again once it has finished",
        )
        deploying.when(sfn.Condition.string_equals_json_path("$.running.Oldest", "$.execution.Id"), go_ahead).otherwise(refused)
        note.next(running).next(deploying)
        return sfn.Chain.custom(note, [go_ahead], go_ahead)

    # -- first release ---------------------------------------------------------------------------

    def _first_release(self, instance_count: int) -> sfn.IChainable:
        create_config = self._create_config(
            "Create the first endpoint config",
            "$.release.FirstConfig",
            [
                {
                    "VariantName": "blue",
                    "ModelName": sfn.JsonPath.string_at("$.release.ModelName"),
                    "InstanceType": self._instance_type,
                    "InitialInstanceCount": instance_count,
                    "InitialVariantWeight": 1,
                }
            ],
        )
        create_endpoint = self._sagemaker(
            "Create the endpoint",
            "createEndpoint",
            {"EndpointName": self._endpoint, "EndpointConfigName": sfn.JsonPath.string_at("$.release.FirstConfig")},
            [*self._endpoint_arns, *self._config_arns],
            result_path=sfn.JsonPath.DISCARD,
        )
        failed = sfn.Fail(self, "First release failed", error="EndpointCreationFailed", cause_path="$.failure.reason")
        done = (
            self._register_autoscaling("first release", "blue")
            .next(self._notify("Announce the first release", "released", "$.release.ModelName"))
            .next(sfn.Succeed(self, "Released on blue"))
        )
        return create_config.next(create_endpoint).next(
            self._await_endpoint("the new endpoint", "$.release.FirstConfig", done, failed)
        )

    # -- later releases --------------------------------------------------------------------------

    def _later_release(self, strategy: str) -> sfn.IChainable:
        busy = sfn.Fail(
            self,
            "Endpoint is busy with another deployment",
            error="EndpointBusy",
            cause="The endpoint is not InService on a single variant; another deployment is running or failed",
        )
        describe_live_config = self._sagemaker(
            "Remember the live config",
            "describeEndpointConfig",
            {"EndpointConfigName": sfn.JsonPath.string_at("$.live.ConfigName")},
            self._config_arns,
            result_selector={
                "Model": sfn.JsonPath.array_get_item(sfn.JsonPath.list_at("$.ProductionVariants[*].ModelName"), 0),
                "InstanceType": sfn.JsonPath.array_get_item(sfn.JsonPath.list_at("$.ProductionVariants[*].InstanceType"), 0),
            },
            result_path="$.liveConfig",
        )
        if strategy == "guardrails":
            next_step = self._guardrails()
        else:
            next_step = self._pick_colour()
        return (
            sfn.Choice(self, "Is the endpoint free?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals("$.live.Status", _IN_SERVICE),
                    sfn.Condition.number_equals("$.live.Variants", 1),
                ),
                describe_live_config.next(
                    sfn.Choice(self, "Is this release already live?")
                    .when(
                        sfn.Condition.string_equals_json_path("$.liveConfig.Model", "$.release.ModelName"),
                        sfn.Succeed(self, "Already serving this release"),
                    )
                    .otherwise(next_step)
                ),
            )
            .otherwise(busy)
        )

    def _pick_colour(self) -> sfn.IChainable:
        """variants: the canary goes to the colour not in use."""
        pick_colour = sfn.Choice(self, "Which colour is live?")
        colours = {
            colour: sfn.Pass(
                self,
                f"Canary goes to {colour}",
                result=sfn.Result.from_object({"New": colour, "Alarms": self._alarm_names[colour]}),
                result_path="$.colour",
            )
            for colour in COLOURS
        }
        pick_colour.when(sfn.Condition.string_equals("$.live.Variant", "blue"), colours["green"]).otherwise(colours["blue"])

        rollback = self._rollback()
        canary = self._canary(self._weight, rollback)
        for colour in colours.values():
            colour.next(canary)
        return pick_colour

    def _guardrails(self) -> sfn.IChainable:
        """guardrails: one UpdateEndpoint; SageMaker shifts the traffic and rolls back on the alarms itself."""
        remember = sfn.Pass(
            self,
            "Watch the live variant's alarms",
            parameters={"New": sfn.JsonPath.string_at("$.live.Variant")},
            result_path="$.colour",
        )
        create_config = self._create_config(
            "Create the new config",
            "$.release.PromotedConfig",
            [
                {
                    "VariantName": sfn.JsonPath.string_at("$.live.Variant"),
                    "ModelName": sfn.JsonPath.string_at("$.release.ModelName"),
                    "InstanceType": sfn.JsonPath.string_at("$.liveConfig.InstanceType"),
                    "InitialInstanceCount": sfn.JsonPath.number_at("$.live.Count"),
                    "InitialVariantWeight": 1,
                }
            ],
        )
        wait_seconds = self._timings.poll_seconds * self._timings.bake_checks
        routing = {"Type": self._guardrails_routing, "WaitIntervalInSeconds": min(wait_seconds, 3600)}
        size = {"Type": "CAPACITY_PERCENT", "Value": round(self._weight * 100)}
        routing["CanarySize" if self._guardrails_routing == "CANARY" else "LinearStepSize"] = size
        update = self._sagemaker(
            "Deploy with SageMaker guardrails",
            "updateEndpoint",
            {
                "EndpointName": self._endpoint,
                "EndpointConfigName": sfn.JsonPath.string_at("$.release.PromotedConfig"),
                "DeploymentConfig": {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": routing,
                        "TerminationWaitInSeconds": min(self._timings.poll_seconds, 3600),
                        "MaximumExecutionTimeoutInSeconds": max(600, min(28800, 2 * wait_seconds + 600)),
                    },
                    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in self._alarm_names["blue"]]},
                },
            },
            [*self._endpoint_arns, *self._config_arns],
            result_path=sfn.JsonPath.DISCARD,
        )
        promoted = (
            self._register_autoscaling("guarded variant", sfn.JsonPath.string_at("$.live.Variant"))
            .next(self._notify("Announce the guarded release", "promoted", "$.release.ModelName"))
            .next(sfn.Succeed(self, "Promoted by SageMaker"))
        )
        rolled_back = (
            self._register_autoscaling("variant SageMaker kept", sfn.JsonPath.string_at("$.live.Variant"))
            .next(self._notify("Announce SageMaker's rollback", "rolled back", "$.failure.reason"))
            .next(sfn.Fail(self, "Rolled back by SageMaker", error="CanaryRolledBack", cause_path="$.failure.reason"))
        )
        return (
            remember.next(self._deregister_autoscaling("guarded variant", "$.live.Variant"))
            .next(create_config)
            .next(update)
            .next(self._await_endpoint("the guarded release", "$.release.PromotedConfig", promoted, rolled_back))
        )

    def _canary(self, weight: float, rollback: sfn.IChainable) -> sfn.IChainable:
        create_canary_config = self._create_config(
            "Create the canary config",
            "$.release.CanaryConfig",
            [
                {
                    "VariantName": sfn.JsonPath.string_at("$.live.Variant"),
                    "ModelName": sfn.JsonPath.string_at("$.liveConfig.Model"),
                    "InstanceType": sfn.JsonPath.string_at("$.liveConfig.InstanceType"),
                    "InitialInstanceCount": sfn.JsonPath.number_at("$.live.Count"),
                    "InitialVariantWeight": round(1 - weight, 6),
                },
                {
                    "VariantName": sfn.JsonPath.string_at("$.colour.New"),
                    "ModelName": sfn.JsonPath.string_at("$.release.ModelName"),
                    "InstanceType": self._instance_type,
                    "InitialInstanceCount": 1,
                    "InitialVariantWeight": weight,
                },
            ],
        )
        shift = self._update_endpoint("Shift canary traffic", "$.release.CanaryConfig")
        promote = self._promote(rollback)
        bake = self._bake(promote, rollback)
        return (
            self._deregister_autoscaling("live variant", "$.live.Variant")
            .next(create_canary_config)
            .next(shift)
            .next(self._await_endpoint("the canary", "$.release.CanaryConfig", bake, rollback))
        )

    def _bake(self, promote: sfn.IChainable, rollback: sfn.IChainable) -> sfn.IChainable:
        start = sfn.Pass(self, "Start the bake", result=sfn.Result.from_object({"count": 0}), result_path="$.bake")
        check = self._call(
            "Check the canary's alarms",
            "cloudwatch",
            "describeAlarms",
            {"AlarmNames": sfn.JsonPath.list_at("$.colour.Alarms"), "StateValue": "ALARM"},
            [
                self._stack.format_arn(service="cloudwatch", resource="alarm", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
                for names in self._alarm_names.values()
                for name in names
            ],
            # The state is checked here again rather than trusted to the request's filter alone.
            result_selector={
                "Firing": sfn.JsonPath.array_contains(sfn.JsonPath.list_at("$.MetricAlarms[*].StateValue"), "ALARM"),
                "Names": sfn.JsonPath.list_at("$.MetricAlarms[*].AlarmName"),
            },
            result_path="$.alarms",
        )
        count = sfn.Pass(
            self,
            "Count bake checks",
            parameters={"count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.bake.count"), 1)},
            result_path="$.bake",
        )
        alarm = sfn.Pass(
            self,
            "Record the alarm",
            parameters={"reason": sfn.JsonPath.format("Canary alarm in ALARM: {}", sfn.JsonPath.json_to_string(sfn.JsonPath.list_at("$.alarms.Names")))},
            result_path="$.failure",
        )
        alarm.next(rollback)
        wait = sfn.Wait(self, "Bake", time=sfn.WaitTime.duration(cdk.Duration.seconds(self._timings.poll_seconds)))
        start.next(check)
        check.next(count)
        count.next(
            sfn.Choice(self, "Is the canary healthy?")
            .when(sfn.Condition.boolean_equals("$.alarms.Firing", True), alarm)
            .when(
                sfn.Condition.number_greater_than_equals("$.bake.count", self._timings.bake_checks),
                self._after_bake(promote, rollback),
            )
            .otherwise(wait)
        )
        wait.next(check)
        return start

    def _after_bake(self, promote: sfn.IChainable, rollback: sfn.IChainable) -> sfn.IChainable:
        """The optional guards between a healthy bake and the promotion, in order."""
        after = self._approval(promote, rollback) if self._manual_approval else promote
        return self._enough_traffic(after, rollback) if self._min_invocations else after

    def _enough_traffic(self, promote: sfn.IChainable, rollback: sfn.IChainable) -> sfn.IChainable:
        """Roll back a canary that served fewer than the configured requests: no alarm is no evidence."""
        window = self._timings.poll_seconds * (self._timings.bake_checks + 2 * self._timings.max_update_polls)
        count = self._call(
            "Count the canary's invocations",
            "cloudwatch",
            "getMetricData",
            {
                "StartTime": sfn.JsonPath.string_at("$$.Execution.StartTime"),
                "EndTime": sfn.JsonPath.string_at("$$.State.EnteredTime"),
                "MetricDataQueries": [
                    {
                        "Id": "invocations",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/SageMaker",
                                "MetricName": "Invocations",
                                "Dimensions": [
                                    {"Name": "EndpointName", "Value": self._endpoint},
                                    {"Name": "VariantName", "Value": sfn.JsonPath.string_at("$.colour.New")},
                                ],
                            },
                            # One period longer than the whole execution: a single sum from its start.
                            "Period": 60 * (window // 60 + 60),
                            "Stat": "Sum",
                        },
                    }
                ],
            },
            ["*"],
            iam_action="cloudwatch:GetMetricData",
            result_selector={"Values": sfn.JsonPath.list_at("$.MetricDataResults[*].Values")},
            result_path="$.traffic",
        )
        unwrap = sfn.Pass(
            self,
            "Unwrap the invocation values",
            parameters={"Values": sfn.JsonPath.array_get_item(sfn.JsonPath.list_at("$.traffic.Values"), 0)},
            result_path="$.traffic",
        )
        too_few = sfn.Pass(
            self,
            "Record too little traffic",
            parameters={
                "reason": sfn.JsonPath.format(
                    f"The canary served too few requests to judge: {{}} invocations, at least {self._min_invocations} needed",
                    sfn.JsonPath.json_to_string(sfn.JsonPath.list_at("$.traffic.Values")),
                )
            },
            result_path="$.failure",
        )
        too_few.next(rollback)
        first = sfn.Pass(
            self,
            "Take the invocation count",
            parameters={"Sum": sfn.JsonPath.array_get_item(sfn.JsonPath.list_at("$.traffic.Values"), 0), "Values": sfn.JsonPath.list_at("$.traffic.Values")},
            result_path="$.traffic",
        )
        first.next(
            sfn.Choice(self, "Did the canary serve enough requests?")
            .when(sfn.Condition.number_greater_than_equals("$.traffic.Sum", self._min_invocations), promote)
            .otherwise(too_few)
        )
        return count.next(unwrap).next(
            sfn.Choice(self, "Did the canary get any traffic?")
            .when(sfn.Condition.is_present("$.traffic.Values[0]"), first)
            .otherwise(too_few)
        )

    def _approval(self, promote: sfn.IChainable, rollback: sfn.IChainable) -> sfn.IChainable:
        """Send a task token to the topic and wait: send-task-success promotes, send-task-failure rolls back."""
        ask = tasks.SnsPublish(
            self,
            "Ask for approval",
            topic=self._topic,
            subject=f"{self._endpoint}: approve the canary?",
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            message=sfn.TaskInput.from_object(
                {
                    "endpoint": self._endpoint,
                    "event": "approval requested",
                    "modelPackageArn": sfn.JsonPath.string_at("$.ModelPackageArn"),
                    "taskToken": sfn.JsonPath.task_token,
                    "approve": "aws stepfunctions send-task-success --task-output '{}' --task-token <taskToken>",
                    "reject": "aws stepfunctions send-task-failure --error Rejected --cause '<why>' --task-token <taskToken>",
                }
            ),
            task_timeout=sfn.Timeout.duration(self._manual_approval),
            result_path=sfn.JsonPath.DISCARD,
        )
        refused = sfn.Pass(
            self,
            "Record the refusal",
            parameters={"reason": sfn.JsonPath.format("Promotion not approved: {} {}", sfn.JsonPath.string_at("$.approval.Error"), sfn.JsonPath.string_at("$.approval.Cause"))},
            result_path="$.failure",
        )
        refused.next(rollback)
        ask.add_catch(refused, errors=["States.ALL"], result_path="$.approval")
        return ask.next(promote)

    def _promote(self, rollback: sfn.IChainable) -> sfn.IChainable:
        create_config = self._create_config(
            "Create the promoted config",
            "$.release.PromotedConfig",
            [
                {
                    "VariantName": sfn.JsonPath.string_at("$.colour.New"),
                    "ModelName": sfn.JsonPath.string_at("$.release.ModelName"),
                    "InstanceType": sfn.JsonPath.string_at("$.liveConfig.InstanceType"),
                    "InitialInstanceCount": sfn.JsonPath.number_at("$.live.Count"),
                    "InitialVariantWeight": 1,
                }
            ],
        )
        done = (
            self._register_autoscaling("promoted colour", sfn.JsonPath.string_at("$.colour.New"))
            .next(self._clean_up_old_releases())
            .next(self._notify("Announce the promotion", "promoted", "$.release.ModelName"))
            .next(sfn.Succeed(self, "Promoted"))
        )
        return create_config.next(self._update_endpoint("Promote the canary", "$.release.PromotedConfig")).next(
            self._await_endpoint("the promotion", "$.release.PromotedConfig", done, rollback)
        )

    def _clean_up_old_releases(self) -> sfn.IChainable:
        """Delete endpoint configs and models other than this release's and the previous one's, which a
        manual rollback may still need. A failed clean-up does not fail the release."""
        keep_configs = ["$.release.PromotedConfig", "$.live.ConfigName"]
        keep_models = ["$.release.ModelName", "$.liveConfig.Model"]
        steps = []
        for kind, list_action, key, name_key, delete_action, prefix, keep, arns in (
            ("endpoint configs", "listEndpointConfigs", "EndpointConfigs", "EndpointConfigName", "deleteEndpointConfig", self._endpoint, keep_configs, self._config_arns),
            ("models", "listModels", "Models", "ModelName", "deleteModel", self._model_prefix, keep_models, self._model_arns),
        ):
            listed = self._sagemaker(
                f"List old {kind}",
                list_action,
                {"NameContains": prefix, "MaxResults": 100},
                ["*"],
                result_selector={"Names": sfn.JsonPath.list_at(f"$.{key}[*].{name_key}")},
                result_path="$.cleanup",
            )
            delete = self._sagemaker(
                f"Delete an old {kind[:-1]}",
                delete_action,
                {name_key: sfn.JsonPath.string_at("$.name")},
                arns,
                result_path=sfn.JsonPath.DISCARD,
            )
            each = sfn.Map(
                self,
                f"Delete old {kind}",
                items_path="$.cleanup.Names",
                item_selector={"name": sfn.JsonPath.string_at("$$.Map.Item.Value"), **{f"keep{i}": sfn.JsonPath.string_at(path) for i, path in enumerate(keep)}},
                max_concurrency=1,
                result_path=sfn.JsonPath.DISCARD,
            )
            each.item_processor(
                sfn.Choice(self, f"Is it an old {kind[:-1]}?")
                .when(
                    sfn.Condition.or_(*(sfn.Condition.string_equals_json_path("$.name", f"$.keep{i}") for i in range(len(keep)))),
                    sfn.Succeed(self, f"Keep the {kind[:-1]}"),
                )
                .otherwise(delete)
            )
            steps.append(listed.next(each))
        clean_up = sfn.Parallel(self, "Clean up old releases", result_path=sfn.JsonPath.DISCARD)
        clean_up.branch(sfn.Chain.start(steps[0]).next(steps[1]))
        failed = sfn.Pass(self, "Clean-up failed; the release stands")
        clean_up.add_catch(failed, errors=["States.ALL"], result_path="$.cleanupError")
        complete = sfn.Pass(self, "Release complete")
        clean_up.next(complete)
        failed.next(complete)
        return sfn.Chain.custom(clean_up, [complete], complete)

    def _rollback(self) -> sfn.IChainable:
        rolled_back = sfn.Fail(self, "Rolled back", error="CanaryRolledBack", cause_path="$.failure.reason")
        rollback_failed = sfn.Fail(self, "Rollback failed", error="RollbackFailed", cause_path="$.failure.reason")
        restored = (
            self._register_autoscaling("restored variant", sfn.JsonPath.string_at("$.live.Variant"))
            .next(self._notify("Announce the rollback", "rolled back", "$.failure.reason"))
            .next(rolled_back)
        )
        stuck = self._notify("Announce the failed rollback", "rollback failed, endpoint needs attention", "$.failure.reason").next(
            rollback_failed
        )
        roll_back = self._update_endpoint("Roll back to the live config", "$.live.ConfigName")
        # SageMaker refuses to update a Failed endpoint: say so instead of failing on a bare task error.
        refused = sfn.Pass(
            self,
            "Record the refused rollback",
            parameters={
                "reason": sfn.JsonPath.format(
                    "{}; rolling back was refused: {}", sfn.JsonPath.string_at("$.failure.reason"), sfn.JsonPath.string_at("$.rollbackError.Cause")
                )
            },
            result_path="$.failure",
        )
        roll_back.add_catch(refused, errors=["States.TaskFailed"], result_path="$.rollbackError")
        refused.next(stuck)
        return roll_back.next(self._await_endpoint("the rollback", "$.live.ConfigName", restored, stuck))

    # -- building blocks -------------------------------------------------------------------------

    def _await_endpoint(self, label: str, expected_config: str, done: sfn.IChainable, failed: sfn.IChainable) -> sfn.IChainable:
        """Poll until the endpoint is InService on `expected_config`; anything else ends in `failed`.

        InService on another config is SageMaker's own rollback after a failed update: never success.
        """
        start = sfn.Pass(self, f"Start waiting for {label}", result=sfn.Result.from_object({"count": 0}), result_path="$.polls")
        wait = sfn.Wait(self, f"Wait for {label}", time=sfn.WaitTime.duration(cdk.Duration.seconds(self._timings.poll_seconds)))
        check = self._sagemaker(
            f"Check {label}",
            "describeEndpoint",
            {"EndpointName": self._endpoint},
            self._endpoint_arns,
            result_selector={
                "Status": sfn.JsonPath.string_at("$.EndpointStatus"),
                "ConfigName": sfn.JsonPath.string_at("$.EndpointConfigName"),
            },
            result_path="$.endpoint",
        )
        count = sfn.Pass(
            self,
            f"Count polls of {label}",
            parameters={"count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.polls.count"), 1)},
            result_path="$.polls",
        )

        def reason(text: str) -> sfn.IChainable:
            record = sfn.Pass(
                self,
                f"{text[0].upper()}{text[1:]} ({label})",
                parameters={"reason": sfn.JsonPath.format(f"{text} while waiting for {label}: endpoint {{}} on {{}}", sfn.JsonPath.string_at("$.endpoint.Status"), sfn.JsonPath.string_at("$.endpoint.ConfigName"))},
                result_path="$.failure",
            )
            return record.next(failed)

        start.next(wait)
        wait.next(check)
        check.next(count)
        count.next(
            sfn.Choice(self, f"Is {label} in service?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals("$.endpoint.Status", _IN_SERVICE),
                    sfn.Condition.string_equals_json_path("$.endpoint.ConfigName", expected_config),
                ),
                done,
            )
            .when(sfn.Condition.string_equals("$.endpoint.Status", _IN_SERVICE), reason("silently rolled back"))
            .when(
                sfn.Condition.or_(
                    sfn.Condition.string_equals("$.endpoint.Status", "Failed"),
                    sfn.Condition.string_equals("$.endpoint.Status", "UpdateRollbackFailed"),
                ),
                reason("failed"),
            )
            .when(sfn.Condition.number_greater_than_equals("$.polls.count", self._timings.max_update_polls), reason("timed out"))
            .otherwise(wait)
        )
        return start

    def _create_config(self, name: str, config_path: str, variants: list[dict]) -> tasks.CallAwsService:
        return self._sagemaker(
            name,
            "createEndpointConfig",
            {"EndpointConfigName": sfn.JsonPath.string_at(config_path), "KmsKeyId": self._key.key_arn, "ProductionVariants": variants},
            self._config_arns,
            result_path=sfn.JsonPath.DISCARD,
        )

    def _update_endpoint(self, name: str, config_path: str) -> tasks.CallAwsService:
        return self._sagemaker(
            name,
            "updateEndpoint",
            {"EndpointName": self._endpoint, "EndpointConfigName": sfn.JsonPath.string_at(config_path)},
            [*self._endpoint_arns, *self._config_arns],
            result_path=sfn.JsonPath.DISCARD,
        )

    def _resource_id(self, variant: str) -> str:
        return sfn.JsonPath.format(f"endpoint/{self._endpoint}/variant/{{}}", variant)

    def _register_autoscaling(self, label: str, variant: str) -> sfn.Chain:
        register = self._call(
            f"Register autoscaling ({label})",
            "applicationautoscaling",
            "registerScalableTarget",
            {
                "ServiceNamespace": "sagemaker",
                "ResourceId": self._resource_id(variant),
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                "MinCapacity": self._scaling.min_capacity,
                "MaxCapacity": self._scaling.max_capacity,
            },
            ["*"],
            iam_action="application-autoscaling:RegisterScalableTarget",
            result_path=sfn.JsonPath.DISCARD,
        )
        policy = self._call(
            f"Put the scaling policy ({label})",
            "applicationautoscaling",
            "putScalingPolicy",
            {
                "PolicyName": SCALING_POLICY,
                "ServiceNamespace": "sagemaker",
                "ResourceId": self._resource_id(variant),
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": self._scaling.invocations_per_instance,
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                    "ScaleInCooldown": 300,
                    "ScaleOutCooldown": 60,
                },
            },
            ["*"],
            iam_action="application-autoscaling:PutScalingPolicy",
            result_path=sfn.JsonPath.DISCARD,
        )
        return sfn.Chain.start(register).next(policy)

    def _deregister_autoscaling(self, label: str, variant_path: str) -> sfn.Chain:
        deregister = self._call(
            f"Deregister autoscaling ({label})",
            "applicationautoscaling",
            "deregisterScalableTarget",
            {
                "ServiceNamespace": "sagemaker",
                "ResourceId": self._resource_id(sfn.JsonPath.string_at(variant_path)),
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            },
            ["*"],
            iam_action="application-autoscaling:DeregisterScalableTarget",
            result_path=sfn.JsonPath.DISCARD,
        )
        # A variant without autoscaling (registration failed, or removed by hand) is fine to change.
        nothing_to_remove = sfn.Pass(self, f"No autoscaling on the {label}")
        deregister.add_catch(nothing_to_remove, errors=["ApplicationAutoScaling.ObjectNotFoundException"], result_path=sfn.JsonPath.DISCARD)
        joined = sfn.Pass(self, f"Autoscaling is off the {label}")
        deregister.next(joined)
        nothing_to_remove.next(joined)
        return sfn.Chain.custom(deregister, [joined], joined)

    def _notify(self, name: str, what: str, detail_path: str) -> tasks.SnsPublish:
        return tasks.SnsPublish(
            self,
            name,
            topic=self._topic,
            subject=f"{self._endpoint}: {what}",
            message=sfn.TaskInput.from_object(
                {
                    "endpoint": self._endpoint,
                    "event": what,
                    "detail": sfn.JsonPath.string_at(detail_path),
                    "modelPackageArn": sfn.JsonPath.string_at("$.ModelPackageArn"),
                    "execution": sfn.JsonPath.execution_id,
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )

    def _sagemaker(self, name: str, action: str, parameters: dict, resources: list[str], **kwargs) -> tasks.CallAwsService:
        return self._call(name, "sagemaker", action, parameters, resources, **kwargs)

    def _call(self, name: str, service: str, action: str, parameters: dict, resources: list[str], **kwargs) -> tasks.CallAwsService:
        return tasks.CallAwsService(self, name, service=service, action=action, parameters=parameters, iam_resources=resources, **kwargs)

    def _arn(self, kind: str, name: str) -> str:
        return self._stack.format_arn(service="sagemaker", resource=kind, resource_name=name)

    def _grant_rest(self, model_role: iam.IRole) -> None:
        role = self.state_machine.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[model_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # Application Auto Scaling calls these as the caller when it registers a SageMaker variant.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:UpdateEndpointWeightsAndCapacities"],
                resources=[*self._endpoint_arns, *self._config_arns],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
                resources=[self._scaling_alarms],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=["*"],
                conditions={"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
            )
        )
        self._key.grant(role, "kms:CreateGrant", "kms:DescribeKey")
        acknowledge_wildcard_resources(
            role,
            [*self._model_arns, *self._config_arns],
            "Models and endpoint configs are named per release (package version) under this endpoint's prefix.",
        )
        acknowledge_wildcard_resources(role, self._package_arns, "Any version of this environment's model package group.")
        acknowledge_wildcard_resources(
            role, [self._scaling_alarms], "Application Auto Scaling names its target-tracking alarms at run time."
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Application Auto Scaling scalable targets and SageMaker List actions have no ARNs to scope to; "
            "the service-linked role is conditioned on its service name.",
        )

