"""The pydantic model behind config/<env>.yaml and the loader that turns its errors into messages.

Every error names the file, the key (dotted path) and what is accepted, because the person reading it
is editing YAML, not Python.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import botocore
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from config.deployer_timings import MAX_GUARDRAILS_WAIT_SECONDS, CanaryTimings
from config.naming import model_name_lengths, model_stem
from pipeline_code.render import pipeline_names
from pipeline_code.settings import BATCH_INFERENCE_OUTPUT_PREFIX, SKLEARN_VERSION, scikit_learn_image_regions

# The pipeline that listens to uploads under model_build.training_prefix unless config says otherwise.
TRAINING_PIPELINE = "training"

# The environments the app synthesizes. Each must have its config/<name>.yaml: there is no fallback.
ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")


# Keys of earlier versions of the config files, and where they live now.
MOVED_KEYS = {("deployment", "notification_emails"): "notifications.emails"}


class ConfigError(ValueError):
    """A config file is missing, unreadable or invalid; the message says where and what is accepted."""


class KeyedProblems(ValueError):
    """Several problems a check of a whole section found, each at its own dotted key."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{key}: {what}" for key, what in problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _account_id(value: str) -> str:
    if not (len(value) == 12 and value.isdigit()):
        raise ValueError("must be a 12-digit AWS account ID as a quoted string, e.g. '123456789012'")
    return value


def _cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError as err:
        raise ValueError(f"must be an IPv4 CIDR block such as '10.0.0.0/16' ({err})") from None
    if not 16 <= network.prefixlen <= 18:
        raise ValueError("must be a /16 to /18 IPv4 block: each zone gets a /20 subnet, for up to 3 zones")
    return value


@functools.cache
def known_regions() -> frozenset[str]:
    """The regions in the partition data botocore ships: read from its package, no AWS call.

    A pattern alone accepts regions that do not exist (eu-west-9), which then fail deep inside the
    SageMaker SDK at synth. The partitions also list pseudo-regions such as aws-global, which their own
    region pattern excludes.
    """
    # Read from the file itself: importing botocore's data loader would import most of botocore, which
    # a synth needs for nothing else.
    partitions = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())["partitions"]
    return frozenset(
        region for partition in partitions for region in partition["regions"]
        if re.fullmatch(partition["regionRegex"], region)
    )


def _region(value: str) -> str:
    if value not in known_regions():
        raise ValueError(f"is not an AWS region known to botocore {botocore.__version__}")
    if value not in scikit_learn_image_regions():
        raise ValueError(
            f"has no SageMaker scikit-learn {SKLEARN_VERSION} image, which the pipelines and batch jobs run on; "
            f"regions that have it: {', '.join(sorted(scikit_learn_image_regions()))}"
        )
    return value


def _availability_zone(value: str, info: ValidationInfo) -> str:
    # The zones sit under network and the region at the top level, so the loader passes the region down
    # in the validation context. Without a known region, only the shape of the name can be checked.
    region = (info.context or {}).get("region")
    if isinstance(region, str) and region in known_regions():
        if not re.fullmatch(rf"{re.escape(region)}[a-z]", value):
            raise ValueError(f"is not an availability zone of region {region}")
    elif not re.fullmatch(r"[a-z]{2,4}(-[a-z]+)+-\d[a-z]", value):
        raise ValueError("must be an availability zone name such as eu-west-1a")
    return value


AccountId = Annotated[str, AfterValidator(_account_id)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Region = Annotated[str, AfterValidator(_region)]
AvailabilityZone = Annotated[str, AfterValidator(_availability_zone)]
# Used in physical names (Studio domain, endpoint, pipelines), so it is held to the strictest of them.
ProjectName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,19}[a-z0-9]$")]
# SageMaker's own pattern for user profile names.
UserProfileName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]


class NewVpc(_Strict):
    """A VPC this stack creates. Availability zones are listed, not looked up, so synth makes no AWS call."""

    cidr: Cidr
    availability_zones: Annotated[list[AvailabilityZone], Field(min_length=1, max_length=3)]
    nat_gateways: Annotated[int, Field(ge=0, le=3)] = 0

    @model_validator(mode="after")
    def _nat_fits_zones(self) -> NewVpc:
        if self.nat_gateways > len(self.availability_zones):
            raise ValueError("nat_gateways cannot exceed the number of availability_zones")
        return self


class ExistingVpc(_Strict):
    """A VPC someone else owns, referenced by ID without lookups: give its private subnets and their zones.

    With VpcOnly Studio, give the subnets' route tables too so the S3 gateway endpoint can be added to them;
    leave them out if the VPC already routes S3 through a gateway endpoint of its own.
    """

    vpc_id: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")]
    subnet_ids: Annotated[list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]], Field(min_length=1)]
    availability_zones: Annotated[list[AvailabilityZone], Field(min_length=1)]
    route_table_ids: list[Annotated[str, Field(pattern=r"^rtb-[0-9a-f]{8,17}$")]] = []

    @model_validator(mode="after")
    def _one_zone_per_subnet(self) -> ExistingVpc:
        if len(self.subnet_ids) != len(self.availability_zones):
            raise ValueError("subnet_ids and availability_zones must list one zone per subnet, in the same order")
        if self.route_table_ids and len(self.route_table_ids) != len(self.subnet_ids):
            raise ValueError("route_table_ids must list one route table per subnet, in the same order")
        return self


