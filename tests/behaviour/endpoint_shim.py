"""SageMaker endpoint life cycle, Application Auto Scaling and Step Functions fixes for moto 5.2.5.

`endpoint_shim()` patches moto's `SageMakerModelBackend`/`SageMakerResponse`, its
`ApplicationAutoscalingBackend`, its `StepFunctionBackend` and its Step Functions interpreter, so
plain boto3 calls inside `mock_aws()`, and `aws-sdk:*` tasks of state machines that moto executes,
take moto's normal request path and get real `ClientError`s (or Step Functions task failures). The
patch is undone on exit. Each change was checked against moto 5.2.5 without the shim:

SageMaker endpoints
- UpdateEndpoint exists (moto: NotImplementedError). Refused with ValidationException while the
  endpoint is not InService ("Cannot update in-progress endpoint ..." while Creating/Updating,
  "Cannot update failed endpoint ..." when Failed, also refused in UpdateRollbackFailed), for an
  unknown endpoint ("Could not find endpoint ...") or configuration ("Could not find endpoint
  configuration ..."), and, as SageMaker documents, when a variant registered with Application Auto
  Scaling would be removed or change instance type. Otherwise the endpoint is `Updating` for
  `reads_while_updating` DescribeEndpoint reads (EndpointConfigName and ProductionVariants still the
  old ones, PendingDeploymentSummary naming the new config), then ends as scripted with
  `EndpointShim.next_update()` (default "succeed"). RetainAllVariantProperties and
  ExcludeRetainedVariantProperties are honoured for variants that keep their name.
- CreateEndpoint: `Creating` for `reads_while_creating` DescribeEndpoint reads (no
  ProductionVariants yet, PendingDeploymentSummary instead), then InService, or Failed with a
  FailureReason if scripted with `EndpointShim.next_create("fail")` (moto: InService at once).
- ProductionVariants are computed from the endpoint config like SageMaker does: a variant without
  InitialVariantWeight weighs 1.0 and a weight of 0.0 is kept (moto drops both).
- UpdateEndpointWeightsAndCapacities is refused unless InService, changes only the fields given
  (moto sets the other one to null) and goes through `Updating` like UpdateEndpoint (Desired* first,
  Current* when done); it always succeeds.
- DeleteEndpoint is refused while Creating/Updating ("Cannot update in-progress endpoint ...") and
  deregisters the endpoint's scalable targets, as SageMaker does. With `reads_while_deleting` above 0
  the endpoint is `Deleting` for that many DescribeEndpoint reads before it is gone, or, if scripted
  with `EndpointShim.next_delete("fail")`, ends `Failed` with a FailureReason (moto: gone at once).
- Serverless, as SageMaker documents it: an endpoint config with a ServerlessConfig variant takes no
  other variant, no DataCaptureConfig, no instance settings on that variant and no model with a
  VpcConfig (ValidationException; moto accepts all of it); UpdateEndpoint between an instance-based
  and a serverless config is refused. Where SageMaker checks the model's VpcConfig (config, endpoint
  or update) is not documented; the shim refuses at CreateEndpointConfig.
- CreateModel, CreateEndpointConfig and CreateEndpoint of an existing name fail with
  ValidationException "Cannot create already existing model|endpoint configuration|endpoint ..."
  (moto silently replaces the resource).
- ListModels honours NameContains, SortBy, SortOrder (default CreationTime, Descending), MaxResults
  and NextToken (moto ignores all of them and lists oldest first); ListEndpointConfigs and
  ListEndpoints default to Descending like SageMaker (moto: ascending).
Application Auto Scaling
- DeregisterScalableTarget of an unknown target and DeleteScalingPolicy of an unknown policy answer
  ObjectNotFoundException (moto: ValidationException); PutScalingPolicy needs a registered target
  (ObjectNotFoundException; moto accepts it); deregistering deletes the target's scaling policies
  and scheduled actions (moto keeps them).
Step Functions (executions interpreted by moto)
- `aws-sdk:applicationautoscaling:*` reaches boto3's `application-autoscaling` (moto: unknown
  service, States.Runtime).
- `aws-sdk:sfn:*` takes PascalCase parameters and answers PascalCase keys, as AWS documents (moto
  passes `StateMachineArn` through to boto3 unchanged, which fails with States.Runtime).
- SDK task errors are named `<ServiceName>.<ErrorName>` with the service name in PascalCase, as AWS
  documents (moto: `sagemaker.sagemakerException`); an error that the service's API model does not
  declare (SageMaker's ValidationException) keeps moto's generic name, e.g.
  `SageMaker.SageMakerException`.
- ListExecutions lists running executions by start date and the others by stop date, most recent
  first, as AWS documents (moto sorts everything by start date).

Known simplifications: UpdateEndpoint's DeploymentConfig (SageMaker-managed canaries, alarms) is
recorded but not acted on; by default DeleteEndpoint removes the endpoint at once; a scripted
"rollback_failed" keeps the old EndpointConfigName; UpdateEndpoint is refused in
UpdateRollbackFailed (whether SageMaker accepts it there is not known); only DescribeEndpoint reads
advance an operation (ListEndpoints shows the stored status); messages are in SageMaker's style but
only the "Could not find ...", "Cannot update in-progress endpoint", "Cannot update failed
endpoint" and "Cannot create already existing ..." prefixes are known to match AWS verbatim, and
default FailureReasons are made up. `EndpointShim.update_calls` lists refused calls too
(`UpdateCall.error` set), so tests and benchmarks can count every attempt.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator, NamedTuple
from unittest import mock

import botocore.session
from moto.applicationautoscaling.models import (
    ApplicationAutoscalingBackend,
    applicationautoscaling_backends,
)
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import AWSValidationException, ValidationError
from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemaker.utils import arn_formatter
from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service as _task_service,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as _aws_sdk_task_service,
)
from moto.stepfunctions.utils import PAGINATION_MODEL as _SFN_PAGINATION_MODEL
from moto.utilities.paginator import paginate

StateTaskServiceAwsSdk = _aws_sdk_task_service.StateTaskServiceAwsSdk

UPDATE_OUTCOMES = ("succeed", "fail", "silent_rollback", "rollback_failed")
CREATE_OUTCOMES = ("succeed", "fail")
DELETE_OUTCOMES = ("succeed", "fail")
SAGEMAKER_VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"

_IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
_DEFAULT_REASONS = {
    "create:fail": "The primary container for production variant {variants} did not pass the ping "
    "health check. Please check CloudWatch logs for this endpoint.",
    "update:fail": "The primary container for production variant {variants} did not pass the ping "
    "health check. Please check CloudWatch logs for this endpoint.",
    "update:silent_rollback": "The primary container for production variant {variants} did not "
    "pass the ping health check. The endpoint was rolled back to its previous endpoint "
    "configuration.",
    "update:rollback_failed": "The update failed and the rollback to the previous endpoint "
    "configuration failed as well.",
    "delete:fail": "Failed to delete the endpoint's resources.",
}

# Step Functions names SDK errors "<ServiceName>.<ErrorName>", service names in PascalCase.
_SFN_SERVICE_ERROR_NAMES = {
    "sagemaker": "SageMaker",
    "applicationautoscaling": "ApplicationAutoScaling",
    "cloudwatch": "CloudWatch",
    "s3": "S3",
}
# aws-sdk services whose boto3 API is camelCase, so Step Functions renames parameters and results.
_CAMEL_CASED_SERVICES = ("stepfunctions",)

_lock = threading.RLock()
_active: EndpointShim | None = None


class UpdateCall(NamedTuple):
    """One UpdateEndpoint request, in arrival order. `error` is the refusal message, if refused."""

    endpoint_name: str
    endpoint_config_name: str
    error: str | None = None
    retain_all_variant_properties: bool = False
    deployment_config: dict[str, Any] | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


class WeightsCall(NamedTuple):
    """One UpdateEndpointWeightsAndCapacities request. `error`: the refusal message, if refused."""

    endpoint_name: str
    desired_weights_and_capacities: list[dict[str, Any]]
    error: str | None = None


@dataclass
class _Operation:
    kind: str  # "create" | "update" | "weights" | "delete"
    reads_needed: int
    outcome: str = "succeed"
    reason: str | None = None
    target_config: str | None = None
    target_specs: list[dict[str, Any]] = field(default_factory=list)
    target_variants: list[dict[str, Any]] = field(default_factory=list)
    started: datetime = field(default_factory=utcnow)
    reads: int = 0


class EndpointShim:
    """Test-side controller. Reading it does not count as a DescribeEndpoint read."""

    def __init__(
        self,
        region: str,
        account_id: str,
        reads_while_creating: int,
        reads_while_updating: int,
        reads_while_deleting: int,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.reads_while_creating = reads_while_creating
        self.reads_while_updating = reads_while_updating
        self.reads_while_deleting = reads_while_deleting
        self.update_calls: list[UpdateCall] = []
        self.weights_calls: list[WeightsCall] = []
        self._update_script: list[tuple[str | None, str, str | None]] = []
        self._create_script: list[tuple[str | None, str, str | None]] = []
        self._delete_script: list[tuple[str | None, str, str | None]] = []

    # -- scripting -------------------------------------------------------------------------------

    def next_update(
        self, outcome: str, *, endpoint_name: str | None = None, reason: str | None = None
    ) -> None:
        """How the next accepted UpdateEndpoint (of `endpoint_name`, or of any endpoint) ends:
        "succeed", "fail", "silent_rollback" or "rollback_failed". Calls queue up in order."""
        if outcome not in UPDATE_OUTCOMES:
            raise ValueError(f"update outcome must be one of {UPDATE_OUTCOMES}, not {outcome!r}")
        with _lock:
            self._update_script.append((endpoint_name, outcome, reason))

    def next_create(
        self, outcome: str, *, endpoint_name: str | None = None, reason: str | None = None
    ) -> None:
        """How the next CreateEndpoint (of `endpoint_name`, or of any endpoint) ends."""
        if outcome not in CREATE_OUTCOMES:
            raise ValueError(f"create outcome must be one of {CREATE_OUTCOMES}, not {outcome!r}")
        with _lock:
            self._create_script.append((endpoint_name, outcome, reason))

    def forget_scripts(self) -> None:
        """Drop scripted outcomes no call has used yet: later creates and updates succeed."""
        with _lock:
            self._update_script.clear()
            self._create_script.clear()
            self._delete_script.clear()

    def next_delete(
        self, outcome: str, *, endpoint_name: str | None = None, reason: str | None = None
    ) -> None:
        """How the next DeleteEndpoint (of `endpoint_name`, or of any endpoint) ends."""
        if outcome not in DELETE_OUTCOMES:
            raise ValueError(f"delete outcome must be one of {DELETE_OUTCOMES}, not {outcome!r}")
        with _lock:
            self._delete_script.append((endpoint_name, outcome, reason))

    # -- inspection ------------------------------------------------------------------------------

    @property
    def accepted_update_calls(self) -> list[UpdateCall]:
        return [c for c in self.update_calls if c.accepted]

    def status(self, endpoint_name: str) -> str:
        """The endpoint's EndpointStatus as stored now (no read is counted, nothing settles)."""
        return self._endpoint(endpoint_name).endpoint_status

    def endpoint_config_name(self, endpoint_name: str) -> str:
        return self._endpoint(endpoint_name).endpoint_config_name

    def _endpoint(self, endpoint_name: str) -> FakeEndpoint:
        return sagemaker_backends[self.account_id][self.region].endpoints[endpoint_name]

    def _take(
        self, script: list[tuple[str | None, str, str | None]], endpoint_name: str
    ) -> tuple[str, str | None]:
        for i, (name, outcome, reason) in enumerate(script):
            if name in (None, endpoint_name):
                del script[i]
                return outcome, reason
        return "succeed", None


