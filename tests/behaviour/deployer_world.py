"""The canary deployer as `cdk synth` produces it, running in moto with a model registry around it.

`synthesized_deployer()` synthesizes the dev environment from a copy of config/ whose waits are zero
seconds; `DeployerWorld` creates what the definition talks to (alarms, model packages, the default event
bus) and runs executions of that exact definition. The events the deployer puts reach the notify function
as EventBridge would deliver them, through a rule on the deployer's source, and its messages reach the
topic. Used by the behaviour tests and by `make bench`.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from botocore.client import BaseClient
from unittest import mock
from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import EmptyResult
from moto.dynamodb.models import dynamodb_backends
from moto.events.models import events_backends
from moto.sqs.models import sqs_backends
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
from moto.stepfunctions.responses import StepFunctionResponse

from config.naming import deployer_name, model_package_group_name, release_record_key
from mlops_constructs.canary_deployer import DEPLOYMENT_EVENT
from tests.behaviour import sfn_harness
from tests.behaviour.endpoint_shim import EndpointShim, endpoint_shim
from tests.behaviour.notify_function import NotifyFunction, Received
from tests.synth import Synthesized, environment_config, synthesize_dev_with

DEV = environment_config("dev")
REGION = DEV.region
ENDPOINT = f"{DEV.prefix}-endpoint"
# Serverless serving has an endpoint of its own (an endpoint cannot change modes), and models of its own.
SERVERLESS_ENDPOINT = f"{DEV.prefix}-serverless"
SERVERLESS_MODEL = f"{DEV.prefix}-serverless-model"
GROUP = f"{DEV.prefix}-models"
# The SageMaker models the deployer creates: <prefix>-model-v<version>.
MODEL = f"{DEV.prefix}-model"
# Endpoint configs carry the attempt that created them: <endpoint>-v<version>-<attempt>[-canary|-rollback].
_ATTEMPT = re.compile(r"-v(\d+)-[0-9a-f]{8}")


def without_attempt(config_name: str) -> str:
    """`mlops-dev-endpoint-v2-1a2b3c4d-canary` -> `mlops-dev-endpoint-v2-canary`: the name tests compare."""
    return _ATTEMPT.sub(r"-v\1", config_name)
STATE_MACHINE = f"{DEV.prefix}-canary-deployer"
# The bus only the deployer puts its announcements on.
ANNOUNCEMENTS = f"{STATE_MACHINE}-announcements"
# Zero-second waits: the same definition as in production, without the sleeping.
TEST_TIMINGS = {"poll_seconds": 0, "alarm_poll_seconds": 0, "bake_checks": 3, "max_update_polls": 10}


class DeployerTemplate(dict):
    """The dev deployment stack's template, with the operations stack's template of the same synth as
    `operations`: the notify function the world runs takes its environment from there."""

    def __init__(self, synthesized: Synthesized) -> None:
        super().__init__(synthesized.template("dev", "deployment"))
        self.operations = synthesized.template("dev", "operations")
        self.endpoint = SERVERLESS_ENDPOINT if synthesized.config("dev").deployment.serving.mode == "serverless" else ENDPOINT
        text = json.dumps(self)
        # Values the template reads from other stacks' outputs (Fn::GetStackOutput), by output name.
        self.imported_outputs = sorted({part.split('"')[0] for part in text.split('"OutputName": "')[1:]})
        self._definitions: dict[tuple[str, str], tuple[dict, str]] = {}

    def definition(self, name: str, refs: dict) -> tuple[dict, str]:
        """The definition of the state machine `name` resolved with `refs`, parsed and as the JSON text it is
        created from: resolved once per template and refs, since resolving, parsing and writing the deployer's
        large definition again was about a third of every world's set-up. Every world of the template shares
        the parsed definition: read it, never change it."""
        key = (name, json.dumps(refs, sort_keys=True))
        if key not in self._definitions:
            definition = sfn_harness.state_machine_definition(self, refs, name=name)
            self._definitions[key] = (definition, json.dumps(definition))
        return self._definitions[key]


def synthesized_deployer(workdir: Path, **deployment: object) -> DeployerTemplate:
    """The dev deployment stack's template, synthesized with `deployment` overrides and test timings (or
    copied from the same synth made before)."""

    def change(dev: dict) -> None:
        dev["deployment"].update(TEST_TIMINGS, **deployment)
        if deployment.get("manual_approval"):
            # Synth refuses an approval gate that nobody is told about.
            dev["notifications"] = {"emails": ["release-managers@example.com"]}

    return DeployerTemplate(synthesize_dev_with(workdir, change, reuse=True))


def _client(service: str) -> BaseClient:
    return sfn_harness.world_client(service, REGION)


def register_model(sagemaker, group: str, status: str, **extra: object) -> str:
    """A new model package version in `group`, registered as the pipeline does (pending) and then given `status`."""
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3", "ModelDataUrl": "s3://artifacts/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        **extra,
    )["ModelPackageArn"]
    if status != "PendingManualApproval":
        sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)
    return arn


class DeployerWorld:
    def __init__(self, template: DeployerTemplate, shim: EndpointShim, retry_waits: list[float], state_waits: dict[str, list[int]]) -> None:
        self.shim = shim
        self.retry_waits = retry_waits
        # What each Wait state asked for (`sfn_harness.state_waits`), e.g. the waits before retrying a throttled call.
        self.state_waits = state_waits
        # The endpoint of the serving mode the template was synthesized with.
        self.endpoint = template.endpoint
        self.serverless = template.endpoint == SERVERLESS_ENDPOINT
        self.sagemaker = _client("sagemaker")
        self.sfn = _client("stepfunctions")
        self.cloudwatch = _client("cloudwatch")
        self.autoscaling = _client("application-autoscaling")
        self.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        self._template = template
        self.alarms = self._create_alarms(template)
        self._create_tables(template)
        # The dev stack also holds the endpoint clean-up's waiter state machine.
        self.definition, self._definition_text = template.definition(STATE_MACHINE, self._refs(template))
        self.state_machine = sfn_harness.create_state_machine(self.sfn, self._definition_text, STATE_MACHINE)
        self.s3 = _client("s3")
        self.release_bucket = self._create_release_bucket()
        self._names = (f"deploy-{n}" for n in itertools.count(1))
        # The environment the operations stack gives the function; the world has its own topic and deployer.
        topic = _client("sns").create_topic(Name=f"{DEV.prefix}-notifications")["TopicArn"]
        self.notify = NotifyFunction.from_template(template.operations, REGION, topic, DEPLOYER_ARN=self.state_machine)
        assumed = {"ENDPOINT_NAME": self.endpoint, "MODEL_PACKAGE_GROUP": GROUP}
        assert {name: self.notify.environment[name] for name in assumed} == assumed, "the names the deployer tests use are not dev's"
        self._events = self._deliver_deployer_events()

    # -- the model registry ------------------------------------------------------------------

    def register(self, status: str = "Approved", group: str = GROUP) -> str:
        """A new model package version in `group`; returns its ARN."""
        if group != GROUP:
            try:
                self.sagemaker.create_model_package_group(ModelPackageGroupName=group)
            except self.sagemaker.exceptions.ClientError:
                pass
        return register_model(self.sagemaker, group, status)

    def other_deployer(self, stem: str) -> str:
        """The deployer of another model of the template, whose names start with `stem`, created beside this
        one with its group and its announcements bus; its ARN."""
        name = deployer_name(stem)
        self.sagemaker.create_model_package_group(ModelPackageGroupName=model_package_group_name(stem))
        _client("events").create_event_bus(Name=f"{name}-announcements")
        _, text = self._template.definition(name, self._refs(self._template))
        return sfn_harness.create_state_machine(self.sfn, text, name)

    # -- running the deployer ----------------------------------------------------------------

    def deploy(self, package_arn: str) -> sfn_harness.Execution:
        return sfn_harness.run(self.sfn, self.state_machine, {"ModelPackageArn": package_arn}, next(self._names))

    def roll_back_to(self, package_arn: str, **more: object) -> sfn_harness.Execution:
        """Start the deployer as `mlops deploy rollback --to VERSION` does, and wait for it to end."""
        return sfn_harness.run(self.sfn, self.state_machine, {"ModelPackageArn": package_arn, "Release": "rollback", **more}, next(self._names))

    def start(self, package_arn: str) -> str:
        return sfn_harness.start(self.sfn, self.state_machine, {"ModelPackageArn": package_arn}, next(self._names))

    def wait(self, execution_arn: str) -> sfn_harness.Execution:
        return sfn_harness.wait(self.sfn, execution_arn)

    def wait_for_state(self, execution_arn: str, state: str, timeout_s: float = 120) -> None:
        sfn_harness.until(
            lambda: state in sfn_harness.Execution(execution_arn, "", history=sfn_harness.history(self.sfn, execution_arn)).states_entered,
            f"{execution_arn} entering {state!r}",
            timeout_s,
        )

    def task_token(self, execution_arn: str, timeout_s: float = 120) -> str:
        """The token of the approval the execution waits for, read from its history as an approver reads it:
        the waiting state's TaskScheduled parameters, once that request has gone through (a state is entered a
        moment before its task is scheduled; `timeout_s` is a deadlock guard)."""

        def token_or_end() -> tuple[str | None] | None:
            submitted = False
            for event in reversed(sfn_harness.history(self.sfn, execution_arn)):
                if event["type"] in ("TaskFailed", "TaskSucceeded", "TaskTimedOut"):
                    break
                submitted = submitted or event["type"] == "TaskSubmitted"
                if event["type"] == "TaskScheduled" and '"TaskToken"' in event["taskScheduledEventDetails"]["parameters"]:
                    # Only a request that went through waits for an answer: one whose call failed (a throttled
                    # heartbeat) ends, and the state asks again with a new token.
                    if submitted:
                        return (json.loads(event["taskScheduledEventDetails"]["parameters"])["TaskToken"],)
                    break
            # An execution that ended (a fault before or in the wait) sends no request: no need to wait for one.
            return None if sfn_harness.running(self.sfn, execution_arn) else (None,)

        try:
            (found,) = sfn_harness.until(token_or_end, f"an approval request of {execution_arn}", timeout_s)
        except TimeoutError:
            raise LookupError("no approval request was sent") from None
        if found is None:
            raise LookupError("no approval request was sent: the execution ended")
        return found

    @property
    def approval_timeout_minutes(self) -> int:
        """How long the definition waits for an approver."""
        return self.definition["States"]["Wait for an approver"]["TimeoutSeconds"] // 60

    def announcements(self) -> list[dict]:
        """The detail of every event the deployer put on its bus so far, as EventBridge delivered them."""
        return [json.loads(body)["detail"] for body in self._announced]

    # -- what the tests look at --------------------------------------------------------------

    def set_alarm(self, name: str, state: str = "ALARM") -> None:
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")

    def quiet_alarms(self) -> None:
        """Every alarm of the endpoint OK: those in another state are set OK. Their states are read from moto's
        CloudWatch backend, where the world created them (`_create_alarms`): a DescribeAlarms of them all was
        the costliest request a scenario's preparation made."""
        alarms = cloudwatch_backends[DEFAULT_ACCOUNT_ID][REGION].alarms
        for name in self.alarms.values():
            if alarms[name].state_value != "OK":
                self.set_alarm(name, "OK")

    def serve(self, variant: str, invocations: int) -> None:
        """CloudWatch's Invocations metric for requests `variant` served just now."""
        self.cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {
                    "MetricName": "Invocations",
                    "Dimensions": [{"Name": "EndpointName", "Value": self.endpoint}, {"Name": "VariantName", "Value": variant}],
                    "Value": invocations,
                    "Unit": "None",
                }
            ],
        )

    def live_variants(self) -> dict[str, float]:
        endpoint = self.sagemaker.describe_endpoint(EndpointName=self.endpoint)
        return {v["VariantName"]: v["CurrentWeight"] for v in endpoint["ProductionVariants"]}

    def live_config(self) -> str:
        """The endpoint's config, without its attempt id."""
        return without_attempt(self.shim.endpoint_config_name(self.endpoint))

    def settle(self) -> None:
        """Read the endpoint until an operation started by hand has ended, as a poller would."""
        for _ in range(100):
            if self.sagemaker.describe_endpoint(EndpointName=self.endpoint)["EndpointStatus"] not in ("Creating", "Updating"):
                return
        raise AssertionError("the endpoint never settled")

    def instance_counts(self) -> dict[str, int]:
        endpoint = self.sagemaker.describe_endpoint(EndpointName=self.endpoint)
        return {v["VariantName"]: v["CurrentInstanceCount"] for v in endpoint["ProductionVariants"]}

    def live_models(self) -> dict[str, str]:
        """Which model each variant of the endpoint serves."""
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=self.shim.endpoint_config_name(self.endpoint))
        return {v["VariantName"]: v["ModelName"] for v in config["ProductionVariants"]}

    def config(self, name: str) -> dict:
        """The endpoint config whose name without its attempt id is `name` (the newest, if several)."""
        configs = self.sagemaker.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]
        (actual, *_) = [c["EndpointConfigName"] for c in configs if without_attempt(c["EndpointConfigName"]) == name]
        return self.sagemaker.describe_endpoint_config(EndpointConfigName=actual)

    def config_names(self) -> list[str]:
        """Every endpoint config, without attempt ids, sorted."""
        return sorted(without_attempt(c["EndpointConfigName"]) for c in self.sagemaker.list_endpoint_configs(MaxResults=100)["EndpointConfigs"])

    def data_capture(self) -> dict[str, dict]:
        """Every endpoint config (without attempt ids) and the DataCaptureConfig it was created with."""
        names = [c["EndpointConfigName"] for c in self.sagemaker.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]]
        return {
            without_attempt(name): self.sagemaker.describe_endpoint_config(EndpointConfigName=name).get("DataCaptureConfig", {})
            for name in names
        }

    def scaled_variants(self) -> dict[str, list[str]]:
        targets = self.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        policies = self.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        return {
            t["ResourceId"].rsplit("/", 1)[-1]: sorted(p["PolicyName"] for p in policies if p["ResourceId"] == t["ResourceId"])
            for t in targets
        }

    def messages(self) -> list[Received]:
        """What people were told, oldest first: the deployer's events so far, written up by the notify function."""
        while received := self.sqs.receive_message(QueueUrl=self._events, MaxNumberOfMessages=10).get("Messages"):
            for message in received:
                self._announced.append(message["Body"])
                self.notify(json.loads(message["Body"]))
            self.sqs.delete_message_batch(QueueUrl=self._events, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)])
        return self.notify.received()

    def notifications(self) -> list[str]:
        """Subjects of the messages people were told, oldest first."""
        return [message.subject for message in self.messages()]

    def remove_endpoint(self) -> None:
        """Back to no endpoint at all: the state before a first release."""
        if not self.sagemaker.list_endpoints(NameContains=self.endpoint)["Endpoints"]:
            return
        # An operation a failed deployment left running ends after enough reads, as it would on AWS.
        self.settle()
        self.sagemaker.delete_endpoint(EndpointName=self.endpoint)

    def ensure_released(self) -> None:
        """An endpoint InService on one variant (with autoscaling, on instances), as a completed release leaves it."""
        endpoints = self.sagemaker.list_endpoints(NameContains=self.endpoint)["Endpoints"]
        # A serverless variant has no autoscaling to find; an endpoint that is not there has none to read.
        if endpoints and self.shim.status(self.endpoint) == "InService" and len(self.live_variants()) == 1 and (self.serverless or self.scaled_variants()):
            return
        if endpoints:
            self.remove_endpoint()
        assert self.deploy(self.register()).status == "SUCCEEDED"

    @property
    def other_endpoint(self) -> str:
        """The endpoint of the serving mode this world's deployer does not serve in."""
        return ENDPOINT if self.serverless else SERVERLESS_ENDPOINT

    def other_mode_serving(self) -> None:
        """The other serving mode's endpoint InService on blue, as the environment left it before its
        config switched modes (the release that would have created it is not this deployer's)."""
        if self.sagemaker.list_endpoints(NameContains=self.other_endpoint)["Endpoints"]:
            return
        model = f"{MODEL if self.serverless else SERVERLESS_MODEL}-v1"
        if not self.sagemaker.list_models(NameContains=model)["Models"]:
            self.sagemaker.create_model(ModelName=model, ExecutionRoleArn="arn:aws:iam::123456789012:role/model", Containers=[{"Image": "image"}])
        capacity = {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1} if self.serverless else {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
        config = f"{self.other_endpoint}-v1-1a2b3c4d"
        if not self.sagemaker.list_endpoint_configs(NameContains=config)["EndpointConfigs"]:
            self.sagemaker.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{"VariantName": "blue", "ModelName": model, **capacity}])
        self.sagemaker.create_endpoint(EndpointName=self.other_endpoint, EndpointConfigName=config)
        for _ in range(100):
            if self.sagemaker.describe_endpoint(EndpointName=self.other_endpoint)["EndpointStatus"] != "Creating":
                return
        raise AssertionError(f"{self.other_endpoint} was never created")

    def other_mode_busy(self) -> None:
        """The other serving mode's endpoint in the middle of an update, which refuses its deletion (only
        reading it moves the update on, and the deployer never reads it)."""
        self.other_mode_serving()
        for _ in range(100):
            if self.sagemaker.describe_endpoint(EndpointName=self.other_endpoint)["EndpointStatus"] not in ("Creating", "Updating"):
                break
        self.sagemaker.update_endpoint(EndpointName=self.other_endpoint, EndpointConfigName=self.shim.endpoint_config_name(self.other_endpoint))

    def update_configs(self) -> list[str]:
        return [without_attempt(call.endpoint_config_name) for call in self.shim.accepted_update_calls]

    # -- set-up ------------------------------------------------------------------------------

    def release_record(self, version: int) -> dict | None:
        """The release record the deployer wrote for `version` of the group, or None."""
        try:
            body = self.s3.get_object(Bucket=self.release_bucket, Key=release_record_key(GROUP, version))["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        return json.loads(body)

    def leave_lock_to(self, execution_arn: str) -> None:
        """The endpoint's lock names `execution_arn`, as an execution that ended without releasing it (its own
        timeout, an abort) leaves it."""
        _client("dynamodb").put_item(TableName=self.lock_table(), Item={"Endpoint": {"S": self.endpoint}, "Execution": {"S": execution_arn}})

    def lock_table(self) -> str:
        """The table of this deployer's endpoint lock: each model's deployer has its own, the one its definition names."""
        tables = _client("dynamodb").list_tables()["TableNames"]
        (table,) = [name for name in tables if name in self._definition_text]
        return table

    def lose_release_bucket(self) -> None:
        """The release records' bucket is gone (or refuses the deployer): writing a record fails."""
        for listed in self.s3.list_objects_v2(Bucket=self.release_bucket).get("Contents", []):
            self.s3.delete_object(Bucket=self.release_bucket, Key=listed["Key"])
        self.s3.delete_bucket(Bucket=self.release_bucket)

    def _create_release_bucket(self) -> str:
        """The artifacts bucket the deployer writes its release records to, as the world names the storage
        stack's output (``from-<output>``)."""
        (bucket,) = {state["Parameters"]["Bucket"] for state in sfn_harness.task_states(self.definition).values() if state["Resource"].endswith(":s3:putObject")}
        self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        return bucket

    def _create_tables(self, template: dict) -> None:
        """The template's DynamoDB tables (the endpoint's lock), named by logical id as `_refs` names them,
        created in moto's DynamoDB backend with what its CreateTable handler would pass it for a table of these
        properties (on demand, no indexes, streams or tags), as `_create_alarms` creates the alarms: the world
        only needs them to exist, and the deployer's reads and writes of them go through the API."""
        dynamodb = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::DynamoDB::Table":
                properties = resource["Properties"]
                assert properties["BillingMode"] == "PAY_PER_REQUEST", "a provisioned table needs its throughput"
                dynamodb.create_table(
                    logical_id,
                    schema=properties["KeySchema"],
                    throughput=None,
                    attr=properties["AttributeDefinitions"],
                    global_indexes=[],
                    indexes=[],
                    streams=None,
                    billing_mode=properties["BillingMode"],
                    sse_specification=None,
                    tags=[],
                    deletion_protection_enabled=False,
                    warm_throughput=None,
                )

    def _create_alarms(self, template: dict) -> dict[str, str]:
        """The template's endpoint alarms, created in moto's CloudWatch backend with what its PutMetricAlarm
        handler would pass it for these properties: a dozen alarms through the API were a third of a world's
        set-up, and the world only needs them to exist."""
        cloudwatch = cloudwatch_backends[DEFAULT_ACCOUNT_ID][REGION]
        names = {}
        for resource in template["Resources"].values():
            # The endpoint's alarms, which the deployer watches; not the dead-letter queue's.
            if resource["Type"] != "AWS::CloudWatch::Alarm" or resource["Properties"].get("Namespace") != "AWS/SageMaker":
                continue
            alarm = resource["Properties"]
            cloudwatch.put_metric_alarm(
                name=alarm["AlarmName"],
                namespace=alarm["Namespace"],
                metric_name=alarm["MetricName"],
                dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in alarm["Dimensions"]],
                statistic=alarm["Statistic"],
                period=int(alarm["Period"]),
                evaluation_periods=int(alarm["EvaluationPeriods"]),
                threshold=float(alarm["Threshold"]),
                comparison_operator=alarm["ComparisonOperator"],
                treat_missing_data=alarm["TreatMissingData"],
                description=None,
                alarm_actions=[],
                ok_actions=[],
                insufficient_data_actions=[],
                actions_enabled=None,
                tags=[],
            )
            # By colour and suffix: the environment-named model's; other models' alarms exist, unnamed here.
            if alarm["AlarmName"].startswith(f"{self.endpoint}-"):
                names[alarm["AlarmName"].removeprefix(f"{self.endpoint}-")] = alarm["AlarmName"]
        return names

    def _deliver_deployer_events(self) -> str:
        """A queue that receives what the deployer puts on its bus, as the notify function's rule would; its URL.

        The queue, the bus, the rule and its target are created in moto's SQS and EventBridge backends with what
        their CreateQueue, CreateEventBus, PutRule and PutTargets handlers would pass them for these requests, as
        `_create_alarms` creates the alarms: the five requests were a fifth of a world's set-up, and the world
        only needs them to exist. What the deployer puts, and what the world receives, go through the API."""
        self.sqs = _client("sqs")
        self._announced: list[str] = []
        queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].create_queue("deployer-events", {})
        events = events_backends[DEFAULT_ACCOUNT_ID][REGION]
        events.create_event_bus(name=ANNOUNCEMENTS, event_source_name=None, description=None, kms_key_identifier=None, dead_letter_config=None, tags=None)
        pattern = json.dumps({"source": [STATE_MACHINE], "detail-type": [DEPLOYMENT_EVENT]})
        events.put_rule("deployer-events", scheduled_expression=None, event_pattern=pattern, state=None, description=None, role_arn=None, event_bus_arn=ANNOUNCEMENTS, tags=None)
        events.put_targets("deployer-events", ANNOUNCEMENTS, [{"Id": "queue", "Arn": queue.queue_arn}])
        return queue.url(urlparse(self.sqs.meta.endpoint_url))

    def _refs(self, template: DeployerTemplate) -> dict:
        topic = _client("sns").create_topic(Name=f"{DEV.prefix}-deployments")["TopicArn"]
        refs: dict = {}
        for logical_id, resource in template["Resources"].items():
            # What CloudFormation's Ref returns for each type the definition refers to.
            ref = {
                "AWS::SNS::Topic": topic,
                "AWS::CloudWatch::Alarm": resource.get("Properties", {}).get("AlarmName"),
                "AWS::Events::EventBus": resource.get("Properties", {}).get("Name"),
            }.get(resource["Type"], logical_id)
            arn = {
                "AWS::Events::EventBus": f"arn:aws:events:{REGION}:123456789012:event-bus/{ref}",
                "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:123456789012:table/{ref}",
            }.get(resource["Type"], f"arn:aws:iam::123456789012:role/{logical_id}")
            refs[logical_id] = {"Ref": ref, "Arn": arn}
        for output in template.imported_outputs:
            refs[output] = f"from-{output}"
        return refs