class Network(_Strict):
    # PublicInternetOnly: Studio reaches the internet through SageMaker's network, so the VPC needs no
    # NAT or endpoints. VpcOnly: all Studio traffic stays in our private subnets and reaches AWS through
    # VPC endpoints.
    studio_network_mode: Literal["PublicInternetOnly", "VpcOnly"]
    vpc: NewVpc | None = None
    existing_vpc: ExistingVpc | None = None
    # VpcOnly: the zones whose private subnets hold the interface endpoints; every zone of the VPC if not set.
    # Each endpoint bills per zone and hour; subnets in other zones reach the endpoints across zones, as
    # privately, with less resilience to a zone's outage (for environments that can wait one out).
    endpoint_availability_zones: Annotated[list[AvailabilityZone], Field(min_length=1)] | None = None
    # VpcOnly: people open Studio itself from inside the VPC (over a VPN or Direct Connect, with DNS for the
    # endpoint), which needs the Studio interface endpoint. A browser anywhere else needs none.
    studio_access_from_vpc: bool = False

    @model_validator(mode="after")
    def _exactly_one_vpc(self) -> Network:
        if (self.vpc is None) == (self.existing_vpc is None):
            raise ValueError("set exactly one of 'vpc' (create one) or 'existing_vpc' (use one by ID)")
        return self

    @model_validator(mode="after")
    def _endpoint_zones_are_the_vpcs(self) -> Network:
        if self.endpoint_availability_zones is None:
            return self
        if self.studio_network_mode != "VpcOnly":
            raise ValueError("endpoint_availability_zones: only VpcOnly Studio has interface endpoints; remove the key")
        zones = (self.vpc or self.existing_vpc).availability_zones
        strangers = [zone for zone in self.endpoint_availability_zones if zone not in zones]
        if strangers:
            raise ValueError(f"endpoint_availability_zones: {', '.join(strangers)} not among the VPC's availability_zones ({', '.join(zones)})")
        if len(set(self.endpoint_availability_zones)) != len(self.endpoint_availability_zones):
            raise ValueError("endpoint_availability_zones: a zone is listed twice")
        return self

    @property
    def endpoint_zones(self) -> list[str]:
        return list(self.endpoint_availability_zones or (self.vpc or self.existing_vpc).availability_zones)


def _git_repository_url(value: str) -> str:
    # SageMaker's CodeRepository.RepositoryUrl: HTTPS only, at most 1024 characters, host and path
    # segments of letters, digits, '.', '-' and '_' (so no credentials, ports or query strings).
    if not value.startswith("https://"):
        raise ValueError("must be an HTTPS clone URL such as https://github.com/team/repo.git (Studio offers no SSH clones here)")
    if len(value) > 1024 or not re.fullmatch(r"https://([.\-_a-zA-Z0-9]+/?){3,1016}", value):
        raise ValueError(
            "must be an HTTPS clone URL of at most 1024 characters made of letters, digits, '.', '-', '_' and '/' "
            "(no user name, port or query), e.g. https://github.com/team/repo.git"
        )
    return value


GitRepositoryUrl = Annotated[str, AfterValidator(_git_repository_url)]


class StudioUser(_Strict):
    name: UserProfileName


class Studio(_Strict):
    users: list[StudioUser] = []
    # SageMaker accepts 60 to 525600 minutes for JupyterLab idle shutdown.
    idle_timeout_minutes: Annotated[int, Field(ge=60, le=525600)] = 60
    default_space_storage_gb: Annotated[int, Field(ge=5, le=16384)] = 5
    max_space_storage_gb: Annotated[int, Field(ge=5, le=16384)] = 100
    # Lets users build container images from Studio (sm-docker / docker in JupyterLab).
    docker_access: bool = True
    # Offered for cloning in every JupyterLab space (the domain's default user settings); SageMaker takes
    # up to 10.
    git_repositories: Annotated[list[GitRepositoryUrl], Field(max_length=10)] = []

    @model_validator(mode="after")
    def _checks(self) -> Studio:
        repeated = sorted({url for url in self.git_repositories if self.git_repositories.count(url) > 1})
        if repeated:
            raise ValueError(f"git_repositories must be unique; repeated: {', '.join(repeated)}")
        names = [user.name for user in self.users]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"user names must be unique; repeated: {', '.join(duplicates)}")
        if self.max_space_storage_gb < self.default_space_storage_gb:
            raise ValueError("max_space_storage_gb must be at least default_space_storage_gb")
        return self


class Storage(_Strict):
    # destroy: buckets are emptied and deleted, the KMS key scheduled for deletion, the Studio home EFS
    # deleted, with the stack. retain: all of those outlive a `cdk destroy`.
    removal: Literal["destroy", "retain"]
    noncurrent_version_expiration_days: Annotated[int, Field(ge=1, le=3650)] = 30
    access_log_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    ecr_max_image_count: Annotated[int, Field(ge=1, le=1000)] = 50