def _controller() -> EndpointShim:
    if _active is None:  # pragma: no cover - patches only exist while a shim is active
        raise RuntimeError("endpoint_shim is not active")
    return _active


# ---------------------------------------------------------------------------------------------
# SageMaker backend: endpoint life cycle.
# ---------------------------------------------------------------------------------------------

_original_create_model = SageMakerModelBackend.create_model
_original_create_endpoint_config = SageMakerModelBackend.create_endpoint_config
_original_create_endpoint = SageMakerModelBackend.create_endpoint
_original_delete_endpoint = SageMakerModelBackend.delete_endpoint
_original_list_endpoint_configs = SageMakerModelBackend.list_endpoint_configs
_original_list_endpoints = SageMakerModelBackend.list_endpoints


def _variants_from_specs(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DescribeEndpoint's ProductionVariants for a freshly deployed endpoint config."""
    variants = []
    for spec in specs:
        variant: dict[str, Any] = {"VariantName": spec["VariantName"]}
        weight = float(spec.get("InitialVariantWeight", 1.0))
        variant["CurrentWeight"] = variant["DesiredWeight"] = weight
        if spec.get("InitialInstanceCount") is not None:
            count = int(spec["InitialInstanceCount"])
            variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"] = count
        if spec.get("ServerlessConfig"):
            variant["CurrentServerlessConfig"] = copy.deepcopy(spec["ServerlessConfig"])
            variant["DesiredServerlessConfig"] = copy.deepcopy(spec["ServerlessConfig"])
        variants.append(variant)
    return variants


def _retain(
    old: list[dict[str, Any]], new: list[dict[str, Any]], excluded: set[str]
) -> list[dict[str, Any]]:
    """RetainAllVariantProperties: same-named variants keep their weight and instance count."""
    by_name = {v["VariantName"]: v for v in old}
    for variant in new:
        before = by_name.get(variant["VariantName"])
        if before is None:
            continue
        if "DesiredWeight" not in excluded and "DesiredWeight" in before:
            variant["CurrentWeight"] = variant["DesiredWeight"] = before["DesiredWeight"]
        if "DesiredInstanceCount" not in excluded and "DesiredInstanceCount" in before:
            variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"] = before[
                "DesiredInstanceCount"
            ]
    return new


