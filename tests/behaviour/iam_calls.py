"""The AWS calls a state machine made in a behaviour test, as the IAM requests AWS would authorize.

moto runs every task state whatever role the state machine has, so a behaviour test alone cannot see a
permission that is missing, too wide or missing its condition. `sfn_harness.recorded_calls()` records each
call (service, operation, parameters as the state sent them); `requests()` turns it into what AWS
authorizes for it: the action, the resource ARN taken from the request, the request context, and what the
service does as the caller on the caller's behalf (passing the model's role, describing and granting the
key for encrypted volumes, Application Auto Scaling's calls to SageMaker and CloudWatch). The requests are
then decided by `tests/permissions.py` against the synthesized identity and resource policies.

The behaviour worlds run in moto's account with names of their own for what the template refers to
(roles as ``arn:aws:iam::<moto account>:role/<logical id>``, other stacks' outputs as ``from-<output>``);
`WorldNames` maps them to the physical names the policy evaluator gives the same resources.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.behaviour.sfn_harness import PSEUDO_PARAMETERS, Call
from tests.permissions import Decision, EnvironmentPolicies, Request

MOTO_ACCOUNT = PSEUDO_PARAMETERS["AWS::AccountId"]
AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"


class WorldNames:
    """What a behaviour world calls a template's resources, mapped to the evaluator's physical names."""

    def __init__(
        self,
        policies: EnvironmentPolicies,
        stack: str,
        world_region: str,
        named: dict[str, str] | None = None,
        bucket_keys: dict[str, str] | None = None,
    ) -> None:
        """`named` adds what the world names otherwise: its value -> the evaluator's name; `bucket_keys` gives
        the KMS key (evaluator's ARN) each bucket (evaluator's name) encrypts its objects with."""
        self.policies, self.stack, self.world_region = policies, stack, world_region
        self.bucket_keys = bucket_keys or {}
        template = policies.templates[stack]
        self._names: dict[str, str] = {
            f"arn:aws:iam::{MOTO_ACCOUNT}:role/{logical_id}": policies.arn(stack, logical_id)
            for logical_id, r in template["Resources"].items()
            if r["Type"] == "AWS::IAM::Role"
        }
        # Tables as the worlds name them (by logical id, see DeployerWorld._refs).
        for logical_id, r in template["Resources"].items():
            if r["Type"] == "AWS::DynamoDB::Table":
                self._names[logical_id] = policies.arn(stack, logical_id)
        for output in _output_names(template):
            self._names[f"from-{output}"] = policies.resolve(stack, {"Fn::GetStackOutput": {"OutputName": output}})
        self._names.update(named or {})

    def __call__(self, value: str) -> str:
        """The evaluator's name for `value`: a template's resource, or an ARN moved into the environment's account."""
        if value in self._names:
            return self._names[value]
        parts = value.split(":", 5)
        if len(parts) == 6 and parts[0] == "arn" and parts[4] == MOTO_ACCOUNT:
            region = self.policies.region if parts[3] == self.world_region else parts[3]
            return ":".join([*parts[:3], region, self.policies.account, parts[5]])
        return value

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.policies.region}:{self.policies.account}:{resource}"