InstanceType = Annotated[str, Field(pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")]
S3KeyPrefix = Annotated[str, Field(pattern=r"^[A-Za-z0-9!_.'()/-]+/$", max_length=512)]


UploadSuffix = Annotated[str, Field(pattern=r"^[A-Za-z0-9!_.'()-]*$", max_length=64)]
def _schedule_expression(value: str) -> str:
    # EventBridge Scheduler's recurring expressions.
    if not re.fullmatch(r"rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)|cron\(\S+( \S+){5}\)", value):
        raise ValueError("must be rate(<n> minutes|hours|days) or a six-field cron(...) expression, evaluated in UTC")
    return value


ScheduleExpression = Annotated[str, AfterValidator(_schedule_expression)]


class PipelineTrigger(_Strict):
    """How one pipeline is started.

    upload: objects created under `prefix` of the training-data bucket whose key ends in `suffix` start it
    with ``InputDataUri`` = the prefix, once the uploads have been quiet for `quiet_seconds`, so a burst of
    uploads starts one execution. schedule: EventBridge Scheduler starts it on `schedule` with its default
    parameters. none: nothing starts it; run it by hand or from Studio.
    """

    trigger: Literal["upload", "schedule", "none"]
    # upload only. The training pipeline's defaults are model_build.training_prefix and training_suffix.
    prefix: S3KeyPrefix | None = None
    suffix: UploadSuffix | None = None
    # upload only: an upload starts the pipeline this long after the last upload before it; at least a minute,
    # since a schedule must lie in the future when it is written.
    quiet_seconds: Annotated[int, Field(ge=60, le=3600)] = 300
    # upload only: uploads that never pause for quiet_seconds start the pipeline this long after the first.
    max_wait_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    # schedule only.
    schedule: ScheduleExpression | None = None

    @model_validator(mode="after")
    def _fits_its_trigger(self) -> PipelineTrigger:
        keys = {"upload": {"prefix", "suffix", "quiet_seconds", "max_wait_seconds"}, "schedule": {"schedule"}, "none": set()}
        stray = sorted((self.model_fields_set - {"trigger"}) - keys[self.trigger])
        if stray:
            raise ValueError(f"{', '.join(stray)} cannot be set with trigger '{self.trigger}'")
        if self.max_wait_seconds < self.quiet_seconds:
            raise ValueError("max_wait_seconds must be at least quiet_seconds")
        if self.trigger == "schedule" and self.schedule is None:
            raise ValueError("trigger 'schedule' needs a schedule, e.g. 'cron(0 3 * * ? *)' or 'rate(1 day)'")
        return self


def _pipeline_folder(name: str) -> str:
    folders = pipeline_names()
    if name not in folders:
        raise ValueError(f"no folder pipeline_code/{name}/ with a pipeline.py or definition.json; pipelines: {', '.join(folders) or 'none'}")
    return name


PipelineFolder = Annotated[str, AfterValidator(_pipeline_folder)]


class MlflowTracking(_Strict):
    """SageMaker managed MLflow for this environment's training runs, besides SageMaker Experiments.

    mode serverless (the default): a serverless MLflow App, billed for what is logged and stored, nothing
    while idle. mode tracking-server: a provisioned tracking server of `size`, billed per hour while it exists.
    """

    enabled: bool = True
    mode: Literal["serverless", "tracking-server"] = "serverless"
    # The tracking server's size; a serverless MLflow App has none.
    size: Literal["Small", "Medium", "Large"] | None = None
    # A weekly maintenance window, ddd:hh:mm in UTC.
    weekly_maintenance_window: Annotated[str, Field(pattern=r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):[0-5]\d$")] = "Sun:03:00"

    @model_validator(mode="after")
    def _size_is_a_tracking_servers(self) -> MlflowTracking:
        if self.size is not None and self.mode != "tracking-server":
            raise ValueError(
                f"size is a tracking server's, and mode is '{self.mode}': a serverless MLflow App has no size. "
                "Remove size, or set mode: tracking-server (billed per hour while it exists)"
            )
        return self

    @property
    def tracking_server_size(self) -> str:
        return self.size or "Small"


class ModelBuild(_Strict):
    # Uploads under this prefix (of the training-data bucket) with this suffix start the training pipeline.
    training_prefix: S3KeyPrefix = "training/"
    training_suffix: UploadSuffix = ".csv"
    label_column: Annotated[str, Field(min_length=1)] = "target"
    processing_instance_type: InstanceType = "ml.m5.large"
    training_instance_type: InstanceType = "ml.m5.large"
    # Models whose test AUC is below this are not registered; the pipeline fails with the measured AUC.
    auc_threshold: Annotated[float, Field(gt=0, le=1)] = 0.8
    # On stack delete: delete the SageMaker pipelines, or keep them (with their execution history).
    pipeline_removal: Literal["delete", "retain"] = "delete"
    # true: refuse to deploy over a pipeline someone changed outside the stack (e.g. in Studio).
    strict_pipeline_updates: bool = False
    # true: a deploy may take over a pipeline of the same name that it did not create (made outside the stack,
    # or by another stack); false refuses, so that this stack never updates or deletes someone else's pipeline.
    adopt_existing_pipelines: bool = False
    # Existing IAM roles (by name) that review models: the <prefix>-model-reviewer policy, which approves or
    # rejects this environment's model packages, is attached to each. Builders never hold it.
    reviewer_role_names: list[Annotated[str, Field(pattern=r"^[\w+=,.@-]{1,64}$")]] = []
    # How each pipeline_code/<name>/ is started. A pipeline not listed: training listens to uploads under
    # training_prefix, every other pipeline is started by nothing.
    pipelines: dict[PipelineFolder, PipelineTrigger] = {}
    mlflow: MlflowTracking = MlflowTracking()

    @field_validator("pipelines")
    @classmethod
    def _uploads_have_a_prefix(cls, pipelines: dict[str, PipelineTrigger]) -> dict[str, PipelineTrigger]:
        for name, trigger in pipelines.items():
            if trigger.trigger == "upload" and trigger.prefix is None and name != TRAINING_PIPELINE:
                raise ValueError(f"{name}.prefix: trigger 'upload' needs the S3 key prefix to listen to, e.g. '{name}/'")
        return pipelines

    def trigger(self, pipeline: str) -> PipelineTrigger:
        """How `pipeline` is started, with the training pipeline's defaults filled in."""
        configured = self.pipelines.get(pipeline)
        if pipeline != TRAINING_PIPELINE:
            return configured or PipelineTrigger(trigger="none")
        configured = configured or PipelineTrigger(trigger="upload")
        if configured.trigger != "upload":
            return configured
        return configured.model_copy(
            update={
                "prefix": configured.prefix or self.training_prefix,
                "suffix": self.training_suffix if configured.suffix is None else configured.suffix,
            }
        )


class Autoscaling(_Strict):
    min_capacity: Annotated[int, Field(ge=1, le=100)] = 1
    max_capacity: Annotated[int, Field(ge=1, le=100)] = 2
    # Target of SageMakerVariantInvocationsPerInstance (invocations per instance per minute).
    invocations_per_instance: Annotated[float, Field(gt=0)] = 100.0

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.max_capacity < self.min_capacity:
            raise ValueError("max_capacity must be at least min_capacity")
        return self


class Alarms(_Strict):
    # Per variant and period: any 5XX is usually worth a rollback; a few 4XX may be callers' mistakes.
    errors_5xx: Annotated[int, Field(ge=0)] = 0
    errors_4xx: Annotated[int, Field(ge=0)] = 10
    # Average ModelLatency, in milliseconds.
    model_latency_ms: Annotated[int, Field(gt=0)] = 500
    period_seconds: Literal[10, 30, 60, 300] = 60
    evaluation_periods: Annotated[int, Field(ge=1, le=10)] = 1


class DataCapture(_Strict):
    """The endpoint's requests and responses, sampled into the artifacts bucket (KMS-encrypted) on every
    endpoint config the deployer creates."""

    enabled: bool = True
    # Share of requests captured; a busy endpoint needs less to see its traffic's shape.
    sampling_percentage: Annotated[int, Field(ge=1, le=100)] = 20


class DataQualityMonitoring(_Strict):
    """A Model Monitor data-quality schedule on the endpoint; its violations raise an alarm on the topic.

    SageMaker refuses a schedule for an endpoint that does not exist yet, and the endpoint only exists after
    the deployer's first release: switch this on once the first model is released.
    """

    enabled: bool = False
    # Model Monitor accepts hourly or daily schedules.
    frequency: Literal["hourly", "daily"] = "daily"
    instance_type: InstanceType = "ml.m5.large"
    # Baseline statistics and constraints (a baselining job's output) in the artifacts bucket, relative to
    # its root; without them, the job only computes statistics and finds no violations.
    baseline_prefix: S3KeyPrefix | None = None
    max_runtime_minutes: Annotated[int, Field(ge=1, le=60)] = 60


class Serving(_Strict):
    """How the endpoint runs the model: on instances (blue/green variants, a canary at canary_weight,
    autoscaling), or serverless (SageMaker provisions compute per request and bills for the requests it
    serves; one variant, and a release replaces it whole)."""

    mode: Literal["instances", "serverless"] = "instances"
    # serverless only: memory per concurrent invocation; SageMaker accepts 1 GB steps from 1024 to 6144 MB.
    memory_size_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 2048
    # serverless only: concurrent invocations the endpoint serves before SageMaker throttles (1..200).
    max_concurrency: Annotated[int, Field(ge=1, le=200)] = 5
    # serverless only: invocations kept warm (no cold start), billed while the endpoint exists; off unless set.
    provisioned_concurrency: Annotated[int, Field(ge=1, le=200)] | None = None

    @model_validator(mode="after")
    def _fits_the_mode(self) -> Serving:
        if self.mode == "instances":
            stray = sorted(self.model_fields_set & {"memory_size_mb", "max_concurrency", "provisioned_concurrency"})
            if stray:
                raise ValueError(f"{', '.join(stray)} apply to mode 'serverless' only, and mode is 'instances': remove them, or set mode: serverless")
        if self.provisioned_concurrency is not None and self.provisioned_concurrency > self.max_concurrency:
            raise ValueError(
                f"provisioned_concurrency ({self.provisioned_concurrency}) must be at most max_concurrency ({self.max_concurrency}): "
                "SageMaker keeps at most the maximum warm"
            )
        return self


class Deployment(_Strict):
    strategy: Literal["variants", "guardrails"] = "variants"
    instance_type: InstanceType = "ml.m5.large"
    initial_instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    # Share of traffic the new model gets during the bake.
    canary_weight: Annotated[float, Field(gt=0, lt=1)] = 0.2
    # Interval of the endpoint status polls while SageMaker creates or updates the endpoint. 0 only in tests.
    poll_seconds: Annotated[int, Field(ge=0, le=3600)] = 30
    # Interval of the bake's alarm checks: an ALARM is acted on within this many seconds. 0 only in tests.
    alarm_poll_seconds: Annotated[int, Field(ge=0, le=14)] = 10
    # The bake lasts bake_checks x alarm_poll_seconds; the new colour's alarms are checked every time.
    bake_checks: Annotated[int, Field(ge=1, le=10000)] = 30
    # How many polls an endpoint create or update may take before it counts as failed. With these bounds the
    # deployer's longest path always fits one Step Functions execution (a year).
    max_update_polls: Annotated[int, Field(ge=1, le=1000)] = 120
    # variants only: roll back a canary that served fewer requests than this during its bake (0: no guard).
    min_canary_invocations: Annotated[int, Field(ge=0)] = 0
    # variants only: after a healthy bake, wait for a person to approve the promotion (task token sent to
    # the notification topic); no answer within the timeout rolls back.
    manual_approval: bool = False
    approval_timeout_minutes: Annotated[int, Field(ge=1, le=10080)] = 1440
    # Existing IAM roles (by name) that answer the manual approval: the <prefix>-deployment-approver policy,
    # which reads the waiting deployment's history (where its task token is) and answers it, is attached to
    # each. Builders and jobs never hold it; messages never carry the token.
    approver_role_names: list[Annotated[str, Field(pattern=r"^[\w+=,.@-]{1,64}$")]] = []
    # guardrails only: SageMaker's blue/green traffic routing; the canary/step size is canary_weight.
    guardrails_traffic_routing: Literal["CANARY", "LINEAR"] = "CANARY"
    autoscaling: Autoscaling = Autoscaling()
    alarms: Alarms = Alarms()
    data_capture: DataCapture = DataCapture()
    monitoring: DataQualityMonitoring = DataQualityMonitoring()
    serving: Serving = Serving()

    @model_validator(mode="after")
    def _serverless_takes_what_serverless_endpoints_support(self) -> Deployment:
        """SageMaker's serverless endpoints take one production variant, no data capture (so no Model
        Monitor), no instances and no autoscaling: config asking for them with serverless serving is refused."""
        if self.serving.mode != "serverless":
            return self
        refusals = []
        if self.data_capture.enabled:
            refusals.append("data_capture.enabled must be false: serverless endpoints capture no data")
        if self.monitoring.enabled:
            refusals.append("monitoring.enabled must be false: Model Monitor reads captured data, which serverless endpoints do not capture")
        if self.strategy != "variants":
            refusals.append(
                "strategy must be 'variants': 'guardrails' shifts traffic between instance fleets, and a serverless release replaces "
                "the endpoint's one variant while the deployer watches its alarms"
            )
        instance_keys = sorted(self.model_fields_set & {"instance_type", "initial_instance_count", "autoscaling", "canary_weight", "guardrails_traffic_routing"})
        if instance_keys:
            refusals.append(
                f"{', '.join(instance_keys)} apply to serving.mode 'instances' only: a serverless endpoint has one variant, "
                "sized by serving.memory_size_mb and serving.max_concurrency; remove them"
            )
        if refusals:
            raise ValueError("with serving.mode 'serverless', " + "; ".join(refusals))
        return self

    @model_validator(mode="after")
    def _monitoring_reads_captured_data(self) -> Deployment:
        if self.monitoring.enabled and not self.data_capture.enabled:
            raise ValueError("monitoring.enabled needs data_capture.enabled: Model Monitor reads the endpoint's captured data")
        return self

    @model_validator(mode="after")
    def _fits_sagemaker_blue_green(self) -> Deployment:
        timings = CanaryTimings(
            poll_seconds=self.poll_seconds,
            max_update_polls=self.max_update_polls,
            bake_checks=self.bake_checks,
            alarm_poll_seconds=self.alarm_poll_seconds,
        )
        if self.strategy == "guardrails" and timings.bake_seconds > MAX_GUARDRAILS_WAIT_SECONDS:
            raise ValueError(
                f"with strategy 'guardrails', the bake (bake_checks x alarm_poll_seconds = {timings.bake_seconds} s) "
                f"is SageMaker's wait between traffic steps, which is at most {MAX_GUARDRAILS_WAIT_SECONDS} s"
            )
        return self


class SlackChannel(_Strict):
    """A Slack channel that AWS Chatbot posts the notifications to. The workspace must be authorized in the
    AWS Chatbot console of the account once (an OAuth step CloudFormation cannot do)."""

    # AWS::Chatbot::SlackChannelConfiguration's patterns: the workspace (team) ID, e.g. T0123ABCD, and the
    # channel ID, e.g. C0123ABCD (in Slack: the channel's details, at the bottom).
    workspace_id: Annotated[str, Field(pattern=r"^[0-9A-Z]{1,255}$")]
    channel_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,255}$")]


class Notifications(_Strict):
    """Who is told what happened: training runs, model reviews and deployments, in one format."""

    # Each address receives a confirmation e-mail from SNS first; nothing arrives until it is confirmed.
    emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = []
    # Off unless given: posts every message to this Slack channel through AWS Chatbot.
    slack: SlackChannel | None = None
    # Off unless given: a digest of the last 24 hours (latest approved model, training runs, deployments) on
    # this EventBridge Scheduler expression, in UTC, e.g. 'cron(0 7 * * ? *)' for 07:00 every day.
    daily_digest: ScheduleExpression | None = None
    # How many of the evaluation report's feature importances a message lists.
    top_features: Annotated[int, Field(ge=0, le=10)] = 5


def _s3_uri(value: str) -> str:
    if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?", value) or len(value) > 1024:
        raise ValueError("must be an S3 URI such as 's3://my-bucket/batch/input/'")
    return value


def _connection_arn(value: str) -> str:
    if not re.fullmatch(r"arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:[0-9]{12}:connection/[0-9a-f-]{36}", value):
        raise ValueError(
            "must be the ARN of an AWS CodeConnections connection, "
            "e.g. 'arn:aws:codeconnections:eu-west-1:123456789012:connection/<36-character id>'"
        )
    return value


S3Uri = Annotated[str, AfterValidator(_s3_uri)]


def _batch_output_uri(value: str) -> str:
    # The bucket's name is generated at deploy time; the key must be where the workflow lets jobs write.
    if not value.split("/", 3)[3:] or not value.split("/", 3)[3].startswith(BATCH_INFERENCE_OUTPUT_PREFIX):
        raise ValueError(
            f"must be under the batch output prefix of the artifacts bucket, "
            f"'s3://<artifacts bucket>/{BATCH_INFERENCE_OUTPUT_PREFIX}...' (the stack output BatchOutputUri)"
        )
    return value


ModelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")]


class BatchSchedule(_Strict):
    """Run the batch inference workflow on `expression` with this fixed input."""

    expression: ScheduleExpression
    input_uri: S3Uri
    output_uri: Annotated[S3Uri, AfterValidator(_batch_output_uri)]
    # The model scored, one of the environment's models; none: the one keeping the environment's names.
    model: ModelName | None = None


class ImageBuild(_Strict):
    """Build the inference image in CodeBuild on every push to `branch` of `repository`, reached through
    an AWS CodeConnections connection (created and authorised once in the console)."""

    connection_arn: Annotated[str, AfterValidator(_connection_arn)]
    # GitHub's owner/name.
    repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]
    branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9_./-]{1,255}$")] = "main"