def _endpoint_arn(backend: SageMakerModelBackend, name: str) -> str:
    return FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name)


def _existing_endpoint(backend: SageMakerModelBackend, name: str) -> FakeEndpoint:
    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        raise ValidationError(message=f"Could not find endpoint '{_endpoint_arn(backend, name)}'.")
    return endpoint


def _config_specs(backend: SageMakerModelBackend, config_name: str) -> list[dict[str, Any]]:
    # moto's own error: ValidationException "Could not find endpoint configuration '<arn>'."
    return copy.deepcopy(backend.describe_endpoint_config(config_name)["ProductionVariants"])


def _settle(endpoint: FakeEndpoint, *, read: bool) -> None:
    """Advance an in-progress operation: a DescribeEndpoint read counts, then it finishes."""
    op: _Operation | None = endpoint.__dict__.get("_shim_op")
    if op is None:
        return
    if op.reads < op.reads_needed:
        if read:
            op.reads += 1
        return
    endpoint.__dict__["_shim_op"] = None
    endpoint.last_modified_time = utcnow()
    if op.kind == "weights":
        for variant in endpoint.production_variants:
            if "DesiredWeight" in variant:
                variant["CurrentWeight"] = variant["DesiredWeight"]
            if "DesiredInstanceCount" in variant:
                variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"]
        endpoint.endpoint_status = "InService"
        return
    failed_variants = [s["VariantName"] for s in op.target_specs]
    reason = op.reason or _DEFAULT_REASONS.get(f"{op.kind}:{op.outcome}", "").format(
        variants=", ".join(failed_variants)
    )
    if op.kind == "delete":
        if op.outcome == "succeed":
            _remove(endpoint)
        else:
            endpoint.endpoint_status, endpoint.failure_reason = "Failed", reason
        return
    if op.kind == "create":
        if op.outcome == "succeed":
            endpoint.endpoint_status, endpoint.failure_reason = "InService", None
            endpoint.__dict__["_shim_served"] = True
        else:
            endpoint.endpoint_status, endpoint.failure_reason = "Failed", reason
        return
    # update
    if op.outcome == "succeed":
        endpoint.endpoint_status, endpoint.failure_reason = "InService", None
        endpoint.endpoint_config_name = op.target_config
        endpoint.production_variants = op.target_variants
        endpoint.__dict__["_shim_specs"] = op.target_specs
    elif op.outcome == "fail":
        endpoint.endpoint_status, endpoint.failure_reason = "Failed", reason
    elif op.outcome == "silent_rollback":
        endpoint.endpoint_status, endpoint.failure_reason = "InService", reason
    else:
        endpoint.endpoint_status, endpoint.failure_reason = "UpdateRollbackFailed", reason


