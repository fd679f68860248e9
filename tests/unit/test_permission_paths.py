"""Permission paths: every runtime interaction of an environment, checked on its synthesized templates.

moto enforces no IAM, KMS key policies or bucket and topic policies, so the behaviour tests cannot see a
missing permission; AWS would refuse the call on the first real deployment. Each row of `INTERACTIONS`
names who calls what, on which resource, with which request context, and whether AWS must allow it;
`tests/permissions.py` decides it with an IAM policy evaluator against the identity policies of the
caller and the key, topic or bucket policy of the resource. A new runtime interaction belongs in the table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from config.naming import (
    DRAFT_ENVIRONMENTS,
    deployer_name,
    draft_pipeline_name,
    model_package_group_name,
    promoted_artifacts_prefix,
    serving_endpoint_name,
    serving_model_name_prefix,
)
from stacks.deployment import captured_data_prefix
from tests.permissions import Decision, EnvironmentPolicies, Request
from tests.synth import Synthesized

REVIEWER = "arn:aws:iam::{account}:role/model-reviewer"
APPROVER = "arn:aws:iam::{account}:role/release-manager"
# Someone allowed to put events on any bus of the account, as broad operator or developer roles often are.
ANY_BUS_PUBLISHER = "arn:aws:iam::{account}:role/puts-events-anywhere"


class World:
    """The principals and resources of one environment, found in its templates by what they are."""

    def __init__(self, policies: EnvironmentPolicies) -> None:
        self.policies = policies
        self.account, self.region, self.prefix = policies.account, policies.region, policies.prefix
        # The model that keeps the environment's names; the environment's other model, whose resources sit
        # under construct Model-<name>, is `other`.
        units = policies.config.model_units()
        (self.other,) = [OtherModel(policies, unit) for unit in units.values() if not unit.environment_names]
        self.deployer, self.state_machine, self.approval_rule_role = _deployer(policies, deployer_name(self.prefix))
        self.topic = policies.resolve("deployment", {"Ref": policies.only("deployment", "AWS::SNS::Topic")[0]})
        self.alarms = [
            policies.arn("deployment", logical_id)
            for logical_id, r in policies.templates["deployment"]["Resources"].items()
            if r["Type"] == "AWS::CloudWatch::Alarm"
        ]
        self.key = policies.arn("storage", policies.only("storage", "AWS::KMS::Key")[0])
        self.served_model = policies.arn("deployment", self._logical_id("deployment", "AWS::IAM::Role", "ServedModelRole"))
        self.pipeline_role = policies.arn("model-build", self._logical_id("model-build", "AWS::IAM::Role", "PipelineRole"))
        # The environment's MLflow (a serverless app or a tracking server), where config gives it one, and an
        # ARN of the same kind that is not its.
        mlflow = [
            (logical_id, r["Type"])
            for logical_id, r in policies.templates["model-build"]["Resources"].items()
            if r["Type"] in ("AWS::SageMaker::MlflowApp", "AWS::SageMaker::MlflowTrackingServer")
        ]
        kind = "mlflow-tracking-server" if mlflow and mlflow[0][1] == "AWS::SageMaker::MlflowTrackingServer" else "mlflow-app"
        arn_attribute = "TrackingServerArn" if kind == "mlflow-tracking-server" else "Arn"
        self.tracking_server = policies.resolve("model-build", {"Fn::GetAtt": [mlflow[0][0], arn_attribute]}) if mlflow else None
        self.other_mlflow = f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/other"
        # A tracking server authorizes each MLflow call as its own sagemaker-mlflow action; an app, all of them as one.
        if kind == "mlflow-tracking-server":
            self.mlflow_logging = [f"sagemaker-mlflow:{a}" for a in ("GetExperimentByName", "CreateExperiment", "CreateRun", "LogBatch", "UpdateRun")]
            self.mlflow_studio = ["sagemaker-mlflow:SearchRuns", "sagemaker-mlflow:LogMetric", "sagemaker:CreatePresignedMlflowTrackingServerUrl"]
            self.mlflow_delete_run = ["sagemaker-mlflow:DeleteRun"]
        else:
            self.mlflow_logging = ["sagemaker:CallMlflowAppApi"]
            self.mlflow_studio = ["sagemaker:CallMlflowAppApi", "sagemaker:CreatePresignedMlflowAppUrl"]
            self.mlflow_delete_run = []
        self.tracking_server_role = policies.arn("model-build", self._logical_id("model-build", "AWS::IAM::Role", "MlflowRole")) if mlflow else None
        # How each pipeline is started, from the environment's config.
        model_build = policies.config.model_build
        triggers = {name: model_build.trigger(name).trigger for name in policies.config.deployed_pipelines()}
        self.upload_pipelines = [name for name, trigger in triggers.items() if trigger == "upload"]
        self.started_pipelines = [
            f"arn:aws:sagemaker:{self.region}:{self.account}:pipeline/{self.prefix}-{name}" for name, trigger in triggers.items() if trigger != "none"
        ]
        self.start_role = policies.role_trusted_by("model-build", "scheduler.amazonaws.com")
        self.debounce_role = policies.arn("model-build", self._logical_id("model-build", "AWS::IAM::Role", "TriggersDebounceRole"))
        self.debounce = policies.arn("model-build", self._logical_id("model-build", "AWS::Lambda::Function", "TriggersDebounce"))
        self.dead_letters = policies.arn("model-build", self._logical_id("model-build", "AWS::SQS::Queue", "TriggersDeadLetters"))
        _, group = policies.only("model-build", "AWS::Scheduler::ScheduleGroup")
        self.schedules = f"arn:aws:scheduler:{self.region}:{self.account}:schedule/{group['Properties']['Name']}"
        self.upload_rules = [
            policies.arn("model-build", logical_id)
            for logical_id, r in policies.templates["model-build"]["Resources"].items()
            if r["Type"] == "AWS::Events::Rule" and logical_id.startswith("TriggersUpload")
        ]
        _, domain = policies.only("studio", "AWS::SageMaker::Domain")
        self.studio_role = policies.resolve("studio", domain["Properties"]["DefaultUserSettings"]["ExecutionRole"])
        self.data_bucket = self._bucket("TrainingData")
        self.artifacts_bucket = self._bucket("Artifacts")
        # A file SageMaker writes for the endpoint's data capture: <destination>/<endpoint>/<variant>/<yyyy/mm/dd/hh>/.
        self.captured_traffic = f"{self.artifacts_bucket}/data-capture/{self.prefix}-endpoint/blue/2026/11/25/20/00-00-000-0a1b2c3d.jsonl"
        self.other_captured_traffic = f"{self.artifacts_bucket}/{captured_data_prefix(self.other.stem)}blue/2026/11/25/20/00-00-000-0a1b2c3d.jsonl"
        self.inference_repository = policies.arn("storage", self._logical_id("storage", "AWS::ECR::Repository", "InferenceImages"))
        self.package = f"arn:aws:sagemaker:{self.region}:{self.account}:model-package/{self.prefix}-models/1"
        self.group = f"arn:aws:sagemaker:{self.region}:{self.account}:model-package-group/{self.prefix}-models"
        # The endpoint of the environment's serving mode (dev serves serverless).
        self.endpoint_name = serving_endpoint_name(self.prefix, policies.config.deployment.serving.mode)
        self.captures = policies.config.deployment.data_capture.enabled
        self.serverless = policies.config.deployment.serving.mode == "serverless"
        self.model_names = serving_model_name_prefix(self.prefix, policies.config.deployment.serving.mode)
        self.endpoint = f"arn:aws:sagemaker:{self.region}:{self.account}:endpoint/{self.endpoint_name}"
        self.drafts = policies.config.name in DRAFT_ENVIRONMENTS
        self.draft_pipeline = f"arn:aws:sagemaker:{self.region}:{self.account}:pipeline/{draft_pipeline_name(self.prefix, 'someone', 'training')}"
        self.endpoint_config_prefix = f"arn:aws:sagemaker:{self.region}:{self.account}:endpoint-config/{self.endpoint_name}"
        # The batch inference workflow and the role its jobs run as.
        (batch_id, batch_machine) = policies.only("batch-inference", "AWS::StepFunctions::StateMachine")
        self.batch_workflow = policies.resolve("batch-inference", batch_machine["Properties"]["RoleArn"])
        self.batch_processing_role = policies.role_trusted_by("batch-inference", "sagemaker.amazonaws.com")
        self.batch_repository = policies.arn("storage", self._logical_id("storage", "AWS::ECR::Repository", "BatchInferenceImages"))
        self.artifacts_bucket = self._bucket("Artifacts")
        sagemaker = f"arn:aws:sagemaker:{self.region}:{self.account}"
        # <prefix>-<MD5 of the execution ARN>-<step>, as the workflow names them.
        self.batch_jobs = [f"{sagemaker}:processing-job/{self.prefix}-0cc175b9c0f1b6a831c399e269772661-{s}" for s in ("pre", "infer", "post")]
        self.batch_code = [f"{self.artifacts_bucket}/batch-inference/code/{script}" for script in ("preprocessing.py", "predict.py", "postprocessing.py")]
        # Studio's image builds with sm-docker: what it names at random, within this domain's prefix.
        domain_id = policies.resolve("studio", {"Fn::GetAtt": [policies.only("studio", "AWS::SageMaker::Domain")[0], "DomainId"]})
        self.image_build_role = policies.role_trusted_by("studio", "codebuild.amazonaws.com")
        self.studio_build_project = f"arn:aws:codebuild:{self.region}:{self.account}:project/sagemaker-studio-{domain_id}-someone-AbCdEfGhIjKlMnOp"
        self.studio_build_logs = f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/codebuild/sagemaker-studio-{domain_id}-someone-AbCdEfGhIjKlMnOp"
        self.build_context = f"{self.artifacts_bucket}/codebuild-sagemaker-container-AbCdEfGhIjKlMnOp.zip"
        self.reviewer = REVIEWER.format(account=self.account)
        self.roles = [
            policies.arn(stack, logical_id)
            for stack, template in policies.templates.items()
            for logical_id, r in template["Resources"].items()
            if r["Type"] == "AWS::IAM::Role"
        ]

        self.step_scripts: list[str] = []
        self.model_artifacts: list[str] = []
        self.inference_code: list[str] = []
        # The same, by the model whose pipeline_code/ folder they come from.
        self.scripts_of: dict[str, list[str]] = {}
        self.artifacts_of: dict[str, list[str]] = {}
        self.inference_code_of: dict[str, list[str]] = {}
        ec2 = f"arn:aws:ec2:{self.region}:{self.account}"
        # A network interface SageMaker creates for a job, and a subnet that is not the environment's.
        self.job_network: list[str] = [f"{ec2}:network-interface/eni-0123456789abcdef0"]
        self.foreign_subnet = f"{ec2}:subnet/subnet-0fffffffffffffff0"
        for pipeline in policies.config.deployed_pipelines():
            owner = policies.config.pipeline_model(pipeline).name
            steps = _steps(policies.pipeline_definition(pipeline))
            scripts = [
                _object_arn(i["S3Input"]["S3Uri"])
                for step in steps
                if step["Type"] == "Processing"
                for i in step["Arguments"]["ProcessingInputs"]
                if i["InputName"] == "code"
            ]
            # What the jobs attach network interfaces to (VpcOnly environments).
            self.job_network += [
                f"{ec2}:{kind}/{value}"
                for step in steps
                for vpc in [(step["Arguments"].get("NetworkConfig") or {}).get("VpcConfig") or step["Arguments"].get("VpcConfig")]
                if vpc
                for kind, key in (("subnet", "Subnets"), ("security-group", "SecurityGroupIds"))
                for value in vpc[key]
            ]
            trainings = [step["Arguments"] for step in steps if step["Type"] == "Training"]
            scripts += [
                _object_arn(t["HyperParameters"]["sagemaker_submit_directory"].strip('"'))
                for t in trainings
                if "sagemaker_submit_directory" in t.get("HyperParameters", {})
            ]
            self.step_scripts += scripts
            self.scripts_of.setdefault(owner, []).extend(scripts)
            # What SageMaker writes for a training job: <output path>/<job name>/output/model.tar.gz.
            artifacts = [
                _object_arn(f"{_join(t['OutputDataConfig']['S3OutputPath'])}/pipelines-0a1b2c3d-Train-x1y2z3/output/model.tar.gz")
                for t in trainings
            ]
            self.model_artifacts += artifacts
            self.artifacts_of.setdefault(owner, []).extend(artifacts)
            for step in steps:
                if step["Type"] == "RegisterModel":
                    for container in step["Arguments"]["InferenceSpecification"]["Containers"]:
                        code = container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]
                        # A local path is inside the model artifact, which SageMaker extracts to /opt/ml/model.
                        inference_code = [_object_arn(code)] if code.startswith("s3://") else artifacts
                        self.inference_code += inference_code
                        self.inference_code_of.setdefault(owner, []).extend(inference_code)
        # The model keeping the environment's names: the one the unqualified names above are about.
        self.own = next(unit.name for unit in units.values() if unit.environment_names)
        # Where the promotion function copies the versions of each model it promotes into this environment.
        self.promoted_copy_of = {
            unit.name: f"{self.artifacts_bucket}/{promoted_artifacts_prefix(self.prefix)}{unit.name}/staging/v3/model/model.tar.gz" for unit in units.values()
        }
        self.step_scripts = sorted(set(self.step_scripts))
        self.job_network = sorted(set(self.job_network))
        self.job_subnets = [arn for arn in self.job_network if ":subnet/" in arn]
        # The data-quality monitor's role, where config switches monitoring on.
        self.monitor_roles = [
            policies.arn("deployment", logical_id)
            for logical_id, r in policies.templates["deployment"]["Resources"].items()
            if r["Type"] == "AWS::IAM::Role" and "Monitor" in logical_id and "sagemaker.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
        ]

        # Operations: the notify function, the rules and the schedule that invoke it, its dead-letter queue.
        self.notify_role = policies.role_trusted_by("operations", "lambda.amazonaws.com")
        self.notify = policies.arn("operations", policies.only("operations", "AWS::Lambda::Function")[0])
        self.notify_dead_letters = policies.arn("operations", policies.only("operations", "AWS::SQS::Queue")[0])
        self.notify_rules = [
            policies.arn("operations", logical_id)
            for logical_id, r in policies.templates["operations"]["Resources"].items()
            if r["Type"] == "AWS::Events::Rule"
        ]
        digest_roles = [
            logical_id
            for logical_id, r in policies.templates["operations"]["Resources"].items()
            if r["Type"] == "AWS::IAM::Role" and "scheduler.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
        ]
        self.digest_role = policies.arn("operations", digest_roles[0]) if digest_roles else None
        pipeline = f"arn:aws:sagemaker:{self.region}:{self.account}:pipeline/{self.prefix}-training"
        self.pipeline, self.pipeline_run = pipeline, f"{pipeline}/execution/0a1b2c3d4e5f"
        artifacts = self._bucket("Artifacts")
        self.evaluation_report = f"{artifacts}/pipelines/{self.prefix}-training/0a1b2c3d4e5f/Evaluate/evaluation/evaluation.json"
        self.deployment_run = f"arn:aws:states:{self.region}:{self.account}:execution:{self.prefix}-canary-deployer:deploy-1"
        # Who answers the deployer's approval, and where the deployer announces what it did.
        self.approver = APPROVER.format(account=self.account)
        self.any_bus_publisher = ANY_BUS_PUBLISHER.format(account=self.account)
        self.announcements = policies.arn("deployment", self._logical_id("deployment", "AWS::Events::EventBus", "CanaryDeployer"))
        self.endpoint_lock = policies.arn("deployment", self._logical_id("deployment", "AWS::DynamoDB::Table", "CanaryDeployer"))

    def _logical_id(self, stack: str, resource_type: str, prefix: str) -> str:
        (logical_id,) = [
            logical_id
            for logical_id, r in self.policies.templates[stack]["Resources"].items()
            if r["Type"] == resource_type and logical_id.startswith(prefix)
        ]
        return logical_id

    def _bucket(self, prefix: str) -> str:
        return self.policies.arn("storage", self._logical_id("storage", "AWS::S3::Bucket", prefix))

    def via(self, service: str) -> dict[str, str]:
        return {"kms:ViaService": f"{service}.{self.region}.amazonaws.com"}


def _deployer(policies: EnvironmentPolicies, name: str) -> tuple[str, str, str]:
    """The role, the ARN and the approval rule's role of the deployer state machine `name` (by name: in
    disposable environments the endpoint clean-up's waiter is a state machine too)."""
    resources = policies.templates["deployment"]["Resources"]
    ((machine_id, machine),) = [
        (logical_id, r) for logical_id, r in resources.items() if r["Type"] == "AWS::StepFunctions::StateMachine" and r["Properties"].get("StateMachineName") == name
    ]
    (target,) = [t for r in resources.values() if r["Type"] == "AWS::Events::Rule" for t in r["Properties"]["Targets"] if t["Arn"] == {"Ref": machine_id}]
    return (
        policies.resolve("deployment", machine["Properties"]["RoleArn"]),
        policies.resolve("deployment", {"Ref": machine_id}),
        policies.resolve("deployment", target["RoleArn"]),
    )