class BatchInference(_Strict):
    """Defaults of the batch inference workflow's jobs (an execution's input may override the instances, the
    runtime and the inference image's tag), and what a batch caller may choose."""

    instance_type: InstanceType = "ml.m5.large"
    # SageMaker's bounds for a processing job.
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 30
    # Each job's MaxRuntimeInSeconds, and the most an execution may ask for: the workflow's timeout is sized
    # on it. SageMaker allows up to 777600 s (9 days) per processing job.
    max_runtime_seconds: Annotated[int, Field(ge=60, le=777600)] = 3600
    # The tag of the inference image in the batch inference repository that executions use unless their input
    # names custom_image_uri; without one, every execution must name it.
    image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] | None = None
    schedule: BatchSchedule | None = None
    image_build: ImageBuild | None = None
    # Off: a batch scores only with an Approved model package version (named, or the newest). On: a named
    # version of any approval status, or a model artifact given as model_uri, may score a batch too. A
    # model artifact is code (a pickled model runs as it loads), so leave it off where results matter.
    allow_unapproved_models: bool = False


# The most models one environment declares. Each model's endpoint holds at least one instance while it
# serves, and SageMaker's account quotas on endpoints and on each instance type's endpoint usage are per
# account and region, often small in new accounts; past this many, a team is better served by more
# environments (accounts) than by one crowded one.
MAX_MODELS = 10
# The model an environment has when its config declares none: it keeps the environment's own names.
DEFAULT_MODEL = "default"
# A model name's first segment may not be one of these: the environment-named model's SageMaker models
# (<prefix>-model-v<N>, <prefix>-serverless-model-v<N>), endpoints and endpoint configs (<prefix>-endpoint-...,
# <prefix>-serverless-...) are granted by these prefixes.
RESERVED_MODEL_NAME_STARTS = ("model", "models", "endpoint", "serverless")