def _start(endpoint: FakeEndpoint, op: _Operation, status: str) -> None:
    endpoint.__dict__["_shim_op"] = op
    endpoint.endpoint_status = status
    endpoint.last_modified_time = utcnow()
    _settle(endpoint, read=False)  # with zero reads to wait, the operation is over at once


def _refuse_unless_in_service(backend: SageMakerModelBackend, endpoint: FakeEndpoint) -> None:
    _settle(endpoint, read=False)
    arn = _endpoint_arn(backend, endpoint.endpoint_name)
    status = endpoint.endpoint_status
    if status == "InService":
        return
    if status in _IN_PROGRESS:
        raise ValidationError(message=f'Cannot update in-progress endpoint "{arn}".')
    if status == "Failed":
        raise ValidationError(message=f'Cannot update failed endpoint "{arn}".')
    raise ValidationError(message=f'Cannot update endpoint "{arn}" in status {status}.')


def _describe(endpoint: FakeEndpoint) -> dict[str, Any]:
    response: dict[str, Any] = {
        "EndpointName": endpoint.endpoint_name,
        "EndpointArn": endpoint.arn,
        "EndpointConfigName": endpoint.endpoint_config_name,
        "EndpointStatus": endpoint.endpoint_status,
        "CreationTime": endpoint.creation_time,
        "LastModifiedTime": endpoint.last_modified_time,
    }
    # Endpoints created before the shim was active have been serving all along.
    if endpoint.__dict__.get("_shim_served", True):
        response["ProductionVariants"] = copy.deepcopy(endpoint.production_variants)
    if endpoint.data_capture_config:
        response["DataCaptureConfig"] = endpoint.data_capture_config
    if endpoint.failure_reason:
        response["FailureReason"] = endpoint.failure_reason
    op: _Operation | None = endpoint.__dict__.get("_shim_op")
    if op is not None and op.kind in ("create", "update"):
        pending = []
        for spec, variant in zip(op.target_specs, op.target_variants):
            summary = {"VariantName": spec["VariantName"]}
            for key in ("DesiredWeight", "DesiredInstanceCount", "DesiredServerlessConfig"):
                if key in variant:
                    summary[key] = variant[key]
            if spec.get("InstanceType"):
                summary["InstanceType"] = spec["InstanceType"]
            pending.append(summary)
        response["PendingDeploymentSummary"] = {
            "EndpointConfigName": op.target_config,
            "ProductionVariants": pending,
            "StartTime": op.started,
        }
    return response


