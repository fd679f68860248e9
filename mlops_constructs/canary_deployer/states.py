"""The building blocks every phase of the deployer uses: AWS calls that retry what is transient, endpoint
polls, autoscaling, endpoint configs and the events that announce what happened."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from config.deployer_timings import CanaryTimings
from config.naming import RELEASE_RECORDS_PREFIX
from mlops_constructs.sdk_errors import DeleteItemCall, PutEventsCall, RawSdkCall, SdkCall
from mlops_constructs.json_paths import DISCARD, EXECUTION_ID, list_at, number_at, states_format, states_math_add, string_at

IN_SERVICE = "InService"
SCALING_POLICY = "SageMakerEndpointInvocationScalingPolicy"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# The deployer announces what it did as EventBridge events of this detail type, with the state machine's name as
# their source, on an event bus only the deployer may put events on; whoever tells people (the operations
# stack's notify function) writes the message.
DEPLOYMENT_EVENT = "Canary Deployment Status Change"

# The backoff of the Retry rules for the errors each service declares for its throttling and faults; its generic
# errors are retried as often and after as long, when their Cause says they are transient (`sdk_errors`).
RETRY = {"interval": cdk.Duration.seconds(2), "max_attempts": 6, "backoff_rate": 2, "max_delay": cdk.Duration.seconds(60), "jitter_strategy": sfn.JitterType.FULL}


def aws_call(scope: Construct, name: str, service: str, action: str, parameters: dict, resources: list[str], **kwargs) -> tasks.CallAwsService:
    """An `aws-sdk` task state that retries `service`'s transient errors with backoff, and nothing else."""
    return SdkCall(scope, name, service=service, action=action, parameters=parameters, resources=resources, retry=RETRY, **kwargs)


@dataclass(frozen=True)
class DataCapture:
    """Where and how much of the endpoint's traffic is captured; SageMaker writes it under
    ``<destination_s3_uri>/<endpoint>/<variant>/`` as the model's execution role."""

    destination_s3_uri: str
    sampling_percentage: int

    def config(self, key_arn: str) -> dict:
        """CreateEndpointConfig's DataCaptureConfig: requests and responses, encrypted with `key_arn`."""
        return {
            "EnableCapture": True,
            "InitialSamplingPercentage": self.sampling_percentage,
            "DestinationS3Uri": self.destination_s3_uri,
            "KmsKeyId": key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            # Captured as text rather than base64, so Model Monitor and people can read it.
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
        }


@dataclass(frozen=True)
class ServerlessCapacity:
    """A serverless variant's ProductionVariantServerlessConfig: memory per invocation, the most concurrent
    invocations, and how many of them SageMaker keeps warm (none unless given)."""

    memory_size_mb: int
    max_concurrency: int
    provisioned_concurrency: int | None = None

    def config(self) -> dict:
        provisioned = {"ProvisionedConcurrency": self.provisioned_concurrency} if self.provisioned_concurrency else {}
        return {"MemorySizeInMB": self.memory_size_mb, "MaxConcurrency": self.max_concurrency, **provisioned}


@dataclass(frozen=True)
class ReleaseRecords:
    """Where the deployer writes down each release that went live: ``<bucket>/releases/<group>/v<version>.json``,
    which a promotion from this environment reads (``config.naming.release_record_key``)."""

    bucket_name: str
    group_name: str


@dataclass(frozen=True)
class VariantScaling:
    min_capacity: int
    max_capacity: int
    invocations_per_instance: float


@functools.cache
def _counter_start() -> sfn.Result:
    """A loop counter's first value; a value every counter shares, made once."""
    return sfn.Result.from_object({"count": 0})


@functools.cache
def _wait_seconds(seconds: int) -> sfn.WaitTime:
    """A wait of `seconds`; a value every wait of that length shares, made once."""
    return sfn.WaitTime.duration(cdk.Duration.seconds(seconds))


@functools.cache
def _endpoint_poll_rules(expected_config: str, max_polls: int) -> tuple[sfn.Condition, sfn.Condition, sfn.Condition, sfn.Condition]:
    """The rules of a poll of the endpoint, in the order they are tried: InService on the config at
    `expected_config`; InService on another; failed; polled `max_polls` times. Values, not constructs: the
    polls of the same config (in every phase and in each model's deployer) share them, made once."""
    status = "$.endpoint.Status"
    in_service = sfn.Condition.string_equals(status, IN_SERVICE)
    return (
        sfn.Condition.and_(in_service, sfn.Condition.string_equals_json_path("$.endpoint.ConfigName", expected_config)),
        in_service,
        sfn.Condition.or_(sfn.Condition.string_equals(status, "Failed"), sfn.Condition.string_equals(status, "UpdateRollbackFailed")),
        sfn.Condition.number_greater_than_equals("$.polls.count", max_polls),
    )