class Model(_Strict):
    """One model: its pipelines register into its own model package group, and its own canary deployer
    releases its approved versions to its own endpoint, watched by its own alarms."""

    # The pipeline_code/ folders whose pipelines train this model and register into its group; each folder
    # belongs to exactly one model. With source 'promote' the model is trained elsewhere: its folders are
    # still claimed here, but this environment deploys none of their pipelines.
    pipelines: list[PipelineFolder] = []
    # Overrides of the environment's deployment section for this model only: any of its keys, merged over
    # it (nested sections key by key).
    deployment: dict[str, Any] = {}
    # Where the model's versions come from: trained here by its pipelines, promoted from the environment
    # promote_from, or both.
    source: Literal["train", "promote", "both"] = "train"
    promote_from: str | None = None
    # Promote each version the source environment releases without anyone starting it (promote/both only).
    auto_promote: bool = False
    # true: the model keeps the environment's own names (<prefix>-endpoint, <prefix>-models,
    # <prefix>-canary-deployer, ...), as the single model of earlier versions had; at most one model may.
    # Every other model is named <prefix>-<model>-...
    environment_names: bool = False

    @model_validator(mode="after")
    def _source_fits(self) -> Model:
        if self.source == "train":
            if self.promote_from is not None:
                raise ValueError("promote_from is set, but source is 'train': set source to 'promote' or 'both', or remove promote_from")
            if self.auto_promote:
                raise ValueError("auto_promote needs source 'promote' or 'both' (and promote_from)")
        elif self.promote_from is None:
            raise ValueError(f"source '{self.source}' needs promote_from: the environment the model's versions are promoted from")
        if len(set(self.pipelines)) != len(self.pipelines):
            raise ValueError(f"pipelines lists a folder twice: {', '.join(sorted({p for p in self.pipelines if self.pipelines.count(p) > 1}))}")
        return self