def create_model(self: SageMakerModelBackend, model_name: str, **kwargs: Any) -> Any:
    if model_name in self._models:
        arn = arn_formatter("model", model_name, self.account_id, self.region_name)
        raise ValidationError(message=f'Cannot create already existing model "{arn}".')
    return _original_create_model(self, model_name=model_name, **kwargs)


def _refuse_what_serverless_variants_do_not_support(
    self: SageMakerModelBackend, variants: list[dict[str, Any]], data_capture: dict[str, Any] | None
) -> None:
    serverless = [v for v in variants if v.get("ServerlessConfig")]
    if not serverless:
        return
    if len(variants) > 1:
        raise ValidationError(message="An endpoint configuration with a serverless variant supports exactly one production variant.")
    if data_capture:
        raise ValidationError(message="DataCaptureConfig is not supported for serverless endpoints.")
    (variant,) = serverless
    if variant.get("InstanceType") or variant.get("InitialInstanceCount") is not None:
        raise ValidationError(message="A production variant takes either ServerlessConfig or InstanceType and InitialInstanceCount, not both.")
    model = self._models.get(variant.get("ModelName", ""))
    if model is not None and model.vpc_config:
        raise ValidationError(message=f"Model {model.model_name} has a VpcConfig, which serverless endpoints do not support.")


def create_endpoint_config(
    self: SageMakerModelBackend, endpoint_config_name: str, **kwargs: Any
) -> Any:
    if endpoint_config_name in self.endpoint_configs:
        arn = arn_formatter(
            "endpoint-config", endpoint_config_name, self.account_id, self.region_name
        )
        raise ValidationError(
            message=f'Cannot create already existing endpoint configuration "{arn}".'
        )
    _refuse_what_serverless_variants_do_not_support(self, kwargs.get("production_variants") or [], kwargs.get("data_capture_config"))
    return _original_create_endpoint_config(
        self, endpoint_config_name=endpoint_config_name, **kwargs
    )


def create_endpoint(
    self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str, tags: Any
) -> FakeEndpoint:
    with _lock:
        if endpoint_name in self.endpoints:
            arn = _endpoint_arn(self, endpoint_name)
            raise ValidationError(message=f'Cannot create already existing endpoint "{arn}".')
        specs = _config_specs(self, endpoint_config_name)
        endpoint = _original_create_endpoint(self, endpoint_name, endpoint_config_name, tags)
        ctl = _controller()
        outcome, reason = ctl._take(ctl._create_script, endpoint_name)
        endpoint.production_variants = _variants_from_specs(specs)
        endpoint.__dict__["_shim_specs"] = specs
        endpoint.__dict__["_shim_served"] = False
        op = _Operation(
            kind="create",
            reads_needed=ctl.reads_while_creating,
            outcome=outcome,
            reason=reason,
            target_config=endpoint_config_name,
            target_specs=specs,
            target_variants=copy.deepcopy(endpoint.production_variants),
        )
        _start(endpoint, op, "Creating")
        return endpoint


def describe_endpoint(self: SageMakerModelBackend, endpoint_name: str) -> dict[str, Any]:
    with _lock:
        endpoint = _existing_endpoint(self, endpoint_name)
        _settle(endpoint, read=True)
        # A delete that ended with this read leaves nothing to describe.
        return _describe(_existing_endpoint(self, endpoint_name))


def delete_endpoint(self: SageMakerModelBackend, endpoint_name: str) -> None:
    with _lock:
        endpoint = _existing_endpoint(self, endpoint_name)
        _settle(endpoint, read=False)
        if endpoint.endpoint_status in _IN_PROGRESS:
            arn = _endpoint_arn(self, endpoint_name)
            raise ValidationError(message=f'Cannot update in-progress endpoint "{arn}".')
        ctl = _controller()
        outcome, reason = ctl._take(ctl._delete_script, endpoint_name)
        op = _Operation(
            kind="delete", reads_needed=ctl.reads_while_deleting, outcome=outcome, reason=reason
        )
        _start(endpoint, op, "Deleting")


def _remove(endpoint: FakeEndpoint) -> None:
    ctl = _controller()
    backend = sagemaker_backends[ctl.account_id][ctl.region]
    _original_delete_endpoint(backend, endpoint.endpoint_name)
    scaling = applicationautoscaling_backends[ctl.account_id][ctl.region]
    for target in _sagemaker_targets(scaling, endpoint.endpoint_name):
        scaling.deregister_scalable_target(
            target.service_namespace, target.resource_id, target.scalable_dimension
        )


def _sagemaker_targets(scaling: ApplicationAutoscalingBackend, endpoint_name: str) -> list[Any]:
    prefix = f"endpoint/{endpoint_name}/variant/"
    return [
        t
        for t in scaling._flatten_scalable_targets("sagemaker")
        if t.resource_id.startswith(prefix)
    ]