class DeployerStates:
    """Makes the deployer's states in `scope`; holds what they share (endpoint, timings, event source, ARNs)."""

    def __init__(
        self,
        scope: Construct,
        *,
        endpoint_name: str,
        model_name_prefix: str,
        timings: CanaryTimings,
        scaling: VariantScaling,
        event_source: str,
        event_bus: events.IEventBus,
        key_arn: str,
        release_records: ReleaseRecords,
        data_capture: DataCapture | None = None,
        serverless: ServerlessCapacity | None = None,
        retired_endpoint_name: str | None = None,
    ) -> None:
        self.scope = scope
        self.stack = cdk.Stack.of(scope)
        self.endpoint = endpoint_name
        self.model_prefix = model_name_prefix
        self.timings = timings
        self.scaling = scaling
        self.event_source = event_source
        self.event_bus = event_bus
        self.key_arn = key_arn
        self.release_records = release_records
        # Every endpoint config carries it, so no release, promotion or rollback switches capture off.
        self.data_capture = {"DataCaptureConfig": data_capture.config(key_arn)} if data_capture else {}
        self.serverless = serverless
        # The endpoint of the other serving mode, deleted once a release serves here (None: nothing to retire).
        self.retired_endpoint = retired_endpoint_name
        # The states an execution can end in once it may hold the endpoint's lock, each behind the state that
        # leads there through the lock's release (see `ending`).
        self._ends: list[tuple[str, sfn.State, sfn.Pass]] = []
        self.endpoint_arns = [self.sagemaker_arn("endpoint", endpoint_name.lower())]
        self.config_arns = [self.sagemaker_arn("endpoint-config", f"{endpoint_name.lower()}-*")]
        self.model_arns = [self.sagemaker_arn("model", f"{model_name_prefix.lower()}-*")]

    # -- ending -----------------------------------------------------------------------------------

    def ending(self, end: sfn.State) -> sfn.Pass:
        """The way into `end` (a Succeed or Fail state) for anything that runs once the execution may hold the
        endpoint's lock: note which end it is, release the lock (`release_lock_at_every_end`), then end there."""
        label = end.state_id
        finish = sfn.Pass(self.scope, f"Finish ({label})", result=sfn.Result.from_string(label), result_path="$.ending")
        self._ends.append((label, end, finish))
        return finish

    def release_lock_at_every_end(self, lock: dynamodb.ITable) -> None:
        """Every end made with `ending` goes through one conditional delete of the endpoint's lock, naming this
        execution as the holder: a later holder (which took over a lock it found stale) is never released by an
        earlier one. Releasing is a courtesy to the next approval, which would otherwise read the holder's
        status; if it fails after retries, the execution ends as it would have, and the next one finds the lock
        stale once this execution has ended."""
        me = tasks.DynamoAttributeValue.from_string(EXECUTION_ID)
        release = DeleteItemCall(
            self.scope,
            "Release the endpoint's lock",
            table=lock,
            key={"Endpoint": tasks.DynamoAttributeValue.from_string(self.endpoint)},
            condition_expression="Execution = :me",
            expression_attribute_values={":me": me},
            result_path=DISCARD,
            retry=RETRY,
        )
        dispatch = sfn.Choice(self.scope, "Which end was it?")
        # Not held by this execution (it ended before taking the lock, or another took it over): nothing to release.
        release.add_catch(dispatch, errors=["States.ALL"], result_path="$.lockReleaseError")
        release.next(dispatch)
        (_, first, _), *rest = self._ends
        for label, end, _ in rest:
            dispatch.when(sfn.Condition.string_equals("$.ending", label), end)
        dispatch.otherwise(first)
        for _, _, finish in self._ends:
            finish.next(release)

    # -- AWS calls -------------------------------------------------------------------------------

    def call(self, name: str, service: str, action: str, parameters: dict, resources: list[str], **kwargs) -> tasks.CallAwsService:
        return aws_call(self.scope, name, service, action, parameters, resources, **kwargs)

    def sagemaker(self, name: str, action: str, parameters: dict, resources: list[str], **kwargs) -> tasks.CallAwsService:
        return self.call(name, "sagemaker", action, parameters, resources, **kwargs)

    def sagemaker_arn(self, kind: str, name: str) -> str:
        return self.stack.format_arn(service="sagemaker", resource=kind, resource_name=name)

    def announce(self, name: str, details: dict, **kwargs) -> tasks.EventBridgePutEvents:
        """Put one event of `DEPLOYMENT_EVENT` on the deployer's bus with `details` and the package and execution."""
        return PutEventsCall(
            self.scope,
            name,
            entries=[
                tasks.EventBridgePutEventsEntry(
                    source=self.event_source,
                    detail_type=DEPLOYMENT_EVENT,
                    event_bus=self.event_bus,
                    detail=sfn.TaskInput.from_object(
                        {
                            "endpoint": self.endpoint,
                            "modelPackageArn": string_at("$.ModelPackageArn"),
                            "execution": EXECUTION_ID,
                            **details,
                        }
                    ),
                )
            ],
            result_path=DISCARD,
            retry=RETRY,
            **kwargs,
        )

    def notify(self, name: str, what: str, detail_path: str) -> tasks.EventBridgePutEvents:
        """Announce `what` happened (released, promoted, rolled back, ... failed), with `detail_path`'s text."""
        return self.announce(name, {"event": what, "detail": string_at(detail_path)})

    def record_release(
        self, label: str, kind: str, what: str, *, announce: tasks.EventBridgePutEvents, announcement_failed: sfn.IChainable, done: sfn.IChainable
    ) -> sfn.IChainable:
        """The endpoint serves the release: write down how it went live (`kind`: first-release or canary-passed)
        where a promotion from this environment looks for it, then `announce` it (event `what`) and go on to
        `done`; `announce` has its own Catch to `announcement_failed`.

        The record is written as an S3 object, not as metadata on the model package: updating a package makes
        SageMaker send another state-change event, which would start the deployer again. A record that cannot
        be written (after retrying what is transient) leaves the release standing, and the announcement says
        that this version cannot be promoted until it is released again."""
        scope = self.scope
        records = self.release_records
        record = sfn.Pass(
            scope,
            f"Write down the release ({label})",
            parameters={
                "Key.$": states_format(f"{RELEASE_RECORDS_PREFIX}{records.group_name}/v{{}}.json", "$.package.Version"),
                "Content": {
                    "release": kind,
                    "endpoint": self.endpoint,
                    "modelPackageArn": string_at("$.ModelPackageArn"),
                    "version": number_at("$.package.Version"),
                    "model": string_at("$.release.ModelName"),
                    "execution": EXECUTION_ID,
                    # The moment this state was entered, from the context object: when the release went live.
                    "releasedAt": string_at("$$.State.EnteredTime"),
                },
            },
            result_path="$.releaseRecord",
        )
        # A state of its own making, so no statement is generated for it: the bucket belongs to the storage stack,
        # whose release-records policy (attached to the deployer's role) is the permission to write here.
        put = RawSdkCall(
            scope,
            f"Keep the release record ({label})",
            service="s3",
            retry=RETRY,
            state_json={
                "Type": "Task",
                "Resource": f"arn:{self.stack.partition}:states:::aws-sdk:s3:putObject",
                "Parameters": {
                    "Bucket": records.bucket_name,
                    "Key.$": "$.releaseRecord.Key",
                    "Body.$": "States.JsonToString($.releaseRecord.Content)",
                    "ContentType": "application/json",
                },
                # Under the record, not the state (a raw state's null ResultPath does not survive jsii).
                "ResultPath": "$.releaseRecord.Stored",
            },
        )
        not_recorded = sfn.Pass(
            scope,
            f"Note the release was not recorded ({label})",
            parameters={
                "reason.$": states_format(
                    f"endpoint {self.endpoint} serves SageMaker model {{}}, but writing its release record to s3://{records.bucket_name}/{{}} failed "
                    "({}: {}), so this version cannot be promoted to another environment until it is released here again",
                    "$.release.ModelName",
                    "$.releaseRecord.Key",
                    "$.recordError.Error",
                    "$.recordError.Cause",
                )
            },
            result_path="$.failure",
        )
        announce_unrecorded = self.notify(f"Announce the unrecorded release ({label})", f"{what} (not recorded)", "$.failure.reason")
        put.add_catch(not_recorded, errors=["States.ALL"], result_path="$.recordError")
        announce_unrecorded.add_catch(announcement_failed, errors=["States.ALL"], result_path="$.notifyError")
        announce.next(done)
        announce_unrecorded.next(done)
        not_recorded.next(announce_unrecorded)
        record.next(put).next(announce)
        return record

    # -- endpoint configs and updates ------------------------------------------------------------

    def serverless_variant(self, variant: str, model: str, serverless_config: object = None) -> dict:
        """A serverless production variant serving `model`, with the configured capacity unless given
        `serverless_config` (the live variant's, to put it back as it was)."""
        return {"VariantName": variant, "ModelName": model, "ServerlessConfig": serverless_config or self.serverless.config()}

    def create_config(self, name: str, config_path: str, variants: list[dict]) -> tasks.CallAwsService:
        # The key encrypts the ML storage volumes of instances; a serverless variant has none to encrypt.
        key = {} if self.serverless else {"KmsKeyId": self.key_arn}
        return self.sagemaker(
            name,
            "createEndpointConfig",
            {
                "EndpointConfigName": string_at(config_path),
                **key,
                "ProductionVariants": variants,
                **self.data_capture,
            },
            self.config_arns,
            result_path=DISCARD,
        )

    def update_endpoint(self, name: str, config_path: str, **extra: object) -> tasks.CallAwsService:
        return self.sagemaker(
            name,
            "updateEndpoint",
            {"EndpointName": self.endpoint, "EndpointConfigName": string_at(config_path), **extra},
            [*self.endpoint_arns, *self.config_arns],
            result_path=DISCARD,
        )

    def describe_endpoint(self, name: str, result_path: str, *, retries_within: str = "$", **more: str) -> tasks.CallAwsService:
        """The endpoint's Status and ConfigName (and the `more` selections) at `result_path`; a describe polled in a
        loop counts its retries `retries_within` the loop's counter (see sdk_errors)."""
        return self.sagemaker(
            name,
            "describeEndpoint",
            {"EndpointName": self.endpoint},
            self.endpoint_arns,
            result_selector={
                "Status": string_at("$.EndpointStatus"),
                "ConfigName": string_at("$.EndpointConfigName"),
                **more,
            },
            result_path=result_path,
            retries_within=retries_within,
        )

    def counter(self, start_name: str, count_name: str, path: str) -> tuple[sfn.Pass, sfn.Pass]:
        """A loop counter at `path`: a state that sets it to 0 and one that adds 1."""
        start = sfn.Pass(self.scope, start_name, result=_counter_start(), result_path=path)
        count = sfn.Pass(self.scope, count_name, parameters={"count.$": states_math_add(f"{path}.count", 1)}, result_path=path)
        return start, count

    def await_endpoint(self, label: str, expected_config: str, done: sfn.IChainable, failed: sfn.IChainable) -> sfn.IChainable:
        """Poll until the endpoint is InService on `expected_config`; anything else ends in `failed`.

        InService on another config is SageMaker's own rollback after a failed update: never success.
        A failed poll is handed to `failed` as well, with the reason.
        """
        start, count = self.counter(f"Start waiting for {label}", f"Count polls of {label}", "$.polls")
        wait = sfn.Wait(self.scope, f"Wait for {label}", time=_wait_seconds(self.timings.poll_seconds))
        check = self.describe_endpoint(f"Check {label}", "$.endpoint", retries_within="$.polls")
        self.on_failure(check, failed, label=f"checking {label}")

        def reason(text: str) -> sfn.IChainable:
            record = sfn.Pass(
                self.scope,
                f"{text[0].upper()}{text[1:]} ({label})",
                parameters={
                    "reason.$": states_format(f"{text} while waiting for {label}: endpoint {{}} on {{}}", "$.endpoint.Status", "$.endpoint.ConfigName")
                },
                result_path="$.failure",
            )
            return record.next(failed)

        on_expected_config, in_service, failed_update, polled_enough = _endpoint_poll_rules(expected_config, self.timings.max_update_polls)
        start.next(wait).next(check).next(count).next(
            sfn.Choice(self.scope, f"Is {label} in service?")
            .when(on_expected_config, done)
            .when(in_service, reason("silently rolled back"))
            .when(failed_update, reason("failed"))
            .when(polled_enough, reason("timed out"))
            .otherwise(wait)
        )
        return start

    def on_failure(self, task: sfn.TaskStateBase, handler: sfn.IChainable, *, label: str) -> None:
        """Send any failure of `task` (after its retries) to `handler`, with the reason in `$.failure.reason`."""
        if "'" in label:
            # States.Format ends its text at an unescaped apostrophe, and the reason people read would be cut short.
            raise ValueError(f"failure label {label!r} has an apostrophe")
        record = sfn.Pass(
            self.scope,
            f"Record the failure ({label})",
            parameters={
                "reason.$": states_format(f"{label} failed: {{}}: {{}}", "$.error.Error", "$.error.Cause")
            },
            result_path="$.failure",
        )
        task.add_catch(record, errors=["States.ALL"], result_path="$.error")
        record.next(handler)

    def retire_other_endpoint(self, label: str) -> sfn.Chain:
        """Delete the other serving mode's endpoint, if there is one: it served until this endpoint did.
        Failing to delete it fails no release; people are told it is still there (and still billing)."""
        if not self.retired_endpoint:
            nothing = sfn.Pass(self.scope, f"No other endpoint to retire ({label})")
            return sfn.Chain.start(nothing)
        other = self.retired_endpoint
        listed = self.sagemaker(
            f"Look for the other mode's endpoint ({label})",
            "listEndpoints",
            {"NameContains": other, "MaxResults": 100},
            ["*"],
            result_selector={"Exists": sfn.JsonPath.array_contains(list_at("$.Endpoints[*].EndpointName"), other)},
            result_path="$.otherEndpoint",
        )
        delete = self.sagemaker(
            f"Retire the other mode's endpoint ({label})",
            "deleteEndpoint",
            {"EndpointName": other},
            [self.sagemaker_arn("endpoint", other.lower())],
            result_path=DISCARD,
        )
        retired = sfn.Pass(self.scope, f"Done with the other mode's endpoint ({label})")
        left = self.notify(f"Announce the endpoint left to retire ({label})", "retiring the old endpoint failed", "$.failure.reason")
        left.add_catch(retired, errors=["States.ALL"], result_path="$.notifyError")
        left.next(retired)
        for task, what in ((listed, f"looking for endpoint {other}"), (delete, f"retiring endpoint {other}")):
            self.on_failure(task, left, label=f"{what} ({label})")
        delete.next(retired)
        listed.next(sfn.Choice(self.scope, f"Does the other mode's endpoint exist? ({label})").when(sfn.Condition.boolean_equals("$.otherEndpoint.Exists", True), delete).otherwise(retired))
        return sfn.Chain.custom(listed, [retired], retired)

    # -- autoscaling -----------------------------------------------------------------------------

    def _resource_id(self, variant: str) -> str:
        """Application Auto Scaling's ResourceId of `variant` (its name, or the JSON path of its name), for a
        parameter key ending in `.$`."""
        return states_format(f"endpoint/{self.endpoint}/variant/{{}}", variant)

    def register_autoscaling(self, label: str, variant: str) -> tuple[tasks.CallAwsService, tasks.CallAwsService]:
        """Register `variant` (its name, or the JSON path of its name) and put the target-tracking policy;
        returns both tasks (chain them)."""
        register = self.call(
            f"Register autoscaling ({label})",
            "applicationautoscaling",
            "registerScalableTarget",
            {
                "ServiceNamespace": "sagemaker",
                "ResourceId.$": self._resource_id(variant),
                "ScalableDimension": SCALABLE_DIMENSION,
                "MinCapacity": self.scaling.min_capacity,
                "MaxCapacity": self.scaling.max_capacity,
            },
            ["*"],
            iam_action="application-autoscaling:RegisterScalableTarget",
            result_path=DISCARD,
        )
        policy = self.call(
            f"Put the scaling policy ({label})",
            "applicationautoscaling",
            "putScalingPolicy",
            {
                "PolicyName": SCALING_POLICY,
                "ServiceNamespace": "sagemaker",
                "ResourceId.$": self._resource_id(variant),
                "ScalableDimension": SCALABLE_DIMENSION,
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": self.scaling.invocations_per_instance,
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                    "ScaleInCooldown": 300,
                    "ScaleOutCooldown": 60,
                },
            },
            ["*"],
            iam_action="application-autoscaling:PutScalingPolicy",
            result_path=DISCARD,
        )
        register.next(policy)
        return register, policy

    def deregister_autoscaling(self, label: str, variant_path: str) -> tuple[tasks.CallAwsService, sfn.Pass]:
        """Remove the variant's autoscaling; returns the task and the state after it (a variant without
        autoscaling, because registration failed or someone removed it, is fine to change)."""
        deregister = self.call(
            f"Deregister autoscaling ({label})",
            "applicationautoscaling",
            "deregisterScalableTarget",
            {"ServiceNamespace": "sagemaker", "ResourceId.$": self._resource_id(variant_path), "ScalableDimension": SCALABLE_DIMENSION},
            ["*"],
            iam_action="application-autoscaling:DeregisterScalableTarget",
            result_path=DISCARD,
        )
        nothing_to_remove = sfn.Pass(self.scope, f"No autoscaling on the {label}")
        deregister.add_catch(nothing_to_remove, errors=["ApplicationAutoScaling.ObjectNotFoundException"], result_path=DISCARD)
        joined = sfn.Pass(self.scope, f"Autoscaling is off the {label}")
        deregister.next(joined)
        nothing_to_remove.next(joined)
        return deregister, joined