def _output_names(template: dict) -> set[str]:
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "Fn::GetStackOutput" in value:
                found.add(value["Fn::GetStackOutput"]["OutputName"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(template)
    return found


def _param(parameters: dict, name: str) -> Any:
    """A request parameter by name, whatever its case (Step Functions passes PascalCase, boto3 may expect camelCase)."""
    for key, value in parameters.items():
        if key.lower() == name.lower():
            return value
    raise KeyError(f"the request has no {name}: {sorted(parameters)}")


def _variant_endpoint(resource_id: str) -> str:
    # endpoint/<name>/variant/<variant>
    return resource_id.split("/")[1]


Mapper = Callable[[Call, str, WorldNames], list[Request]]


def _sagemaker(resource_type: str, parameter: str, *also: tuple[str, str]) -> Mapper:
    """A SageMaker call authorized on the resource named by `parameter` (and on those `also` names)."""

    def requests(call: Call, caller: str, names: WorldNames) -> list[Request]:
        action = f"sagemaker:{_pascal(call.operation)}"
        found = [Request(caller, action, names.arn("sagemaker", f"{resource_type}/{_param(call.parameters, parameter).lower()}"))]
        found += [Request(caller, action, names.arn("sagemaker", f"{kind}/{_param(call.parameters, name).lower()}")) for kind, name in also]
        return found

    return requests


def _anything(prefix: str) -> Mapper:
    """A call IAM authorizes on no resource of its own (List actions, scalable targets)."""
    return lambda call, caller, names: [Request(caller, f"{prefix}:{_pascal(call.operation)}", "*")]


def _by_arn(prefix: str, parameter: str) -> Mapper:
    return lambda call, caller, names: [Request(caller, f"{prefix}:{_pascal(call.operation)}", names(_param(call.parameters, parameter)))]


def _create_model(call: Call, caller: str, names: WorldNames) -> list[Request]:
    role = names(_param(call.parameters, "ExecutionRoleArn"))
    return [
        *_sagemaker("model", "ModelName")(call, caller, names),
        Request(caller, "iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
    ]


def _create_endpoint_config(call: Call, caller: str, names: WorldNames) -> list[Request]:
    found = _sagemaker("endpoint-config", "EndpointConfigName")(call, caller, names)
    key = call.parameters.get("KmsKeyId")
    if key:
        # SageMaker describes the key and grants the endpoint's volumes use of it, as the caller.
        via = {"kms:ViaService": f"sagemaker.{names.policies.region}.amazonaws.com"}
        found += [
            Request(caller, "kms:DescribeKey", names(key), via),
            Request(caller, "kms:CreateGrant", names(key), {**via, "kms:GrantIsForAWSResource": "true"}),
        ]
    return found


def _create_processing_job(call: Call, caller: str, names: WorldNames) -> list[Request]:
    job = names.arn("sagemaker", f"processing-job/{_param(call.parameters, 'ProcessingJobName').lower()}")
    found = [
        Request(caller, "sagemaker:CreateProcessingJob", job),
        Request(caller, "iam:PassRole", names(_param(call.parameters, "RoleArn")), {"iam:PassedToService": "sagemaker.amazonaws.com"}),
    ]
    if call.parameters.get("Tags"):
        found.append(Request(caller, "sagemaker:AddTags", job))
    # `.sync`: Step Functions watches the job and sets up the managed rule that tells it the job ended.
    rule = names.arn("events", "rule/StepFunctionsGetEventsForSageMakerProcessingJobsRule")
    found += [Request(caller, "sagemaker:DescribeProcessingJob", job), *(Request(caller, f"events:{a}", rule) for a in ("PutTargets", "PutRule", "DescribeRule"))]
    return found


def _pipeline_write(call: Call, caller: str, names: WorldNames) -> list[Request]:
    """CreatePipeline and UpdatePipeline: the pipeline, passing its role to SageMaker, and tagging on create."""
    found = _sagemaker("pipeline", "PipelineName")(call, caller, names)
    pipeline = found[0].resource
    if call.parameters.get("RoleArn"):
        found.append(Request(caller, "iam:PassRole", names(call.parameters["RoleArn"]), {"iam:PassedToService": "sagemaker.amazonaws.com"}))
    if call.parameters.get("Tags"):
        found.append(Request(caller, "sagemaker:AddTags", pipeline, {"aws:TagKeys": [t["Key"] for t in call.parameters["Tags"]]}))
    return found


def _schedule(call: Call, caller: str, names: WorldNames) -> list[Request]:
    """A Scheduler call on the schedule <group>/<name>; writing one passes its target's role to Scheduler."""
    schedule = names.arn("scheduler", f"schedule/{_param(call.parameters, 'GroupName')}/{_param(call.parameters, 'Name')}")
    found = [Request(caller, f"scheduler:{_pascal(call.operation)}", schedule)]
    target = call.parameters.get("Target")
    if target:
        found.append(Request(caller, "iam:PassRole", names(target["RoleArn"]), {"iam:PassedToService": "scheduler.amazonaws.com"}))
    return found


def _s3_object(caller: str, action: str, names: WorldNames, bucket: str, key: str) -> Request:
    # S3 puts the account that owns the bucket in every request's context.
    arn = f"arn:aws:s3:::{bucket}/{key}"
    return Request(caller, action, arn, {"s3:ResourceAccount": names.policies.resource_account(arn)})


def _head_object(call: Call, caller: str, names: WorldNames) -> list[Request]:
    # HeadObject is authorized as s3:GetObject; it reads no data, so the object's key is not used.
    return [_s3_object(caller, "s3:GetObject", names, names(_param(call.parameters, "Bucket")), _param(call.parameters, "Key"))]


def _get_object(call: Call, caller: str, names: WorldNames) -> list[Request]:
    """Reading an object, decrypting it through S3 with its bucket's key where the bucket has one."""
    found = _head_object(call, caller, names)
    kms_key = names.bucket_keys.get(names(_param(call.parameters, "Bucket")))
    if kms_key:
        found.append(Request(caller, "kms:Decrypt", kms_key, {"kms:ViaService": f"s3.{names.policies.region}.amazonaws.com"}))
    return found


def _copy_object(call: Call, caller: str, names: WorldNames) -> list[Request]:
    """A server-side copy: reading the source object (decrypting it with its bucket's key, through S3) and
    writing the copy (encrypting it with the key the request names, through S3), all as the caller."""
    source = _param(call.parameters, "CopySource")
    source_bucket, source_key = (source["Bucket"], source["Key"]) if isinstance(source, dict) else source.split("/", 1)
    bucket, key = names(_param(call.parameters, "Bucket")), _param(call.parameters, "Key")
    via = {"kms:ViaService": f"s3.{names.policies.region}.amazonaws.com"}
    found = [_s3_object(caller, "s3:GetObject", names, names(source_bucket), source_key), _s3_object(caller, "s3:PutObject", names, bucket, key)]
    source_kms_key = names.bucket_keys.get(names(source_bucket))
    if source_kms_key:
        found.append(Request(caller, "kms:Decrypt", source_kms_key, via))
    if call.parameters.get("SSEKMSKeyId"):
        found.append(Request(caller, "kms:GenerateDataKey", names(call.parameters["SSEKMSKeyId"]), via))
    return found


def _put_object(call: Call, caller: str, names: WorldNames) -> list[Request]:
    """Writing an object: into a bucket whose default encryption is a KMS key, S3 asks that key for a data key
    as the caller."""
    bucket = names(_param(call.parameters, "Bucket"))
    found = [_s3_object(caller, "s3:PutObject", names, bucket, _param(call.parameters, "Key"))]
    kms_key = names(call.parameters["SSEKMSKeyId"]) if call.parameters.get("SSEKMSKeyId") else names.bucket_keys.get(bucket)
    if kms_key:
        found.append(Request(caller, "kms:GenerateDataKey", kms_key, {"kms:ViaService": f"s3.{names.policies.region}.amazonaws.com"}))
    return found


def bucket_keys(policies: EnvironmentPolicies, stack: str = "storage") -> dict[str, str]:
    """Each bucket of `stack` whose default encryption is a KMS key -> that key's ARN (the evaluator's names)."""
    found = {}
    for logical_id, resource in policies.templates[stack]["Resources"].items():
        if resource["Type"] != "AWS::S3::Bucket":
            continue
        for rule in resource["Properties"].get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
            key = rule.get("ServerSideEncryptionByDefault", {}).get("KMSMasterKeyID")
            if key:
                found[policies.resolve(stack, {"Ref": logical_id})] = policies.resolve(stack, key)
    return found


def _create_model_package(call: Call, caller: str, names: WorldNames) -> list[Request]:
    # The new version's number is SageMaker's to choose; IAM matches a group's versions by pattern.
    group = _param(call.parameters, "ModelPackageGroupName").lower()
    return [Request(caller, "sagemaker:CreateModelPackage", names.arn("sagemaker", f"model-package/{group}/1"))]


def _studio(resource_type: str, *parameters: str) -> Mapper:
    """A Studio call authorized on <resource type>/<domain id>/<the parameters' values, lowercased after the domain>."""

    def requests(call: Call, caller: str, names: WorldNames) -> list[Request]:
        domain = names(_param(call.parameters, "DomainId"))
        rest = [str(_param(call.parameters, name)) for name in parameters]
        return [Request(caller, f"sagemaker:{_pascal(call.operation)}", names.arn("sagemaker", "/".join([f"{resource_type}/{domain}", *rest])))]

    return requests


def _studio_app(call: Call, caller: str, names: WorldNames) -> list[Request]:
    owner = call.parameters.get("UserProfileName") or call.parameters.get("SpaceName")
    domain = names(_param(call.parameters, "DomainId"))
    app = f"app/{domain}/{owner}/{_param(call.parameters, 'AppType').lower()}/{_param(call.parameters, 'AppName')}"
    return [Request(caller, f"sagemaker:{_pascal(call.operation)}", names.arn("sagemaker", app))]


def _scaling_alarm(names: WorldNames, resource_id: str) -> str:
    # Application Auto Scaling names its target-tracking alarms TargetTracking-<resource id>-AlarmHigh-<uuid>.
    return names.arn("cloudwatch", f"alarm:TargetTracking-{resource_id}-AlarmHigh-0a1b2c3d")


def _register_scalable_target(call: Call, caller: str, names: WorldNames) -> list[Request]:
    resource_id = _param(call.parameters, "ResourceId")
    endpoint = names.arn("sagemaker", f"endpoint/{_variant_endpoint(resource_id)}")
    linked_role = f"arn:aws:iam::{names.policies.account}:role/aws-service-role/{AUTOSCALING_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    # Application Auto Scaling checks the variant and creates its service-linked role as the caller.
    return [
        *_anything("application-autoscaling")(call, caller, names),
        Request(caller, "sagemaker:DescribeEndpoint", endpoint),
        Request(caller, "sagemaker:UpdateEndpointWeightsAndCapacities", endpoint),
        Request(caller, "iam:CreateServiceLinkedRole", linked_role, {"iam:AWSServiceName": AUTOSCALING_SERVICE}),
    ]


def _put_scaling_policy(call: Call, caller: str, names: WorldNames) -> list[Request]:
    # A target-tracking policy's alarms are created as the caller.
    alarm = _scaling_alarm(names, _param(call.parameters, "ResourceId"))
    return [*_anything("application-autoscaling")(call, caller, names), Request(caller, "cloudwatch:PutMetricAlarm", alarm)]


def _deregister_scalable_target(call: Call, caller: str, names: WorldNames) -> list[Request]:
    # Deregistering deletes the target's policies and with them their alarms, as the caller.
    alarm = _scaling_alarm(names, _param(call.parameters, "ResourceId"))
    return [*_anything("application-autoscaling")(call, caller, names), Request(caller, "cloudwatch:DeleteAlarms", alarm)]


def _describe_alarms(call: Call, caller: str, names: WorldNames) -> list[Request]:
    alarms = call.parameters.get("AlarmNames") or []
    if not alarms:
        return [Request(caller, "cloudwatch:DescribeAlarms", names.arn("cloudwatch", "alarm:*"))]
    return [Request(caller, "cloudwatch:DescribeAlarms", names.arn("cloudwatch", f"alarm:{alarm}")) for alarm in alarms]


def _dynamodb_item(call: Call, caller: str, names: WorldNames) -> list[Request]:
    return [Request(caller, f"dynamodb:{_pascal(call.operation)}", names(_param(call.parameters, "TableName")))]


def _put_events(call: Call, caller: str, names: WorldNames) -> list[Request]:
    found = []
    for entry in _param(call.parameters, "Entries"):
        bus = entry.get("EventBusName", "default")
        arn = names(bus) if bus.startswith("arn:") else names.arn("events", f"event-bus/{bus}")
        found.append(Request(caller, "events:PutEvents", arn, {"events:source": entry["Source"], "events:detail-type": entry["DetailType"]}))
    return found


# (boto3 service, boto3 operation) -> the IAM requests AWS authorizes for the call. A call missing here
# fails the test that meets it: every call a state makes is decided, none is waved through.
MAPPERS: dict[tuple[str, str], Mapper] = {
    ("sagemaker", "describe_model_package"): _by_arn("sagemaker", "ModelPackageName"),
    ("sagemaker", "create_model"): _create_model,
    ("sagemaker", "describe_model"): _sagemaker("model", "ModelName"),
    ("sagemaker", "delete_model"): _sagemaker("model", "ModelName"),
    ("sagemaker", "list_models"): _anything("sagemaker"),
    ("sagemaker", "create_endpoint_config"): _create_endpoint_config,
    ("sagemaker", "describe_endpoint_config"): _sagemaker("endpoint-config", "EndpointConfigName"),
    ("sagemaker", "delete_endpoint_config"): _sagemaker("endpoint-config", "EndpointConfigName"),
    ("sagemaker", "list_endpoint_configs"): _anything("sagemaker"),
    ("sagemaker", "create_endpoint"): _sagemaker("endpoint", "EndpointName", ("endpoint-config", "EndpointConfigName")),
    ("sagemaker", "update_endpoint"): _sagemaker("endpoint", "EndpointName", ("endpoint-config", "EndpointConfigName")),
    ("sagemaker", "describe_endpoint"): _sagemaker("endpoint", "EndpointName"),
    ("sagemaker", "list_endpoints"): _anything("sagemaker"),
    ("sagemaker", "list_model_packages"): _anything("sagemaker"),
    ("sagemaker", "create_processing_job"): _create_processing_job,
    ("sagemaker", "describe_processing_job"): _sagemaker("processing-job", "ProcessingJobName"),
    ("sagemaker", "stop_processing_job"): _sagemaker("processing-job", "ProcessingJobName"),
    ("sagemaker", "list_processing_jobs"): _anything("sagemaker"),
    ("sagemaker", "describe_pipeline_execution"): _by_arn("sagemaker", "PipelineExecutionArn"),
    ("sagemaker", "list_pipeline_execution_steps"): _by_arn("sagemaker", "PipelineExecutionArn"),
    ("sagemaker", "list_pipeline_executions"): lambda call, caller, names: [
        Request(caller, "sagemaker:ListPipelineExecutions", names.arn("sagemaker", f"pipeline/{_param(call.parameters, 'PipelineName').lower()}"))
    ],
    ("sns", "publish"): _by_arn("sns", "TopicArn"),
    ("s3", "get_object"): _get_object,
    ("s3", "head_object"): _head_object,
    ("s3", "copy_object"): _copy_object,
    ("s3", "put_object"): _put_object,
    ("sagemaker", "create_model_package"): _create_model_package,
    ("sagemaker", "describe_domain"): _studio("domain"),
    ("sagemaker", "delete_domain"): _studio("domain"),
    ("sagemaker", "list_apps"): _anything("sagemaker"),
    ("sagemaker", "list_spaces"): _anything("sagemaker"),
    ("sagemaker", "list_user_profiles"): _anything("sagemaker"),
    ("sagemaker", "describe_app"): _studio_app,
    ("sagemaker", "delete_app"): _studio_app,
    ("sagemaker", "describe_space"): _studio("space", "SpaceName"),
    ("sagemaker", "delete_space"): _studio("space", "SpaceName"),
    ("sagemaker", "describe_user_profile"): _studio("user-profile", "UserProfileName"),
    ("sagemaker", "delete_user_profile"): _studio("user-profile", "UserProfileName"),
    ("cloudformation", "describe_stacks"): _by_arn("cloudformation", "StackName"),
    ("cloudformation", "describe_stack_resource"): _by_arn("cloudformation", "StackName"),
    ("cloudformation", "list_stack_resources"): _by_arn("cloudformation", "StackName"),
    ("sagemaker", "describe_pipeline"): _sagemaker("pipeline", "PipelineName"),
    ("sagemaker", "create_pipeline"): _pipeline_write,
    ("sagemaker", "update_pipeline"): _pipeline_write,
    ("sagemaker", "delete_pipeline"): _sagemaker("pipeline", "PipelineName"),
    ("scheduler", "get_schedule"): _schedule,
    ("scheduler", "create_schedule"): _schedule,
    ("scheduler", "update_schedule"): _schedule,
    ("sagemaker", "delete_endpoint"): _sagemaker("endpoint", "EndpointName"),
    ("sagemaker", "list_tags"): _by_arn("sagemaker", "ResourceArn"),
    ("sagemaker", "add_tags"): lambda call, caller, names: [
        Request(caller, "sagemaker:AddTags", names(_param(call.parameters, "ResourceArn")), {"aws:TagKeys": [t["Key"] for t in _param(call.parameters, "Tags")]})
    ],
    ("application-autoscaling", "describe_scalable_targets"): _anything("application-autoscaling"),
    ("stepfunctions", "stop_execution"): _by_arn("states", "executionArn"),
    ("stepfunctions", "list_executions"): _by_arn("states", "stateMachineArn"),
    ("stepfunctions", "describe_execution"): _by_arn("states", "executionArn"),
    # The task token is the secret; SendTask* authorize on no resource of their own.
    ("stepfunctions", "send_task_heartbeat"): _anything("states"),
    ("cloudwatch", "describe_alarms"): _describe_alarms,
    ("cloudwatch", "get_metric_data"): _anything("cloudwatch"),
    ("application-autoscaling", "register_scalable_target"): _register_scalable_target,
    ("application-autoscaling", "deregister_scalable_target"): _deregister_scalable_target,
    ("application-autoscaling", "put_scaling_policy"): _put_scaling_policy,
    ("events", "put_events"): _put_events,
    ("dynamodb", "put_item"): _dynamodb_item,
    ("dynamodb", "get_item"): _dynamodb_item,
    ("dynamodb", "delete_item"): _dynamodb_item,
}


def _pascal(operation: str) -> str:
    """`describe_model_package` or `describeModelPackage` -> `DescribeModelPackage`."""
    if "_" in operation:
        return "".join(part.capitalize() for part in operation.split("_"))
    return operation[:1].upper() + operation[1:]


def requests(call: Call, caller: str, names: WorldNames) -> list[Request]:
    """What AWS authorizes for `call` made by `caller` (a role ARN as the evaluator names it)."""
    mapper = MAPPERS.get((call.service, call.operation))
    if mapper is None:
        raise LookupError(f"{call.state!r} called {call.service}.{call.operation}, which tests/behaviour/iam_calls.py does not map to IAM requests yet")
    return mapper(call, caller, names)


def decide_each_once(policies: EnvironmentPolicies, requests_: list[Request]) -> list[Decision]:
    """`policies.decide(requests_)`, each distinct request decided once: a throttled attempt and its retry, or
    the same call made by several scenarios, are one request to the evaluator."""

    def key(request: Request) -> tuple[str, str, str, str]:
        return request.principal, request.action, request.resource, json.dumps(dict(request.context), sort_keys=True)

    distinct = {key(request): request for request in requests_}
    decided = dict(zip(distinct, policies.decide(list(distinct.values())), strict=True))
    return [decided[key(request)] for request in requests_]


def state_machine_role(policies: EnvironmentPolicies, stack: str, name: str) -> str:
    """The ARN of the role the state machine named `name` in `stack` runs as."""
    (machine,) = [
        r for r in policies.templates[stack]["Resources"].values()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and r["Properties"].get("StateMachineName") == name
    ]
    return policies.resolve(stack, machine["Properties"]["RoleArn"])