def _refuse_if_autoscaled_variants_change(
    self: SageMakerModelBackend,
    endpoint: FakeEndpoint,
    new_specs: list[dict[str, Any]],
) -> None:
    scaling = applicationautoscaling_backends[self.account_id][self.region_name]
    old_types = {
        s["VariantName"]: s.get("InstanceType") for s in endpoint.__dict__.get("_shim_specs", [])
    }
    new_types = {s["VariantName"]: s.get("InstanceType") for s in new_specs}
    blocked = []
    for target in _sagemaker_targets(scaling, endpoint.endpoint_name):
        variant = target.resource_id.split("/variant/", 1)[1]
        if variant not in new_types or new_types[variant] != old_types.get(variant):
            blocked.append(variant)
    if blocked:
        raise ValidationError(
            message=(
                f"The variant(s) \"[{', '.join(sorted(blocked))}]\" of endpoint "
                f'"{endpoint.arn}" are registered as scalable targets with Application Auto '
                "Scaling, and this update would remove them or change their instance type. "
                "Deregister the scalable targets before updating the endpoint."
            )
        )


def _refuse_a_change_of_serving_mode(endpoint: FakeEndpoint, new_specs: list[dict[str, Any]]) -> None:
    was_serverless = any(spec.get("ServerlessConfig") for spec in endpoint.__dict__.get("_shim_specs", []))
    is_serverless = any(spec.get("ServerlessConfig") for spec in new_specs)
    if was_serverless != is_serverless:
        raise ValidationError(
            message=f"Updating an endpoint between instance-based and serverless variants is not supported (endpoint {endpoint.arn})."
        )


def update_endpoint(
    self: SageMakerModelBackend,
    endpoint_name: str,
    endpoint_config_name: str,
    retain_all_variant_properties: bool | None = None,
    exclude_retained_variant_properties: list[dict[str, str]] | None = None,
    deployment_config: dict[str, Any] | None = None,
) -> str:
    ctl = _controller()
    call = UpdateCall(
        endpoint_name,
        endpoint_config_name,
        retain_all_variant_properties=bool(retain_all_variant_properties),
        deployment_config=deployment_config,
    )
    with _lock:
        try:
            endpoint = _existing_endpoint(self, endpoint_name)
            _refuse_unless_in_service(self, endpoint)
            specs = _config_specs(self, endpoint_config_name)
            _refuse_if_autoscaled_variants_change(self, endpoint, specs)
            _refuse_a_change_of_serving_mode(endpoint, specs)
        except (ValidationError, AWSValidationException) as err:
            ctl.update_calls.append(call._replace(error=err.message))
            raise
        ctl.update_calls.append(call)
        variants = _variants_from_specs(specs)
        if retain_all_variant_properties:
            excluded = {p["VariantPropertyType"] for p in exclude_retained_variant_properties or []}
            variants = _retain(endpoint.production_variants, variants, excluded)
        outcome, reason = ctl._take(ctl._update_script, endpoint_name)
        op = _Operation(
            kind="update",
            reads_needed=ctl.reads_while_updating,
            outcome=outcome,
            reason=reason,
            target_config=endpoint_config_name,
            target_specs=specs,
            target_variants=variants,
        )
        _start(endpoint, op, "Updating")
        return endpoint.arn


def update_endpoint_weights_and_capacities(
    self: SageMakerModelBackend,
    endpoint_name: str,
    desired_weights_and_capacities: list[dict[str, Any]],
) -> str:
    ctl = _controller()
    call = WeightsCall(endpoint_name, copy.deepcopy(desired_weights_and_capacities))
    with _lock:
        try:
            endpoint = self.endpoints.get(endpoint_name)
            if endpoint is None:
                arn = _endpoint_arn(self, endpoint_name)
                raise AWSValidationException(f'Could not find endpoint "{arn}".')
            _refuse_unless_in_service(self, endpoint)
            by_name = {v["VariantName"]: v for v in endpoint.production_variants}
            seen: set[str] = set()
            for desired in desired_weights_and_capacities:
                name = desired.get("VariantName")
                if name in seen:
                    raise AWSValidationException(
                        f'The variant name "{name}" was non-unique within the request.'
                    )
                if name not in by_name:
                    raise AWSValidationException(
                        f'The variant name(s) "{name}" is/are not present within endpoint '
                        f'configuration "{endpoint.endpoint_config_name}".'
                    )
                seen.add(name)
        except (ValidationError, AWSValidationException) as err:
            ctl.weights_calls.append(call._replace(error=err.message))
            raise
        ctl.weights_calls.append(call)
        for desired in desired_weights_and_capacities:
            variant = by_name[desired["VariantName"]]
            if desired.get("DesiredWeight") is not None:
                variant["DesiredWeight"] = float(desired["DesiredWeight"])
            if desired.get("DesiredInstanceCount") is not None:
                variant["DesiredInstanceCount"] = int(desired["DesiredInstanceCount"])
        op = _Operation(kind="weights", reads_needed=ctl.reads_while_updating)
        _start(endpoint, op, "Updating")
        return endpoint.arn