@dataclass(frozen=True)
class ModelUnit:
    """A model of an environment as the stacks and the ``mlops`` command use it: its settings resolved."""

    name: str
    # What every physical name of the model starts with: <prefix>, or <prefix>-<model>.
    stem: str
    pipelines: tuple[str, ...]
    deployment: Deployment
    environment_names: bool
    source: str = "train"
    promote_from: str | None = None
    auto_promote: bool = False

    @property
    def trained_here(self) -> bool:
        """Whether this environment trains the model (source 'train' or 'both'), rather than only promoting it."""
        return self.source != "promote"

    @property
    def deployed_pipelines(self) -> tuple[str, ...]:
        """The pipeline_code/ folders whose pipelines this environment deploys for the model: none when it only promotes it."""
        return self.pipelines if self.trained_here else ()


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


class EnvironmentConfig(_Strict):
    account: AccountId
    region: Region
    project: ProjectName
    # CloudFormation refuses to delete the environment's stacks until this is switched off again.
    termination_protection: bool = False
    network: Network
    studio: Studio
    storage: Storage
    model_build: ModelBuild = ModelBuild()
    deployment: Deployment = Deployment()
    notifications: Notifications = Notifications()
    batch_inference: BatchInference = BatchInference()
    # The environment's models by name. Not given: one model that keeps the environment's own names and
    # that every pipeline folder registers into.
    models: Annotated[dict[ModelName, Model], Field(min_length=1, max_length=MAX_MODELS)] | None = None
    # Filled in by the loader from the file name, never written in the file itself.
    name: Annotated[str, Field(exclude=True)] = ""

    @model_validator(mode="after")
    def _serverless_serves_outside_a_vpc(self) -> EnvironmentConfig:
        # A VpcOnly environment serves its models from its private subnets; a serverless endpoint takes no VPC
        # configuration, so its model would reach the internet: the isolation would be gone without a word.
        if self.deployment.serving.mode == "serverless" and self.network.studio_network_mode == "VpcOnly":
            raise ValueError(
                "deployment.serving.mode is 'serverless', but network.studio_network_mode is 'VpcOnly': serverless endpoints take "
                "no VPC configuration, so the served model would leave the private subnets. Use serving.mode 'instances' here"
            )
        return self

    @model_validator(mode="after")
    def _approval_gate_reaches_someone(self) -> EnvironmentConfig:
        # The deployer asks for the approval through the notifications; with nobody to ask, every release
        # of the environment would wait out approval_timeout_minutes and roll back.
        if self.deployment.manual_approval and not (self.notifications.emails or self.notifications.slack):
            raise ValueError(
                "deployment.manual_approval is true, but no notification target would receive the approval "
                "request: set notifications.emails (a list of addresses) or notifications.slack "
                "({workspace_id, channel_id}), or set deployment.manual_approval to false"
            )
        return self

    @model_validator(mode="after")
    def _models_fit(self) -> EnvironmentConfig:
        if self.models is None:
            return self
        problems: list[tuple[str, str]] = []
        keeping = [name for name, model in self.models.items() if model.environment_names]
        if len(keeping) > 1:
            problems.append(("models", f"environment_names is true for {', '.join(sorted(keeping))}; at most one model keeps the environment's own names"))
        owners: dict[str, list[str]] = {}
        for name, model in self.models.items():
            for folder in model.pipelines:
                owners.setdefault(folder, []).append(name)
        shared = {folder: names for folder, names in owners.items() if len(names) > 1}
        problems.extend(("models", f"pipeline folder {folder} is claimed by {' and '.join(sorted(names))}; each folder belongs to one model") for folder, names in sorted(shared.items()))
        unclaimed = [folder for folder in pipeline_names() if folder not in owners]
        if unclaimed:
            problems.append((
                "models",
                f"no model claims pipeline_code/{', pipeline_code/'.join(unclaimed)}; add each to one model's pipelines "
                "(a pipeline registers into its model's group)",
            ))
        for name, model in self.models.items():
            problems.extend((f"models.{name}{'.' if key else ''}{key}", what) for key, what in _model_problems(self, name, model))
            if model.source == "promote":
                problems.extend(
                    (
                        f"model_build.pipelines.{folder}.trigger",
                        f"'{self.model_build.pipelines[folder].trigger}', but pipeline_code/{folder} is not deployed here: model {name} is "
                        f"promoted from {model.promote_from}, not trained here. Remove model_build.pipelines.{folder}, or set "
                        f"models.{name}.source to 'both'",
                    )
                    for folder in model.pipelines
                    if folder in self.model_build.pipelines and self.model_build.pipelines[folder].trigger != "none"
                )
        if problems:
            raise KeyedProblems(problems)
        return self

    @model_validator(mode="after")
    def _batch_schedule_scores_a_model_of_this_environment(self) -> EnvironmentConfig:
        schedule = self.batch_inference.schedule
        if schedule and schedule.model is not None and schedule.model not in self.model_units():
            raise KeyedProblems([(
                "batch_inference.schedule.model",
                f"'{schedule.model}' is not a model of this environment; its models: {', '.join(self.model_units())}",
            )])
        return self

    def model_units(self) -> dict[str, ModelUnit]:
        """The environment's models by name, each with its stem and its deployment settings resolved; the
        model that keeps the environment's names first."""
        if self.models is None:
            unit = ModelUnit(DEFAULT_MODEL, self.prefix, tuple(pipeline_names()), self.deployment, environment_names=True)
            return {DEFAULT_MODEL: unit}
        return {
            name: ModelUnit(
                name=name,
                stem=model_stem(self.prefix, name, model.environment_names),
                pipelines=tuple(model.pipelines),
                deployment=self.model_deployment(name),
                environment_names=model.environment_names,
                source=model.source,
                promote_from=model.promote_from,
                auto_promote=model.auto_promote,
            )
            for name, model in sorted(self.models.items(), key=lambda item: not item[1].environment_names)
        }

    def model_deployment(self, name: str) -> Deployment:
        """The deployment settings of model `name`: the environment's, with the model's overrides merged in."""
        overrides = self.models[name].deployment if self.models else {}
        if not overrides:
            return self.deployment
        return Deployment.model_validate(_merged(self.deployment.model_dump(exclude_unset=True), overrides))

    def deployed_pipelines(self) -> list[str]:
        """The pipeline_code/ folders whose pipelines this environment deploys, in folder order: every folder but
        those of models it only promotes (and folders no model claims, which the loaded config did not know)."""
        deployed = {folder for unit in self.model_units().values() for folder in unit.deployed_pipelines}
        return [folder for folder in pipeline_names() if folder in deployed]

    def pipeline_model(self, folder: str) -> ModelUnit | None:
        """The model that pipeline_code/`folder` registers into; None for a folder no model claims (one that
        did not exist when the config was loaded)."""
        return next((unit for unit in self.model_units().values() if folder in unit.pipelines), None)

    @property
    def prefix(self) -> str:
        """`<project>-<env>`: the stem of every physical name another system needs to find."""
        return f"{self.project}-{self.name}"

    @property
    def retain_data(self) -> bool:
        return self.storage.removal == "retain"