class OtherModel:
    """The environment's model named after itself (the tests' configs have one): its deployer, the role its
    versions are served as, and the names of what it owns."""

    def __init__(self, policies: EnvironmentPolicies, unit) -> None:
        self.name, self.stem = unit.name, unit.stem
        self.deployer, self.state_machine, self.approval_rule_role = _deployer(policies, deployer_name(unit.stem))
        (served_model,) = [
            logical_id
            for logical_id, r in policies.templates["deployment"]["Resources"].items()
            if r["Type"] == "AWS::IAM::Role" and logical_id.startswith(f"Model{unit.name}ServedModelRole")
        ]
        self.served_model = policies.arn("deployment", served_model)
        (pipeline_role,) = [
            logical_id
            for logical_id, r in policies.templates["model-build"]["Resources"].items()
            if r["Type"] == "AWS::IAM::Role" and logical_id.startswith(f"Model{unit.name}PipelineRole")
        ]
        self.pipeline_role = policies.arn("model-build", pipeline_role)
        sagemaker = f"arn:aws:sagemaker:{policies.region}:{policies.account}"
        mode = unit.deployment.serving.mode
        self.endpoint = f"{sagemaker}:endpoint/{serving_endpoint_name(unit.stem, mode)}"
        self.endpoint_config = f"{sagemaker}:endpoint-config/{serving_endpoint_name(unit.stem, mode)}-v1-0a1b2c3d-canary"
        self.model = f"{sagemaker}:model/{serving_model_name_prefix(unit.stem, mode)}-v1"
        self.package = f"{sagemaker}:model-package/{model_package_group_name(unit.stem)}/1"
        self.group = f"{sagemaker}:model-package-group/{model_package_group_name(unit.stem)}"
        self.captures = unit.deployment.data_capture.enabled