def _send_task_failure_with_cause(self: StepFunctionResponse) -> EmptyResult:
    """moto 5.2.5 drops SendTaskFailure's cause; AWS hands it to the state's Catch."""
    self.stepfunction_backend.send_task_failure(self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause"))
    return EmptyResult()


def _heartbeat_without_heartbeat_seconds(self: CallbackEndpoint) -> bool:
    """moto 5.2.5 refuses SendTaskHeartbeat (InvalidToken) for a waiting task without HeartbeatSeconds; AWS
    accepts a heartbeat for any task waiting for its token, and there is no heartbeat clock to reset."""
    if self._heartbeat_endpoint is not None:
        self._heartbeat_endpoint.notify()
    return True


@contextmanager
def deployer_world(template: DeployerTemplate) -> Iterator[DeployerWorld]:
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        endpoint_shim(REGION) as shim,
        mock.patch.object(StepFunctionResponse, "send_task_failure", _send_task_failure_with_cause),
        mock.patch.object(CallbackEndpoint, "notify_heartbeat", _heartbeat_without_heartbeat_seconds),
        sfn_harness.retry_waits() as waits,
        sfn_harness.state_waits() as state_waits,
        sfn_harness.string_matches_as_on_aws(),
        sfn_harness.parsed_once(),
        sfn_harness.uncatchable_as_on_aws(),
        sfn_harness.eventbridge_errors_named(),
        sfn_harness.dynamodb_errors_named(),
    ):
        yield DeployerWorld(template, shim, waits, state_waits)


@contextmanager
def released_world(template: DeployerTemplate) -> Iterator[DeployerWorld]:
    """A world in which version 1 is already serving on blue, with the update log cleared."""
    with deployer_world(template) as world:
        assert world.deploy(world.register()).status == "SUCCEEDED"
        world.shim.update_calls.clear()
        yield world