def _model_problems(config: EnvironmentConfig, name: str, model: Model) -> Iterator[tuple[str, str]]:
    """What is wrong with one model of `config`, as (key within the model, what) pairs; '' is the name."""
    first = name.split("-")[0]
    if first in RESERVED_MODEL_NAME_STARTS:
        yield "", (
            f"a model name may not start with '{first}': the environment-named model's SageMaker models, endpoints and "
            f"endpoint configs are <prefix>-model-..., <prefix>-serverless-... and <prefix>-endpoint-..., and its deployer's permissions would cover "
            "this model's; choose another name"
        )
    for other in config.models:
        if other != name and name.startswith(f"{other}-"):
            yield "", (
                f"the name begins with the name of model {other} and a hyphen, so {other}'s permissions "
                f"(granted on names beginning with {config.prefix}-{other}-) would cover this model's resources; choose another name"
            )
    if model.source != "promote" and not model.pipelines:
        yield "", (
            f"source is '{model.source}', so this environment trains the model, but it lists no pipelines: name its "
            "pipeline_code/ folders, or set source to 'promote' (with promote_from)"
        )
    if not model.environment_names:
        for what, length, limit in model_name_lengths(config.prefix, name):
            if length > limit:
                yield "", (
                    f"{what} would have {length} characters, AWS allows at most {limit}; shorten the model name to at most "
                    f"{len(name) - (length - limit)} characters (or the project name)"
                )
    if model.deployment:
        try:
            deployment = config.model_deployment(name)
        except ValidationError as err:
            for key, message in _problems(err):
                if message.startswith("unknown key"):
                    message = f"unknown key; deployment keys: {', '.join(Deployment.model_fields)}"
                yield f"deployment.{key}", message
        else:
            if deployment.manual_approval and not (config.notifications.emails or config.notifications.slack):
                yield "deployment.manual_approval", "true, but no notification target would receive the approval request: set notifications.emails or notifications.slack"
    if model.promote_from is not None:
        if model.promote_from not in ENVIRONMENTS:
            yield "promote_from", f"'{model.promote_from}' is not an environment; the environments are {', '.join(ENVIRONMENTS)}"
        elif model.promote_from == config.name:
            yield "promote_from", f"'{model.promote_from}' is this environment; promote from another one ({', '.join(e for e in ENVIRONMENTS if e != config.name)})"


def _promotion_problems(configs: dict[str, EnvironmentConfig], config_dir: Path) -> Iterator[str]:
    """Models promoted from an environment that does not declare them; that environment is loaded if need be."""
    for config in list(configs.values()):
        for name, model in (config.models or {}).items():
            if model.promote_from is None or model.promote_from not in ENVIRONMENTS or model.promote_from == config.name:
                continue
            source = configs.get(model.promote_from)
            if source is None:
                try:
                    source = configs[model.promote_from] = load_environment(config_dir, model.promote_from)
                except ConfigError:
                    # The source's own errors are reported when it is loaded for itself.
                    continue
            if name not in source.model_units():
                yield (
                    f"{_display_path(config_dir / f'{config.name}.yaml')}: models.{name}.promote_from: environment {source.name} "
                    f"declares no model {name} (its models: {', '.join(source.model_units())}); a version is promoted into the model of the same name"
                )