def _steps(definition: dict) -> list[dict]:
    steps = []
    for step in definition["Steps"]:
        steps.append(step)
        for branch in ("IfSteps", "ElseSteps"):
            steps += _steps({"Steps": step.get("Arguments", {}).get(branch, [])})
    return steps


def _join(value) -> str:
    """A pipeline ``Std:Join`` with execution variables given sample values."""
    if isinstance(value, str):
        return value
    if "Std:Join" in value:
        return value["Std:Join"]["On"].join(_join(v) for v in value["Std:Join"]["Values"])
    return "exec-0a1b2c3d"


def _object_arn(uri: str) -> str:
    return "arn:aws:s3:::" + uri.removeprefix("s3://")


@dataclass(frozen=True)
class Interaction:
    name: str
    allowed: bool
    requests: Callable[[World], list[Request]]
    # Whether the environment has what the interaction is about (e.g. an optional piece config turns on).
    applies: Callable[[World], bool] = lambda w: True


def _alarm_actions(w: World) -> list[Request]:
    context = {"aws:SourceAccount": w.account}
    return [
        Request("cloudwatch.amazonaws.com", action, w.key, {**context, "aws:SourceArn": alarm})
        for alarm in w.alarms
        for action in ("kms:GenerateDataKey", "kms:Decrypt")
    ]