def list_endpoint_configs(self: SageMakerModelBackend, **kwargs: Any) -> Any:
    kwargs["sort_order"] = kwargs.get("sort_order") or "Descending"
    return _original_list_endpoint_configs(self, **kwargs)


def list_endpoints(self: SageMakerModelBackend, **kwargs: Any) -> Any:
    kwargs["sort_order"] = kwargs.get("sort_order") or "Descending"
    return _original_list_endpoints(self, **kwargs)


# ---------------------------------------------------------------------------------------------
# SageMaker responses: actions moto lacks or parses incompletely.
# ---------------------------------------------------------------------------------------------


def _r_update_endpoint(self: SageMakerResponse) -> ActionResult:
    arn = self.sagemaker_backend.update_endpoint(
        endpoint_name=self._get_param("EndpointName"),
        endpoint_config_name=self._get_param("EndpointConfigName"),
        retain_all_variant_properties=self._get_param("RetainAllVariantProperties"),
        exclude_retained_variant_properties=self._get_param("ExcludeRetainedVariantProperties"),
        deployment_config=self._get_param("DeploymentConfig"),
    )
    return ActionResult({"EndpointArn": arn})


def _r_list_models(self: SageMakerResponse) -> ActionResult:
    models = list(self.sagemaker_backend.list_models())
    name_contains = self._get_param("NameContains")
    if name_contains:
        models = [m for m in models if name_contains in m.model_name]
    if self._get_param("SortBy") == "Name":
        models.sort(key=lambda m: m.model_name)
    else:
        models.sort(key=lambda m: m.creation_time)
    if self._get_param("SortOrder", "Descending") == "Descending":
        models.reverse()
    start = int(self._get_param("NextToken") or 0)
    max_results = self._get_param("MaxResults")
    end = start + int(max_results) if max_results else len(models)
    summaries = [
        {"ModelName": m.model_name, "ModelArn": m.arn, "CreationTime": m.creation_time}
        for m in models[start:end]
    ]
    return ActionResult(
        {"Models": summaries, "NextToken": str(end) if end < len(models) else None}
    )


# ---------------------------------------------------------------------------------------------
# Application Auto Scaling.
# ---------------------------------------------------------------------------------------------


class ObjectNotFoundException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("ObjectNotFoundException", message)


def deregister_scalable_target(
    self: ApplicationAutoscalingBackend, namespace: str, r_id: str, dimension: str
) -> None:
    if not self._scalable_target_exists(r_id, dimension):
        raise ObjectNotFoundException(
            f"No scalable target found for service namespace: {namespace}, resource ID: {r_id}, "
            f"scalable dimension: {dimension}"
        )
    del self.targets[dimension][r_id]
    for key, policy in list(self.policies.items()):
        if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == (
            namespace,
            r_id,
            dimension,
        ):
            policy.delete_alarms(self.account_id, self.region_name)
            del self.policies[key]
    target = (namespace, r_id, dimension)
    self.scheduled_actions = [
        a
        for a in self.scheduled_actions
        if (a.service_namespace, a.resource_id, a.scalable_dimension) != target
    ]


_original_put_scaling_policy = ApplicationAutoscalingBackend.put_scaling_policy
_original_delete_scaling_policy = ApplicationAutoscalingBackend.delete_scaling_policy


def put_scaling_policy(
    self: ApplicationAutoscalingBackend,
    policy_name: str,
    service_namespace: str,
    resource_id: str,
    scalable_dimension: str,
    policy_body: dict[str, Any],
    policy_type: str | None,
) -> Any:
    if not any(
        t.resource_id == resource_id and t.scalable_dimension == scalable_dimension
        for t in self._flatten_scalable_targets(service_namespace)
    ):
        raise ObjectNotFoundException(
            f"No scalable target registered for service namespace: {service_namespace}, "
            f"resource ID: {resource_id}, scalable dimension: {scalable_dimension}"
        )
    return _original_put_scaling_policy(
        self,
        policy_name=policy_name,
        service_namespace=service_namespace,
        resource_id=resource_id,
        scalable_dimension=scalable_dimension,
        policy_body=policy_body,
        policy_type=policy_type,
    )


def delete_scaling_policy(
    self: ApplicationAutoscalingBackend,
    policy_name: str,
    service_namespace: str,
    resource_id: str,
    scalable_dimension: str,
) -> None:
    try:
        _original_delete_scaling_policy(
            self, policy_name, service_namespace, resource_id, scalable_dimension
        )
    except JsonRESTError as err:
        raise ObjectNotFoundException(err.message) from None


# ---------------------------------------------------------------------------------------------
# Step Functions.
# ---------------------------------------------------------------------------------------------

_service_models: dict[str, Any] = {}