def load_environments(
    config_dir: Path, names: tuple[str, ...] = ENVIRONMENTS, loaded: dict[str, EnvironmentConfig] | None = None
) -> list[EnvironmentConfig]:
    """Load each named environment; raise one ConfigError that reports every file's errors together.

    A YAML file in the directory that is no environment is an error too: nothing would read it, so
    whatever it was meant to configure would silently not happen. `loaded`, when given, receives every
    environment read: the named ones and those read to check the models they promote from.
    """
    errors = [
        f"{_display_path(path)}: not an environment's config file; nothing reads it. The environments are "
        f"{', '.join(ENVIRONMENTS)} (config/<env>.yaml); rename or remove it, or add its name to ENVIRONMENTS "
        "in config/settings.py and the Makefile"
        for path in sorted([*config_dir.glob("*.yaml"), *config_dir.glob("*.yml")])
        if path.suffix != ".yaml" or path.stem not in ENVIRONMENTS
    ]
    configs = []
    for name in names:
        try:
            configs.append(load_environment(config_dir, name))
        except ConfigError as error:
            errors.append(str(error))
    read = {config.name: config for config in configs}
    errors.extend(_promotion_problems(read, config_dir))
    if errors:
        raise ConfigError("\n\n".join(errors))
    if loaded is not None:
        loaded.update(read)
    return configs


def load_environment(config_dir: Path, name: str) -> EnvironmentConfig:
    """Read and validate config/<name>.yaml; raise ConfigError naming the file, key and accepted values."""
    path = config_dir / f"{name}.yaml"
    shown = _display_path(path)
    if not path.is_file():
        found = sorted(p.stem for p in config_dir.glob("*.yaml"))
        raise ConfigError(
            f"{shown}: no such config file for environment '{name}' "
            f"(found: {', '.join(found) or 'none'}). Each environment needs its own file; there is no fallback."
        )
    try:
        raw, problems = _read_yaml(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as err:
        raise ConfigError(f"{shown}: not valid YAML: {_where_yaml_failed(err)}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{shown}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{shown}: must be a mapping of keys to values, got {type(raw).__name__}")
    if "name" in raw:
        problems.append(("name", "the environment's name comes from the file name; remove this key"))
        raw.pop("name")
    for (section, key), new_key in MOVED_KEYS.items():
        if isinstance(raw.get(section), dict) and key in raw[section]:
            problems.append((f"{section}.{key}", f"this key has moved to {new_key}; move its value there"))
            raw[section].pop(key)
    try:
        config = EnvironmentConfig.model_validate({**raw, "name": name}, context={"region": raw.get("region")})
    except ValidationError as err:
        problems.extend(_problems(err))
    if problems:
        raise ConfigError("\n".join([f"{shown}: {len(problems)} error(s):", *(f"  {key}: {what}" for key, what in problems)]))
    return config


def _where_yaml_failed(err: yaml.MarkedYAMLError) -> str:
    """PyYAML's message on one line, with lines of the file rather than of "<unicode string>"."""
    where = f"line {err.problem_mark.line + 1}, column {err.problem_mark.column + 1}: " if err.problem_mark else ""
    context = f" ({err.context} at line {err.context_mark.line + 1})" if err.context and err.context_mark else ""
    return f"{where}{err.problem}{context}"


def _read_yaml(text: str) -> tuple[Any, list[tuple[str, str]]]:
    """The document, and what plain YAML would get silently wrong in it, as (dotted key, message) pairs."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    problems = list(_repeated_keys(node)) if node is not None else []
    account = _top_level_node(node, "account")
    if isinstance(data, dict) and account is not None and account.tag in _YAML_NUMBERS:
        problems.append((
            "account",
            f'write the account ID in quotes, account: "{account.value}"; unquoted, YAML reads it as a number, '
            "octal when it starts with 0, and its digits change",
        ))
        # Validated as written, so the rest of the checks see the ID the user meant, not YAML's number.
        data["account"] = account.value
    return data, problems


_YAML_NUMBERS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _repeated_keys(node: yaml.Node, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    # PyYAML keeps the last of repeated keys without a word, so an edit further down a file can silently
    # override a value above it (a second `region:` while the zones stay in the first).
    if isinstance(node, yaml.MappingNode):
        first_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first_lines:
                yield ".".join((*path, key)), f"repeated key (lines {first_lines[key]} and {line}); give each key once"
            else:
                first_lines[key] = line
            yield from _repeated_keys(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _repeated_keys(item, (*path, str(index)))


def _top_level_node(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The node of a top-level key; of its last occurrence, like the loaded data."""
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((value for key_node, value in reversed(node.value) if key_node.value == key), None)


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _problems(err: ValidationError) -> Iterator[tuple[str, str]]:
    for error in err.errors(include_url=False):
        if isinstance((error.get("ctx") or {}).get("error"), KeyedProblems):
            yield from error["ctx"]["error"].problems
            continue
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            accepted = _accepted_keys(error["loc"][:-1])
            message = f"unknown key; accepted keys here: {', '.join(accepted)}"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif not isinstance(error["input"], dict):
            # A check of a whole section names its keys in its message; the section's contents would bury it.
            message = f"{message} (got {error['input']!r})"
        yield key, message


def _accepted_keys(parent: tuple[Any, ...]) -> list[str]:
    """The field names allowed at a location, found by walking the model along the error's path."""
    model: Any = EnvironmentConfig
    for part in parent:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        model = next(
            (arg for arg in (*getattr(annotation, "__args__", ()), annotation) if _is_model(arg)), None
        )
        if model is None:
            return []
    return [name for name, field in model.model_fields.items() if not field.exclude]


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseModel)