INTERACTIONS = [
    # Notifications reach the encrypted topic only from the notify function, which writes every message, alarms' included.
    Interaction("notify function publishes to the topic", True, lambda w: [Request(w.notify_role, "sns:Publish", w.topic)]),
    Interaction(
        "notify function uses the topic's key through SNS",
        True,
        lambda w: [Request(w.notify_role, a, w.key, w.via("sns")) for a in ("kms:GenerateDataKey", "kms:Decrypt")],
    ),
    Interaction(
        "nobody publishes to the topic without TLS",
        False,
        lambda w: [Request(w.notify_role, "sns:Publish", w.topic, {"aws:SecureTransport": "false"})],
    ),
    Interaction(
        "the deployer announces on its own event bus, not on the topic",
        True,
        lambda w: [Request(w.deployer, "events:PutEvents", w.announcements)],
    ),
    # One deployment at a time: the endpoint's lock is a conditional write, and a lock whose holder ended is taken over.
    Interaction(
        "the deployer takes the endpoint's lock, checks whether its holder still runs, and releases it at its end",
        True,
        lambda w: [
            Request(w.deployer, "dynamodb:PutItem", w.endpoint_lock),
            Request(w.deployer, "dynamodb:GetItem", w.endpoint_lock),
            Request(w.deployer, "states:DescribeExecution", w.deployment_run),
            Request(w.deployer, "dynamodb:DeleteItem", w.endpoint_lock),
        ],
    ),
    Interaction(
        "nobody else takes, reads or clears the endpoint's lock, and the deployer cannot delete its table",
        False,
        lambda w: [
            *(
                Request(role, action, w.endpoint_lock)
                for role in (w.studio_role, w.pipeline_role, w.notify_role, w.batch_workflow, w.approver, w.reviewer)
                for action in ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem")
            ),
            Request(w.deployer, "dynamodb:DeleteTable", w.endpoint_lock),
        ],
    ),
    # What a promotion from this environment requires: the deployer writes down each release that went live.
    Interaction(
        "the deployer writes a release record into the artifacts bucket, encrypted through S3",
        True,
        lambda w: [
            Request(w.deployer, "s3:PutObject", f"{w.artifacts_bucket}/releases/{w.prefix}-models/v3.json"),
            Request(w.deployer, "kms:GenerateDataKey", w.key, w.via("s3")),
        ],
    ),
    Interaction(
        "the deployer writes nothing else into the artifacts bucket, reads no release record and uses the key outside S3",
        False,
        lambda w: [
            Request(w.deployer, "s3:PutObject", f"{w.artifacts_bucket}/pipelines/{w.prefix}-training/exec-1/Train/output/model.tar.gz"),
            Request(w.deployer, "s3:GetObject", f"{w.artifacts_bucket}/releases/{w.prefix}-models/v3.json"),
            Request(w.deployer, "s3:DeleteObject", f"{w.artifacts_bucket}/releases/{w.prefix}-models/v3.json"),
            Request(w.deployer, "kms:GenerateDataKey", w.key),
        ],
    ),
    Interaction(
        "nobody but the deployer writes a release record",
        False,
        lambda w: [
            Request(role, "s3:PutObject", f"{w.artifacts_bucket}/releases/{w.prefix}-models/v3.json")
            for role in (w.studio_role, w.pipeline_role, w.notify_role, w.batch_workflow, w.served_model, w.reviewer)
        ],
    ),
    Interaction(
        "the deployer reads no other state machine's executions",
        False,
        lambda w: [Request(w.deployer, "states:DescribeExecution", w.deployment_run.replace(f":{w.prefix}-canary-deployer:", ":other-machine:"))],
    ),
    # A forged "rolled back" or "approve?" would reach people as the deployer's word.
    Interaction(
        "nobody but the deployer puts announcements, even with events:PutEvents on every bus",
        False,
        lambda w: [Request(p, "events:PutEvents", w.announcements) for p in (w.any_bus_publisher, w.studio_role, w.pipeline_role, w.notify_role, w.batch_workflow)],
    ),
    Interaction(
        "the deployer cannot publish to the topic or use its key",
        False,
        lambda w: [Request(w.deployer, "sns:Publish", w.topic), Request(w.deployer, "kms:GenerateDataKey", w.key, w.via("sns"))],
    ),
    Interaction(
        "operations rules hand their events to the notify function",
        True,
        lambda w: [Request("events.amazonaws.com", "lambda:InvokeFunction", w.notify, {"aws:SourceArn": rule}) for rule in w.notify_rules],
    ),
    Interaction(
        "other rules cannot invoke the notify function",
        False,
        lambda w: [
            Request("events.amazonaws.com", "lambda:InvokeFunction", w.notify, {"aws:SourceArn": f"arn:aws:events:{w.region}:{w.account}:rule/other"})
        ],
    ),
    Interaction(
        "undeliverable notifications are dead-lettered by the rules and the notify function",
        True,
        lambda w: [
            *(Request("events.amazonaws.com", "sqs:SendMessage", w.notify_dead_letters, {"aws:SourceArn": rule}) for rule in w.notify_rules),
            Request(w.notify_role, "sqs:SendMessage", w.notify_dead_letters),
        ],
    ),
    Interaction(
        "Scheduler asks the notify function for the daily digest",
        True,
        lambda w: [Request(w.digest_role, "lambda:InvokeFunction", w.notify), Request(w.digest_role, "sqs:SendMessage", w.notify_dead_letters)],
        applies=lambda w: w.digest_role is not None,
    ),
    Interaction(
        "notify function reads what its messages report",
        True,
        lambda w: [
            Request(w.notify_role, "sagemaker:ListPipelineExecutions", w.pipeline),
            Request(w.notify_role, "sagemaker:ListPipelineExecutionSteps", w.pipeline_run),
            Request(w.notify_role, "sagemaker:DescribePipelineExecution", w.pipeline_run),
            Request(w.notify_role, "sagemaker:DescribeModelPackage", w.package),
            Request(w.notify_role, "states:ListExecutions", w.state_machine),
            Request(w.notify_role, "states:DescribeExecution", w.deployment_run),
            Request(w.notify_role, "states:DescribeExecution", w.deployment_run.replace(f":{w.prefix}-canary-deployer:", f":{w.prefix}-batch-inference:")),
        ],
    ),
    Interaction(
        "notify function reads evaluation reports through S3",
        True,
        lambda w: [Request(w.notify_role, "s3:GetObject", w.evaluation_report), Request(w.notify_role, "kms:Decrypt", w.key, w.via("s3"))],
    ),
    Interaction(
        "notify function reads nothing else of the artifacts and cannot use the key directly",
        False,
        lambda w: [*(Request(w.notify_role, "s3:GetObject", a) for a in w.model_artifacts), Request(w.notify_role, "kms:Decrypt", w.key)],
    ),
    Interaction(
        "notify function cannot change what it reports on",
        False,
        lambda w: [
            Request(w.notify_role, "sagemaker:UpdateModelPackage", w.package),
            Request(w.notify_role, "sagemaker:StartPipelineExecution", w.pipeline),
            Request(w.notify_role, "states:StartExecution", w.state_machine),
        ],
    ),
    # SNS decrypts a message before it delivers it to AWS Chatbot, so Chatbot needs no use of the key.
    Interaction("AWS Chatbot cannot use the topic's key", False, lambda w: [Request("chatbot.amazonaws.com", a, w.key) for a in ("kms:Decrypt", "kms:GenerateDataKey")]),
    Interaction("alarms cannot publish to the encrypted topic themselves: the notify function writes up their state changes", False, _alarm_actions),
    Interaction(
        "EventBridge rules cannot publish to the encrypted topic themselves: they hand their events to the notify function",
        False,
        lambda w: [
            Request(
                "events.amazonaws.com",
                action,
                w.key,
                {"aws:SourceAccount": w.account, "aws:SourceArn": f"arn:aws:events:{w.region}:{w.account}:rule/{w.prefix}-notify"},
            )
            for action in ("kms:GenerateDataKey", "kms:Decrypt")
        ],
    ),
    Interaction(
        "other accounts' alarms cannot use the key",
        False,
        lambda w: [
            Request(
                "cloudwatch.amazonaws.com",
                "kms:GenerateDataKey",
                w.key,
                {"aws:SourceAccount": "999999999999", "aws:SourceArn": f"arn:aws:cloudwatch:{w.region}:999999999999:alarm:{w.prefix}-x"},
            )
        ],
    ),
    # Models as units: each model's deployer serves its own versions on its own endpoint, and no other's.
    Interaction(
        "each model's deployer reads its own group's versions, creates its models and updates its own endpoint",
        True,
        lambda w: [
            *(
                Request(deployer, action, resource)
                for deployer, endpoint, model, package in (
                    (w.deployer, w.endpoint, f"arn:aws:sagemaker:{w.region}:{w.account}:model/{w.model_names}-v1", w.package),
                    (w.other.deployer, w.other.endpoint, w.other.model, w.other.package),
                )
                for action, resource in (
                    ("sagemaker:DescribeModelPackage", package),
                    ("sagemaker:CreateModel", model),
                    ("sagemaker:UpdateEndpoint", endpoint),
                )
            ),
            Request(w.other.deployer, "sagemaker:CreateEndpointConfig", w.other.endpoint_config),
            Request(w.other.deployer, "iam:PassRole", w.other.served_model, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        ],
    ),
    Interaction(
        "one model's deployer cannot update, delete or configure the other model's endpoint, create its models, read its versions or pass its role",
        False,
        lambda w: [
            *(Request(w.deployer, action, w.other.endpoint) for action in ("sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities")),
            Request(w.deployer, "sagemaker:CreateEndpointConfig", w.other.endpoint_config),
            Request(w.deployer, "sagemaker:CreateModel", w.other.model),
            Request(w.deployer, "sagemaker:DescribeModelPackage", w.other.package),
            Request(w.deployer, "iam:PassRole", w.other.served_model, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
            *(Request(w.other.deployer, action, w.endpoint) for action in ("sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities")),
            Request(w.other.deployer, "sagemaker:CreateEndpointConfig", f"{w.endpoint_config_prefix}-v1-0a1b2c3d-canary"),
            Request(w.other.deployer, "sagemaker:CreateModel", f"arn:aws:sagemaker:{w.region}:{w.account}:model/{w.model_names}-v1"),
            Request(w.other.deployer, "sagemaker:DescribeModelPackage", w.package),
            Request(w.other.deployer, "iam:PassRole", w.served_model, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        ],
    ),
    Interaction(
        "each model's approval rule starts its own deployer and not the other's",
        True,
        lambda w: [Request(w.approval_rule_role, "states:StartExecution", w.state_machine), Request(w.other.approval_rule_role, "states:StartExecution", w.other.state_machine)],
    ),
    Interaction(
        "no model's approval rule starts the other model's deployer",
        False,
        lambda w: [Request(w.approval_rule_role, "states:StartExecution", w.other.state_machine), Request(w.other.approval_rule_role, "states:StartExecution", w.state_machine)],
    ),
    # The deployer is started by the approval rule and hands the model its role.
    Interaction("approval rule starts the deployer", True, lambda w: [Request(w.approval_rule_role, "states:StartExecution", w.state_machine)]),
    Interaction(
        "deployer passes the served-model role to SageMaker",
        True,
        lambda w: [Request(w.deployer, "iam:PassRole", w.served_model, {"iam:PassedToService": "sagemaker.amazonaws.com"})],
    ),
    # The served model starts with its own, read-only role.
    Interaction(
        "each model's served versions read its artifacts, trained here or promoted",
        True,
        lambda w: [
            Request(role, "s3:GetObject", a)
            for role, model in ((w.served_model, w.own), (w.other.served_model, w.other.name))
            for a in (*w.artifacts_of.get(model, []), w.promoted_copy_of[model])
        ],
    ),
    Interaction(
        "each model's served versions read its inference code",
        True,
        lambda w: [
            Request(role, "s3:GetObject", c)
            for role, model in ((w.served_model, w.own), (w.other.served_model, w.other.name))
            for c in w.inference_code_of.get(model, [])
        ],
    ),
    Interaction(
        "a model's served versions read no other model's artifacts",
        False,
        lambda w: [
            Request(role, "s3:GetObject", a)
            for role, other in ((w.served_model, w.other.name), (w.other.served_model, w.own))
            for a in (*w.artifacts_of.get(other, []), w.promoted_copy_of[other])
        ],
    ),
    Interaction("served model decrypts its artifact through S3", True, lambda w: [Request(w.served_model, "kms:Decrypt", w.key, w.via("s3"))]),
    # SageMaker writes the endpoint's captured traffic as the model's execution role, encrypted with the key.
    Interaction(
        "served model writes its endpoint's captured traffic",
        True,
        lambda w: [Request(w.served_model, "s3:PutObject", w.captured_traffic)],
        applies=lambda w: w.captures,
    ),
    Interaction(
        "the other model's served versions write its own endpoint's captured traffic",
        True,
        lambda w: [Request(w.other.served_model, "s3:PutObject", w.other_captured_traffic)],
        applies=lambda w: w.other.captures,
    ),
    Interaction(
        "a model's served versions write no other model's captured traffic",
        False,
        lambda w: [Request(w.served_model, "s3:PutObject", w.other_captured_traffic), Request(w.other.served_model, "s3:PutObject", w.captured_traffic)],
    ),
    Interaction(
        "served model encrypts captured traffic with the key through S3",
        True,
        lambda w: [Request(w.served_model, "kms:GenerateDataKey", w.key, w.via("s3"))],
        applies=lambda w: w.captures,
    ),
    # A serverless endpoint captures nothing, so nothing grants its model a place to write captured traffic.
    Interaction(
        "served model writes no captured traffic where the endpoint captures none",
        False,
        lambda w: [Request(w.served_model, "s3:PutObject", w.captured_traffic)],
        applies=lambda w: not w.captures,
    ),
    Interaction(
        "served model writes nothing else in the artifacts bucket",
        False,
        lambda w: [
            Request(w.served_model, "s3:PutObject", f"{w.artifacts_bucket}/{path}")
            for path in (f"pipelines/{w.prefix}-training/model.tar.gz", "data-capture/other-endpoint/blue/x.jsonl")
        ],
    ),
    Interaction(
        "served model pulls images of the inference repository",
        True,
        lambda w: [Request(w.served_model, a, w.inference_repository) for a in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")],
    ),
    Interaction(
        "served model writes its endpoint's logs",
        True,
        lambda w: [
            Request(
                w.served_model,
                "logs:PutLogEvents",
                f"arn:aws:logs:{w.region}:{w.account}:log-group:/aws/sagemaker/Endpoints/{w.endpoint_name}:log-stream:blue/i-0123",
            )
        ],
    ),
    Interaction(
        "served model cannot start jobs",
        False,
        lambda w: [Request(w.served_model, "sagemaker:CreateTrainingJob", f"arn:aws:sagemaker:{w.region}:{w.account}:training-job/x")],
    ),
    Interaction("served model cannot write training data", False, lambda w: [Request(w.served_model, "s3:PutObject", f"{w.data_bucket}/training/x.csv")]),
    Interaction("served model cannot approve model packages", False, lambda w: [Request(w.served_model, "sagemaker:UpdateModelPackage", w.package)]),
    Interaction("served model cannot use the key directly", False, lambda w: [Request(w.served_model, "kms:Decrypt", w.key)]),
    # Model building.
    # Uploads start pipelines through the debounce function and a one-time Scheduler schedule per pipeline.
    Interaction(
        "upload rules invoke the debounce function",
        True,
        lambda w: [Request("events.amazonaws.com", "lambda:InvokeFunction", w.debounce, {"aws:SourceArn": rule}) for rule in w.upload_rules],
    ),
    Interaction(
        "other rules cannot invoke the debounce function",
        False,
        lambda w: [
            Request("events.amazonaws.com", "lambda:InvokeFunction", w.debounce, {"aws:SourceArn": f"arn:aws:events:{w.region}:{w.account}:rule/other"})
        ],
    ),
    Interaction(
        "debounce function moves the start schedule of each pipeline that listens to uploads",
        True,
        lambda w: [
            Request(w.debounce_role, a, f"{w.schedules}/{name}")
            for name in w.upload_pipelines
            for a in ("scheduler:GetSchedule", "scheduler:CreateSchedule", "scheduler:UpdateSchedule")
        ],
    ),
    Interaction(
        "debounce function hands the start role to Scheduler only",
        True,
        lambda w: [Request(w.debounce_role, "iam:PassRole", w.start_role, {"iam:PassedToService": "scheduler.amazonaws.com"})],
    ),
    Interaction(
        "debounce function cannot start pipelines itself",
        False,
        lambda w: [Request(w.debounce_role, "sagemaker:StartPipelineExecution", pipeline) for pipeline in w.started_pipelines],
    ),
    Interaction(
        "Scheduler starts every pipeline config gives a trigger",
        True,
        lambda w: [Request(w.start_role, "sagemaker:StartPipelineExecution", pipeline) for pipeline in w.started_pipelines],
    ),
    Interaction(
        "Scheduler cannot start other environments' pipelines",
        False,
        lambda w: [Request(w.start_role, "sagemaker:StartPipelineExecution", f"arn:aws:sagemaker:{w.region}:{w.account}:pipeline/other-training")],
    ),
    Interaction(
        "failed starts are dead-lettered by the rules, the debounce function and Scheduler",
        True,
        lambda w: [
            *(Request("events.amazonaws.com", "sqs:SendMessage", w.dead_letters, {"aws:SourceArn": rule}) for rule in w.upload_rules),
            Request(w.debounce_role, "sqs:SendMessage", w.dead_letters),
            Request(w.start_role, "sqs:SendMessage", w.dead_letters),
        ],
    ),
    Interaction(
        "each model's pipeline role reads its pipelines' step scripts",
        True,
        lambda w: [
            Request(role, "s3:GetObject", script)
            for role, model in ((w.pipeline_role, w.own), (w.other.pipeline_role, w.other.name))
            for script in w.scripts_of.get(model, [])
        ],
    ),
    Interaction(
        "each model's pipeline role writes its own model artifacts",
        True,
        lambda w: [
            Request(role, "s3:PutObject", artifact)
            for role, model in ((w.pipeline_role, w.own), (w.other.pipeline_role, w.other.name))
            for artifact in w.artifacts_of.get(model, [])
        ],
    ),
    Interaction(
        "a model's pipeline role writes no other model's artifacts, and no promoted copies",
        False,
        lambda w: [
            Request(role, action, artifact)
            for role, other in ((w.pipeline_role, w.other.name), (w.other.pipeline_role, w.own))
            for artifact in (*w.artifacts_of.get(other, []), *w.promoted_copy_of.values())
            for action in ("s3:PutObject", "s3:DeleteObject")
        ],
    ),
    Interaction(
        "pipeline role reads and writes with the key through S3",
        True,
        lambda w: [Request(w.pipeline_role, a, w.key, w.via("s3")) for a in ("kms:GenerateDataKey", "kms:Decrypt")],
    ),
    Interaction(
        "pipeline jobs attach to the subnets and security group their definition names",
        True,
        lambda w: [Request(w.pipeline_role, "ec2:CreateNetworkInterface", arn) for arn in w.job_network],
    ),
    Interaction(
        "pipeline jobs cannot attach to other subnets",
        False,
        lambda w: [Request(w.pipeline_role, "ec2:CreateNetworkInterface", w.foreign_subnet)],
    ),
    Interaction(
        "jobs delete the network interfaces in the environment's subnets",
        True,
        lambda w: [
            Request(role, "ec2:DeleteNetworkInterface", f"arn:aws:ec2:{w.region}:{w.account}:network-interface/eni-0123456789abcdef0", {"ec2:Subnet": subnet})
            for role in (w.pipeline_role, w.batch_processing_role)
            for subnet in w.job_subnets
        ],
        applies=lambda w: bool(w.job_subnets),
    ),
    Interaction(
        "jobs cannot delete network interfaces in other subnets",
        False,
        lambda w: [
            Request(role, "ec2:DeleteNetworkInterface", f"arn:aws:ec2:{w.region}:{w.account}:network-interface/eni-0fffffffffffffff0", {"ec2:Subnet": w.foreign_subnet})
            for role in (w.pipeline_role, w.batch_processing_role, w.studio_role)
        ],
    ),
    Interaction(
        "each model's pipeline role registers versions in its own group",
        True,
        lambda w: [
            *(Request(w.pipeline_role, action, arn) for action, arn in (("sagemaker:CreateModelPackage", w.package), ("sagemaker:DescribeModelPackageGroup", w.group))),
            *(Request(w.other.pipeline_role, action, arn) for action, arn in (("sagemaker:CreateModelPackage", w.other.package), ("sagemaker:DescribeModelPackageGroup", w.other.group))),
        ],
    ),
    # An approval in a model's group releases the version on that model's endpoint: a pipeline registering into
    # another model's group could put its model on the other's endpoint. IAM authorizes CreateModelPackage on the
    # new version's ARN only (the service authorization reference lists no other resource type for it).
    Interaction(
        "a model's pipeline role registers nothing in another model's group",
        False,
        lambda w: [
            Request(w.pipeline_role, "sagemaker:CreateModelPackage", w.other.package),
            Request(w.other.pipeline_role, "sagemaker:CreateModelPackage", w.package),
        ],
    ),
    # A deployer uses the model it finds under a release's name: a model planted there would be served.
    Interaction(
        "jobs and Studio users create and delete no model under a deployer's names",
        False,
        lambda w: [
            Request(role, action, f"arn:aws:sagemaker:{w.region}:{w.account}:model/{serving_model_name_prefix(stem, mode)}-v{version}")
            for role in (w.pipeline_role, w.other.pipeline_role, w.studio_role)
            for stem in (w.prefix, w.other.stem)
            for mode in ("instances", "serverless")
            for version in (1, 12)
            for action in ("sagemaker:CreateModel", "sagemaker:DeleteModel")
        ],
    ),
    Interaction(
        "jobs and Studio users create and delete the models they name",
        True,
        lambda w: [
            Request(role, action, f"arn:aws:sagemaker:{w.region}:{w.account}:model/{name}")
            for role in (w.pipeline_role, w.other.pipeline_role, w.studio_role)
            for name in ("pipelines-0a1b2c3d4e5f-CreateModel-x1y2z3", f"{w.prefix}-churn-experiment")
            for action in ("sagemaker:CreateModel", "sagemaker:DeleteModel")
        ],
    ),
    Interaction(
        "Studio users read and write training data",
        True,
        lambda w: [Request(w.studio_role, a, f"{w.data_bucket}/training/x.csv") for a in ("s3:GetObject", "s3:PutObject")],
    ),
    Interaction(
        "Studio role reads and writes with the key through S3",
        True,
        lambda w: [Request(w.studio_role, a, w.key, w.via("s3")) for a in ("kms:GenerateDataKey", "kms:Decrypt")],
    ),
    Interaction(
        "Studio's home file system and space volumes use the key through EFS and SageMaker",
        True,
        lambda w: [Request(w.studio_role, a, w.key, w.via(s)) for s in ("elasticfilesystem", "sagemaker") for a in ("kms:GenerateDataKey", "kms:Decrypt")],
    ),
    # The key is used through the services that hold the data, never directly.
    Interaction(
        "builders cannot use the key directly",
        False,
        lambda w: [Request(role, a, w.key) for role in (w.studio_role, w.pipeline_role) for a in ("kms:Decrypt", "kms:GenerateDataKey")],
    ),
    Interaction(
        "no role lets the key be granted to anything but an AWS resource",
        False,
        lambda w: [Request(role, "kms:CreateGrant", w.key, {"kms:GrantIsForAWSResource": "false"}) for role in w.roles],
    ),
    # CreateEndpointConfig with KmsKeyId: SageMaker describes the key and grants its endpoint volumes use of it, as the caller.
    Interaction(
        "deployer lets SageMaker encrypt the endpoint's volumes with the key",
        True,
        lambda w: [
            Request(w.deployer, "kms:DescribeKey", w.key, w.via("sagemaker")),
            Request(w.deployer, "kms:CreateGrant", w.key, {**w.via("sagemaker"), "kms:GrantIsForAWSResource": "true"}),
        ],
        applies=lambda w: not w.serverless,
    ),
    # A serverless variant has no volume to encrypt, so its deployer holds no grant on the key.
    Interaction(
        "a serverless deployer grants nothing on the key",
        False,
        lambda w: [Request(w.deployer, "kms:CreateGrant", w.key, {**w.via("sagemaker"), "kms:GrantIsForAWSResource": "true"})],
        applies=lambda w: w.serverless,
    ),
    # Experiment tracking: the evaluation logs its metrics to the pipeline run (its job's trial component).
    Interaction(
        "pipeline jobs log metrics to their runs",
        True,
        lambda w: [
            Request(
                w.pipeline_role,
                "sagemaker:BatchPutMetrics",
                f"arn:aws:sagemaker:{w.region}:{w.account}:experiment-trial-component/pipelines-0a1b2c3d-evaluate-x1y2z3-aws-processing-job",
            )
        ],
    ),
    Interaction(
        "the training job logs its run to the environment's MLflow",
        True,
        # What train.py calls: its experiment (found by name, or created), then the run, its values, its end.
        lambda w: [
            Request(w.pipeline_role, action, w.tracking_server) for action in w.mlflow_logging
        ],
        applies=lambda w: w.tracking_server is not None,
    ),
    Interaction(
        "pipeline jobs cannot log to another MLflow, nor delete runs on a tracking server",
        False,
        lambda w: [
            *(Request(w.pipeline_role, action, w.other_mlflow) for action in w.mlflow_logging),
            *(Request(w.pipeline_role, action, w.tracking_server) for action in w.mlflow_delete_run),
        ],
    ),
    Interaction(
        "Studio users record runs in the environment's MLflow and open its UI",
        True,
        lambda w: [
            Request(w.studio_role, action, w.tracking_server)
            for action in w.mlflow_studio
        ],
        applies=lambda w: w.tracking_server is not None,
    ),
    Interaction(
        "the tracking server stores artifacts under its prefix, encrypted through S3",
        True,
        lambda w: [
            Request(w.tracking_server_role, "s3:PutObject", f"{w.artifacts_bucket}/mlflow/1/0a1b2c3d/artifacts/model.pkl"),
            Request(w.tracking_server_role, "s3:GetObject", f"{w.artifacts_bucket}/mlflow/1/0a1b2c3d/artifacts/model.pkl"),
            Request(w.tracking_server_role, "kms:GenerateDataKey", w.key, w.via("s3")),
        ],
        applies=lambda w: w.tracking_server is not None,
    ),
    Interaction(
        "the tracking server reads nothing else",
        False,
        lambda w: [
            Request(w.tracking_server_role, "s3:GetObject", f"{w.artifacts_bucket}/pipelines/{w.prefix}-training/model.tar.gz"),
            Request(w.tracking_server_role, "s3:GetObject", f"{w.data_bucket}/training/x.csv"),
        ],
        applies=lambda w: w.tracking_server is not None,
    ),
    # Batch inference: the workflow starts the jobs and hands them their role; the jobs read and write the data.
    Interaction(
        "batch workflow starts, watches, stops and tags this environment's processing jobs",
        True,
        lambda w: [
            Request(w.batch_workflow, action, job)
            for job in w.batch_jobs
            for action in (
                "sagemaker:CreateProcessingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:AddTags",
                "sagemaker:ListTags",
            )
        ],
    ),
    Interaction(
        "batch workflow looks a job up by name after a create that answered an error",
        True,
        lambda w: [Request(w.batch_workflow, "sagemaker:ListProcessingJobs", "*")],
    ),
    # CreateProcessingJob/CreateTrainingJob with VolumeKmsKeyId: SageMaker describes the key and creates a grant
    # on it for the job's volumes, as whoever starts the job.
    Interaction(
        "roles that start jobs with encrypted volumes let SageMaker encrypt them with the key",
        True,
        lambda w: [
            request
            for role in (w.batch_workflow, w.pipeline_role, w.studio_role, *w.monitor_roles)
            for request in (
                Request(role, "kms:DescribeKey", w.key, w.via("sagemaker")),
                Request(role, "kms:CreateGrant", w.key, {**w.via("sagemaker"), "kms:GrantIsForAWSResource": "true"}),
            )
        ],
    ),
    Interaction(
        "roles that start jobs cannot grant the key through other services",
        False,
        lambda w: [
            Request(role, "kms:CreateGrant", w.key, {**w.via("s3"), "kms:GrantIsForAWSResource": "true"})
            for role in (w.batch_workflow, w.pipeline_role, w.studio_role, *w.monitor_roles)
        ],
    ),
    Interaction(
        "only the batch workflow hands the processing role to SageMaker: builders cannot run their own code as it",
        False,
        lambda w: [
            Request(role, "iam:PassRole", w.batch_processing_role, {"iam:PassedToService": "sagemaker.amazonaws.com"})
            for role in (w.studio_role, w.pipeline_role)
        ],
    ),
    Interaction(
        "batch workflow cannot start other jobs",
        False,
        lambda w: [
            Request(w.batch_workflow, "sagemaker:CreateProcessingJob", f"arn:aws:sagemaker:{w.region}:{w.account}:processing-job/other-x-pre"),
            Request(w.batch_workflow, "sagemaker:CreateTrainingJob", f"arn:aws:sagemaker:{w.region}:{w.account}:training-job/{w.prefix}-x"),
        ],
    ),
    Interaction(
        "batch workflow sets up the rule that tells .sync its jobs ended",
        True,
        lambda w: [
            Request(w.batch_workflow, action, f"arn:aws:events:{w.region}:{w.account}:rule/StepFunctionsGetEventsForSageMakerProcessingJobsRule")
            for action in ("events:PutRule", "events:PutTargets", "events:DescribeRule")
        ],
    ),
    Interaction(
        "batch workflow passes the processing role to SageMaker",
        True,
        lambda w: [Request(w.batch_workflow, "iam:PassRole", w.batch_processing_role, {"iam:PassedToService": "sagemaker.amazonaws.com"})],
    ),
    Interaction(
        "batch workflow passes no other role, and to no other service",
        False,
        lambda w: [
            Request(w.batch_workflow, "iam:PassRole", w.pipeline_role, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
            Request(w.batch_workflow, "iam:PassRole", w.batch_processing_role, {"iam:PassedToService": "ec2.amazonaws.com"}),
        ],
    ),
    Interaction(
        "batch workflow reads the versions of each of this environment's models",
        True,
        lambda w: [Request(w.batch_workflow, "sagemaker:DescribeModelPackage", package) for package in (w.package, w.other.package)],
    ),
    Interaction(
        "batch workflow cannot read another environment's model packages",
        False,
        lambda w: [
            Request(w.batch_workflow, "sagemaker:DescribeModelPackage", package.replace(f":model-package/{w.prefix}-", ":model-package/other-"))
            for package in (w.package, w.other.package)
        ],
    ),
    Interaction(
        "batch jobs read their inputs, their code and the model artifacts",
        True,
        lambda w: [
            Request(w.batch_processing_role, "s3:GetObject", obj)
            for obj in (f"{w.data_bucket}/batch/2026-11-25/part-0.csv", *w.batch_code, *w.model_artifacts)
        ],
    ),
    Interaction(
        "batch jobs write their results and intermediate files under the batch output and work prefixes, with the key",
        True,
        lambda w: [
            Request(w.batch_processing_role, "s3:PutObject", f"{w.artifacts_bucket}/batch-inference/output/2026-11-25/predictions.csv"),
            Request(w.batch_processing_role, "s3:PutObject", f"{w.artifacts_bucket}/batch-inference/work/0cc175b9c0f1b6a831c399e269772661/predictions/part-0.csv"),
            *(Request(w.batch_processing_role, a, w.key, w.via(s)) for s in ("s3", "sagemaker") for a in ("kms:GenerateDataKey", "kms:Decrypt")),
        ],
    ),
    Interaction(
        "batch jobs cannot write training data, which starts pipelines",
        False,
        lambda w: [Request(w.batch_processing_role, "s3:PutObject", f"{w.data_bucket}/training/x.csv")],
    ),
    Interaction(
        "batch jobs cannot write registered model artifacts, served inference code or the deployed batch code",
        False,
        lambda w: [
            Request(w.batch_processing_role, action, obj)
            for obj in (*w.model_artifacts, *w.inference_code, *w.batch_code, *w.step_scripts)
            for action in ("s3:PutObject", "s3:DeleteObject")
        ],
    ),
    Interaction(
        "batch jobs pull the custom inference image",
        True,
        lambda w: [
            Request(w.batch_processing_role, a, w.batch_repository) for a in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
        ]
        + [Request(w.batch_processing_role, "ecr:GetAuthorizationToken", "*")],
    ),
    Interaction(
        "batch jobs cannot push images, and served models cannot pull the batch image",
        False,
        lambda w: [
            Request(w.batch_processing_role, "ecr:PutImage", w.batch_repository),
            Request(w.served_model, "ecr:BatchGetImage", w.batch_repository),
        ],
    ),
    Interaction(
        "batch jobs write their logs",
        True,
        lambda w: [
            Request(
                w.batch_processing_role,
                "logs:PutLogEvents",
                f"arn:aws:logs:{w.region}:{w.account}:log-group:/aws/sagemaker/ProcessingJobs:log-stream:{w.prefix}-0cc175b9c0f1b6a831c399e269772661-infer/algo-1",
            )
        ],
    ),
    Interaction("batch jobs cannot use the key directly", False, lambda w: [Request(w.batch_processing_role, "kms:Decrypt", w.key)]),
    Interaction(
        "builders cannot change the delivered batch code, which every batch run executes",
        False,
        lambda w: [Request(role, action, code) for role in (w.studio_role, w.pipeline_role) for code in w.batch_code for action in ("s3:PutObject", "s3:DeleteObject")],
    ),
    Interaction(
        "Studio users push the batch inference image",
        True,
        lambda w: [Request(w.studio_role, a, w.batch_repository) for a in ("ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:CompleteLayerUpload")],
    ),
    Interaction(
        "Studio users build an image with sm-docker: upload the context, run a build as the build role, follow its logs",
        True,
        lambda w: [
            *(Request(w.studio_role, a, w.build_context) for a in ("s3:PutObject", "s3:DeleteObject")),
            *(Request(w.studio_role, a, w.key, w.via("s3")) for a in ("kms:GenerateDataKey", "kms:Decrypt")),
            *(Request(w.studio_role, a, w.studio_build_project) for a in ("codebuild:CreateProject", "codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:DeleteProject")),
            Request(w.studio_role, "iam:PassRole", w.image_build_role, {"iam:PassedToService": "codebuild.amazonaws.com"}),
            *(Request(w.studio_role, a, w.batch_repository) for a in ("ecr:CreateRepository", "ecr:DescribeRepositories")),
            Request(w.studio_role, "logs:GetLogEvents", f"{w.studio_build_logs}:log-stream:0a1b2c3d"),
        ],
    ),
    Interaction(
        "the Studio image build reads its context, writes its logs and pushes to the environment's repositories",
        True,
        lambda w: [
            Request(w.image_build_role, "s3:GetObject", w.build_context),
            Request(w.image_build_role, "kms:Decrypt", w.key, w.via("s3")),
            Request(w.image_build_role, "logs:CreateLogGroup", w.studio_build_logs),
            *(Request(w.image_build_role, a, f"{w.studio_build_logs}:log-stream:0a1b2c3d") for a in ("logs:CreateLogStream", "logs:PutLogEvents")),
            Request(w.image_build_role, "ecr:GetAuthorizationToken", "*"),
            *(
                Request(w.image_build_role, a, repository)
                for repository in (w.batch_repository, w.inference_repository)
                for a in ("ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage")
            ),
        ],
    ),
    Interaction(
        "Studio users run no CodeBuild project but sm-docker's in their own domain, and pass the build role to CodeBuild only",
        False,
        lambda w: [
            *(
                Request(w.studio_role, a, f"arn:aws:codebuild:{w.region}:{w.account}:project/{name}")
                for name in (f"{w.prefix}-batch-image-build", "sagemaker-studio-d-otherdomain-someone-AbCd")
                for a in ("codebuild:CreateProject", "codebuild:StartBuild")
            ),
            Request(w.studio_role, "iam:PassRole", w.image_build_role, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
            Request(w.studio_role, "ecr:CreateRepository", f"arn:aws:ecr:{w.region}:{w.account}:repository/sagemaker-studio"),
        ],
    ),
    Interaction(
        "the Studio image build pushes nowhere else and reads nothing else of the artifacts",
        False,
        lambda w: [
            Request(w.image_build_role, "ecr:PutImage", f"arn:aws:ecr:{w.region}:{w.account}:repository/sagemaker-studio"),
            Request(w.image_build_role, "s3:GetObject", f"{w.artifacts_bucket}/pipelines/{w.prefix}-training/model.tar.gz"),
            Request(w.image_build_role, "s3:PutObject", w.build_context),
            *(Request(w.image_build_role, "s3:PutObject", code) for code in w.batch_code),
            Request(w.image_build_role, "kms:Decrypt", w.key),
        ],
    ),
    # Approving a model deploys it: that is a reviewer's permission, not a builder's.
    Interaction(
        "builders cannot approve model packages",
        False,
        lambda w: [Request(role, "sagemaker:UpdateModelPackage", w.package) for role in (w.studio_role, w.pipeline_role)],
    ),
    Interaction("reviewer approves the environment's model packages", True, lambda w: [Request(w.reviewer, "sagemaker:UpdateModelPackage", w.package)]),
    # The deployment gate: the token is only in the waiting execution's history; reading it and answering is the approver's permission.
    Interaction(
        "approver reads the waiting deployment and answers it",
        True,
        lambda w: [
            Request(w.approver, "states:ListExecutions", w.state_machine),
            Request(w.approver, "states:GetExecutionHistory", w.deployment_run),
            Request(w.approver, "states:SendTaskSuccess", "*"),
            Request(w.approver, "states:SendTaskFailure", "*"),
        ],
    ),
    Interaction(
        "approver cannot read other state machines' executions",
        False,
        lambda w: [Request(w.approver, "states:GetExecutionHistory", w.deployment_run.replace(f":{w.prefix}-canary-deployer:", ":other-machine:"))],
    ),
    Interaction(
        "builders and jobs cannot read the approval request or answer it",
        False,
        lambda w: [
            Request(role, action, resource)
            for role in (w.studio_role, w.pipeline_role, w.notify_role)
            for action, resource in (("states:GetExecutionHistory", w.deployment_run), ("states:SendTaskSuccess", "*"), ("states:SendTaskFailure", "*"))
        ],
    ),
    Interaction(
        "reviewer sees which version the endpoint serves",
        True,
        lambda w: [
            Request(w.reviewer, "sagemaker:DescribeEndpoint", w.endpoint),
            Request(w.reviewer, "sagemaker:DescribeEndpointConfig", f"{w.endpoint_config_prefix}-v3-1a2b3c4d"),
        ],
    ),
    Interaction(
        "reviewer cannot change what the endpoint serves",
        False,
        lambda w: [
            Request(w.reviewer, action, w.endpoint) for action in ("sagemaker:UpdateEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities", "sagemaker:DeleteEndpoint")
        ],
    ),
    # Draft pipelines (mlops pipeline run --draft) run as the pipeline role, where config allows them.
    Interaction(
        "Studio users create and start their draft pipelines",
        True,
        lambda w: [Request(w.studio_role, action, w.draft_pipeline) for action in ("sagemaker:CreatePipeline", "sagemaker:UpdatePipeline", "sagemaker:StartPipelineExecution")],
        applies=lambda w: w.drafts,
    ),
    Interaction(
        "Studio users let their draft pipelines run as the pipeline role",
        True,
        lambda w: [Request(w.studio_role, "iam:PassRole", w.pipeline_role, {"iam:PassedToService": "sagemaker.amazonaws.com"})],
        applies=lambda w: w.drafts,
    ),
    Interaction(
        "Studio users cannot pass the pipeline role to any other service",
        False,
        lambda w: [Request(w.studio_role, "iam:PassRole", w.pipeline_role, {"iam:PassedToService": "lambda.amazonaws.com"})],
        applies=lambda w: w.drafts,
    ),
    Interaction(
        "no draft pipeline outside the draft environments",
        False,
        lambda w: [Request(w.studio_role, action, w.draft_pipeline) for action in ("sagemaker:CreatePipeline", "sagemaker:UpdatePipeline", "sagemaker:StartPipelineExecution")]
        + [Request(w.studio_role, "iam:PassRole", w.pipeline_role, {"iam:PassedToService": "sagemaker.amazonaws.com"})],
        applies=lambda w: not w.drafts,
    ),
    Interaction(
        "reviewer cannot approve another environment's model packages",
        False,
        lambda w: [Request(w.reviewer, "sagemaker:UpdateModelPackage", w.package.replace(f"/{w.prefix}-models/", "/other-models/"))],
    ),
]

_decisions: dict[str, dict[str, list[Decision]]] = {}
_not_applicable: dict[str, set[str]] = {}


def decisions(synthesized: Synthesized, environment: str) -> dict[str, list[Decision]]:
    """Every interaction's decisions in `environment`, from one run of the evaluator per environment."""
    if environment not in _decisions:
        world = World(EnvironmentPolicies(synthesized, environment))
        _not_applicable[environment] = {interaction.name for interaction in INTERACTIONS if not interaction.applies(world)}
        reviewer = [(f"{world.prefix}-model-reviewer", world.policies.managed_policy_named(f"{world.prefix}-model-reviewer"))]
        approver = [(f"{world.prefix}-deployment-approver", world.policies.managed_policy_named(f"{world.prefix}-deployment-approver"))]
        any_bus = [("put-events-anywhere", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}]})]
        rows = [(interaction.name, request) for interaction in INTERACTIONS if interaction.applies(world) for request in interaction.requests(world)]
        decided = world.policies.decide(
            [request for _, request in rows], identity_policies={world.reviewer: reviewer, world.approver: approver, world.any_bus_publisher: any_bus}
        )
        _decisions[environment] = {interaction.name: [] for interaction in INTERACTIONS if interaction.applies(world)}
        for (name, _), decision in zip(rows, decided, strict=True):
            _decisions[environment][name].append(decision)
    return _decisions[environment]


@pytest.mark.parametrize("interaction", INTERACTIONS, ids=[i.name for i in INTERACTIONS])
def test_runtime_interaction_is_allowed_or_denied_as_aws_must(synthesized: Synthesized, environment, interaction):
    if interaction.name not in decisions(synthesized, environment):
        pytest.skip(f"{environment} has nothing this interaction is about")
    decided = decisions(synthesized, environment)[interaction.name]
    if interaction.name in _not_applicable[environment]:
        pytest.skip(f"{environment} has nothing this interaction is about")
    wrong = [d for d in decided if d.allowed != interaction.allowed or d.result == "Error"]

    assert decided, f"{interaction.name}: no request to decide"
    if wrong:
        expected = "allowed" if interaction.allowed else "denied"
        pytest.fail(f"{interaction.name} must be {expected}:\n" + "\n".join(d.explain() for d in wrong), pytrace=False)


@pytest.mark.parametrize("interaction", INTERACTIONS, ids=[i.name for i in INTERACTIONS])
def test_every_request_context_key_applies_to_its_action(synthesized: Synthesized, environment, interaction):
    decided = decisions(synthesized, environment).get(interaction.name, [])
    ignored = {(d.request.action, key) for d in decided for key in d.ignored_context_keys if key in d.request.context}

    assert not ignored, f"{interaction.name}: context keys the action never carries: {sorted(ignored)}"