def _operation_model(service: str, api_action: str) -> Any:
    if service not in _service_models:
        _service_models[service] = botocore.session.get_session().get_service_model(service)
    return _service_models[service].operation_model(api_action[:1].upper() + api_action[1:])


def _aws_sdk_normalise_parameters(
    self: StateTaskServiceAwsSdk, parameters: dict, *args: Any, **kwargs: Any
) -> None:
    service = self._get_boto_service_name()
    if service in _CAMEL_CASED_SERVICES:
        shape = _operation_model(service, self.resource.api_action).input_shape
        if shape is not None:
            self._to_boto_request(parameters, shape)


def _aws_sdk_normalise_response(
    self: StateTaskServiceAwsSdk, response: Any, *args: Any, **kwargs: Any
) -> None:
    service = self._get_boto_service_name()
    if service in _CAMEL_CASED_SERVICES and isinstance(response, dict):
        shape = _operation_model(service, self.resource.api_action).output_shape
        if shape is not None:
            self._from_boto_response(response, shape)


def _sfn_sort_key(execution: Any) -> Any:
    # AWS: running executions by start date, the others by stop date; most recent first.
    stop_date = getattr(execution, "stop_date", None)
    return stop_date if execution.status != "RUNNING" and stop_date else execution.start_date


@paginate(pagination_model=_SFN_PAGINATION_MODEL)
def list_executions(
    self: StepFunctionBackend, state_machine_arn: str, status_filter: str | None = None
) -> list[Any]:
    executions = list(self.describe_state_machine(state_machine_arn).executions)
    if status_filter:
        executions = [e for e in executions if e.status == status_filter]
    return sorted(executions, key=_sfn_sort_key, reverse=True)


# ---------------------------------------------------------------------------------------------
# Patching.
# ---------------------------------------------------------------------------------------------

_SAGEMAKER_BACKEND_PATCHES = {
    "create_model": create_model,
    "create_endpoint_config": create_endpoint_config,
    "create_endpoint": create_endpoint,
    "describe_endpoint": describe_endpoint,
    "delete_endpoint": delete_endpoint,
    "update_endpoint": update_endpoint,
    "update_endpoint_weights_and_capacities": update_endpoint_weights_and_capacities,
    "list_endpoint_configs": list_endpoint_configs,
    "list_endpoints": list_endpoints,
}
_SAGEMAKER_RESPONSE_PATCHES = {
    "update_endpoint": _r_update_endpoint,
    "list_models": _r_list_models,
}
_SCALING_BACKEND_PATCHES = {
    "deregister_scalable_target": deregister_scalable_target,
    "put_scaling_policy": put_scaling_policy,
    "delete_scaling_policy": delete_scaling_policy,
}
_AWS_SDK_TASK_PATCHES = {
    "_normalise_parameters": _aws_sdk_normalise_parameters,
    "_normalise_response": _aws_sdk_normalise_response,
}


@contextlib.contextmanager
def endpoint_shim(
    region: str = "eu-west-1",
    account_id: str = DEFAULT_ACCOUNT_ID,
    *,
    reads_while_creating: int = 1,
    reads_while_updating: int = 1,
    reads_while_deleting: int = 0,
) -> Iterator[EndpointShim]:
    """Patch moto for the duration of the block. Use inside (or around) `mock_aws()`.

    `reads_while_creating` / `reads_while_updating` / `reads_while_deleting`: how many
    DescribeEndpoint reads answer Creating / Updating / Deleting before the operation ends (0: it
    ends at once). They can also be changed on the returned controller while the block runs.
    """
    global _active
    if _active is not None:
        raise RuntimeError("endpoint_shim is already active")
    controller = EndpointShim(
        region, account_id, reads_while_creating, reads_while_updating, reads_while_deleting
    )
    _active = controller
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                mock.patch.multiple(
                    SageMakerModelBackend, create=True, **_SAGEMAKER_BACKEND_PATCHES
                )
            )
            stack.enter_context(
                mock.patch.multiple(SageMakerResponse, create=True, **_SAGEMAKER_RESPONSE_PATCHES)
            )
            stack.enter_context(
                mock.patch.multiple(
                    ApplicationAutoscalingBackend, create=True, **_SCALING_BACKEND_PATCHES
                )
            )
            stack.enter_context(
                mock.patch.multiple(
                    StateTaskServiceAwsSdk, create=True, **_AWS_SDK_TASK_PATCHES
                )
            )
            stack.enter_context(
                mock.patch.object(StepFunctionBackend, "list_executions", list_executions)
            )
            stack.enter_context(
                mock.patch.dict(
                    _task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES,
                    {"applicationautoscaling": "application-autoscaling"},
                )
            )
            stack.enter_context(
                mock.patch.dict(
                    _aws_sdk_task_service._SERVICE_ERROR_NAMES, _SFN_SERVICE_ERROR_NAMES
                )
            )
            yield controller
    finally:
        _active = None
