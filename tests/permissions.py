"""Who may do what in one synthesized environment, decided by a real IAM policy evaluator.

The decisions are made by ``@cloud-copilot/iam-simulate`` (pinned in package.json, run by
``tests/iam_simulate.mjs``), a maintained simulator of AWS's request evaluation: action and resource
wildcards, every condition operator (with IfExists, ForAnyValue/ForAllValues), explicit Deny over any
Allow, resource policies, and KMS's rule that the key policy must allow a request, either naming the
caller or trusting the account, in which case the caller's identity policy must allow it too. It also
refuses unknown actions and resource ARNs of the wrong type for an action. The Python candidates do not
fit: moto's access control evaluates only StringEquals (other operators pass, and a failed condition
on an Allow counts as a Deny), and principalmapper's simulator has had no release since 2022.

This module only gathers, from the templates of every stack of the environment, a principal's identity
policies (inline, attached, and managed policies of other stacks) and the resource policy of what it
calls (key policy, topic policy, bucket policy, queue policy, event bus policy, model package group policy, a function's permissions), with CloudFormation values (``Ref``, ``Fn::GetAtt``,
``Fn::Join``, ``Fn::Sub``, ``Fn::GetStackOutput``) resolved by ``tests.behaviour.sfn_harness.resolve``
to made-up physical names that are consistent across the stacks.

A decision depends only on the simulation (policies, request, context) and on the simulator, so each is kept
in `.cache/iam-decisions/<simulator>/` by the digest of its simulation and read back instead of run again
(starting node and the simulator costs more than deciding); <simulator> digests the script, the installed
node packages and node, and a change to any of them starts a new folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import installed
from tests.behaviour.sfn_harness import resolve
from tests.kept_results import digest_files, folder_for, write_atomically
from tests.synth import STACKS, Synthesized

ROOT = Path(__file__).resolve().parent.parent
SIMULATOR = Path(__file__).resolve().parent / "iam_simulate.mjs"
# <simulator digest>/<digest of a simulation>.json: the simulator's decision on one simulation.
KNOWN_DECISIONS = ROOT / ".cache" / "iam-decisions"
# Every call here goes over TLS; the buckets and the topic deny anything else.
COMMON_CONTEXT = {"aws:SecureTransport": "true"}
# The AWS managed policies the app attaches (through aws-cdk-lib's Lambda functions), as AWS publishes them.
AWS_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}
        ],
    }
}


def simulate(simulations: list[dict]) -> list[dict]:
    """The simulator's decision on each simulation, in order, from one run of it."""
    completed = subprocess.run(["node", str(SIMULATOR)], input=json.dumps(simulations), capture_output=True, text=True, cwd=ROOT)
    if completed.returncode != 0:
        raise RuntimeError(f"the policy evaluator failed: {completed.stderr}")
    return json.loads(completed.stdout)


def simulate_each_once(simulations: list[dict]) -> list[dict]:
    """`simulate(simulations)`, where a simulation the same simulator decided before (its decision kept in
    `known_decisions()`) is not run again; the decisions of the others are kept there for the next time."""
    known = known_decisions()
    known.mkdir(parents=True, exist_ok=True)
    paths = [known / f"{hashlib.sha256(json.dumps(simulation, sort_keys=True).encode()).hexdigest()}.json" for simulation in simulations]
    decided: dict[Path, dict] = {}
    for path in paths:
        with contextlib.suppress(OSError, ValueError):
            decided[path] = json.loads(path.read_text())
    unknown = list({path: simulation for path, simulation in zip(paths, simulations, strict=True) if path not in decided}.items())
    if unknown:
        for (path, _), decision in zip(unknown, simulate([simulation for _, simulation in unknown]), strict=True):
            write_atomically(path, json.dumps(decision).encode())
            decided[path] = decision
    return [decided[path] for path in paths]


@functools.cache
def simulator_digest() -> str:
    """A digest of everything besides a simulation that decides the simulator's answer to it: the script that
    runs it, the node packages installed (npm's record of node_modules, with each package's version and
    integrity hash) and the node that runs them."""
    digest = hashlib.sha256(f"{installed.node_identity()}\0".encode())
    digest_files(digest, [SIMULATOR, ROOT / "node_modules" / ".package-lock.json"])
    return digest.hexdigest()[:32]


def known_decisions() -> Path:
    """The folder of the decisions kept for this simulator; those kept for any other are removed."""
    return folder_for(KNOWN_DECISIONS, simulator_digest())


@dataclass(frozen=True)
class Request:
    """One call: `principal` (a role ARN or a service principal such as ``cloudwatch.amazonaws.com``)
    calls `action` on `resource` with the request context `context`."""

    principal: str
    action: str
    resource: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        context = f" with {dict(self.context)}" if self.context else ""
        return f"{self.principal} {self.action} on {self.resource}{context}"


@dataclass(frozen=True)
class Decision:
    request: Request
    result: str  # Allowed, ImplicitlyDenied, ExplicitlyDenied, or Error (the simulator refused the request)
    identity: str | None
    resource_policy: str | None
    resource_policy_result: str | None
    denied_by: tuple[str, ...]
    ignored_context_keys: tuple[str, ...]
    errors: Any = None

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"

    def explain(self) -> str:
        if self.result == "Error":
            return f"{self.request}: the simulator refused the request: {self.errors}"
        parts = [f"identity policies: {self.identity}"]
        if self.resource_policy:
            parts.append(f"{self.resource_policy}: {self.resource_policy_result}")
        if self.denied_by:
            parts.append(f"explicit deny in {', '.join(self.denied_by)}")
        return f"{self.request}: {self.result} ({'; '.join(parts)})"


class _Attributes(dict):
    """A resource's ``Ref`` and ``Fn::GetAtt`` values; attributes nobody spelled out get a unique stand-in."""

    def __init__(self, logical_id: str, values: dict[str, str]) -> None:
        super().__init__(values)
        self.logical_id = logical_id

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return f"{self.logical_id}.{key}"


class EnvironmentPolicies:
    """The policies of one environment's stacks, resolved, and the means to ask who may do what."""

    def __init__(self, synthesized: Synthesized, environment: str) -> None:
        self.config = synthesized.config(environment)
        self.account, self.region, self.prefix = self.config.account, self.config.region, self.config.prefix
        self.templates = {stack: synthesized.template(environment, stack) for stack in STACKS}
        self._synthesized, self._environment = synthesized, environment
        pseudo = {"AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
        own = {stack: {**pseudo, "AWS::StackId": self._stack_id(stack), **self._physical_names(stack, t)} for stack, t in self.templates.items()}
        outputs = self._outputs(own)
        self._refs = {stack: {**outputs, **refs} for stack, refs in own.items()}
        self._managed_policies = {arn: (arn.rsplit("/", 1)[-1], document) for arn, document in AWS_MANAGED_POLICIES.items()}
        self._managed_policies.update(
            (self.resolve(stack, {"Ref": logical_id}), (f"{stack}/{logical_id}", self.resolve(stack, r["Properties"]["PolicyDocument"])))
            for stack, logical_id, r in self._resources("AWS::IAM::ManagedPolicy")
        )

    def _outputs(self, own: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Every stack's outputs, resolved; an output may pass on another stack's output, so those come first."""
        pending = [(stack, name, output["Value"]) for stack, template in self.templates.items() for name, output in template.get("Outputs", {}).items()]
        outputs: dict[str, Any] = {}
        while pending:
            unresolved = []
            for stack, name, value in pending:
                try:
                    outputs[name] = resolve(value, {**outputs, **own[stack]})
                except KeyError:
                    unresolved.append((stack, name, value))
            if len(unresolved) == len(pending):
                raise KeyError(f"outputs that refer to nothing any stack defines: {[name for _, name, _ in unresolved]}")
            pending = unresolved
        return outputs

    def _stack_id(self, stack: str) -> str:
        # Stack IDs end in a GUID CloudFormation makes up at create time; any fixed one stands for it.
        return f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self._environment}-{stack}/00000000-0000-0000-0000-000000000000"

    # -- reading templates -------------------------------------------------------------------------

    def resolve(self, stack: str, value: Any) -> Any:
        return resolve(value, self._refs[stack])

    def _resources(self, resource_type: str) -> list[tuple[str, str, dict]]:
        return [
            (stack, logical_id, resource)
            for stack, template in self.templates.items()
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == resource_type
        ]

    def only(self, stack: str, resource_type: str) -> tuple[str, dict]:
        """The logical ID and resource of the one resource of `resource_type` in `stack`."""
        (found,) = [(logical_id, r) for s, logical_id, r in self._resources(resource_type) if s == stack]
        return found

    def arn(self, stack: str, logical_id: str) -> str:
        return self.resolve(stack, {"Fn::GetAtt": [logical_id, "Arn"]})

    def role_trusted_by(self, stack: str, service: str) -> str:
        """The ARN of the one role of `stack` that `service` (e.g. ``sagemaker.amazonaws.com``) assumes."""
        (role,) = [
            logical_id
            for s, logical_id, r in self._resources("AWS::IAM::Role")
            if s == stack
            and any(service in json.dumps(st.get("Principal", {})) for st in r["Properties"]["AssumeRolePolicyDocument"]["Statement"])
        ]
        return self.arn(stack, role)

    def pipeline_definition(self, pipeline: str) -> dict:
        """The environment's rendered pipeline definition, with the upsert's deploy-time values filled in."""
        (upsert,) = [
            r
            for stack, _, r in self._resources("Custom::SageMakerPipeline")
            if stack == "model-build" and r["Properties"]["PipelineName"] == f"{self.prefix}-{pipeline}"
        ]
        text = json.dumps(self._synthesized.pipeline_definition(self._environment, pipeline))
        for name, value in self.resolve("model-build", upsert["Properties"]["Substitutions"]).items():
            text = text.replace("${" + name + "}", value)
        return json.loads(text)

    def managed_policy_named(self, name: str) -> dict:
        (document,) = [doc for arn, (_, doc) in self._managed_policies.items() if arn.endswith(f":policy/{name}")]
        return document

    # -- deciding ------------------------------------------------------------------------------------

    def decide(self, requests: list[Request], identity_policies: Mapping[str, list[tuple[str, dict]]] | None = None) -> list[Decision]:
        """Decide every request in one run of the simulator.

        A role's identity policies are read from the templates; `identity_policies` gives them for
        principals that exist outside them (e.g. a reviewer role named in config).
        """
        simulations, resource_policies = [], []
        for request in requests:
            policies = (identity_policies or {}).get(request.principal)
            if policies is None:
                policies = [] if request.principal.endswith(".amazonaws.com") else self._identity_policies(request.principal)
            resource_policy = self._resource_policy(request.resource)
            resource_policies.append(resource_policy[0] if resource_policy else None)
            simulation = {
                "identityPolicies": [{"name": name, "policy": document} for name, document in policies],
                "request": {
                    "principal": request.principal,
                    "action": request.action,
                    "resource": {"resource": request.resource, "accountId": self.resource_account(request.resource)},
                    "contextVariables": {**COMMON_CONTEXT, **_principal_context(request.principal), **request.context},
                },
            }
            if resource_policy:
                simulation["resourcePolicy"] = resource_policy[1]
            simulations.append(simulation)
        return [
            Decision(
                request=request,
                result=raw["result"],
                identity=raw.get("identity"),
                resource_policy=policy_name,
                resource_policy_result=raw.get("resource"),
                denied_by=tuple(raw.get("deniedBy", ())),
                ignored_context_keys=tuple(raw.get("ignoredContextKeys", ())),
                errors=raw.get("errors"),
            )
            for request, policy_name, raw in zip(requests, resource_policies, simulate_each_once(simulations), strict=True)
        ]

    def resource_account(self, resource_arn: str) -> str:
        """The account that owns `resource_arn` (S3 ARNs name none: the environment's)."""
        return _account_of(resource_arn) or self.account

    def _identity_policies(self, role_arn: str) -> list[tuple[str, dict]]:
        matches = [(stack, logical_id, r) for stack, logical_id, r in self._resources("AWS::IAM::Role") if self.arn(stack, logical_id) == role_arn]
        if len(matches) != 1:
            raise LookupError(f"no single role in the templates has the ARN {role_arn}")
        ((stack, logical_id, role),) = matches
        ref = {"Ref": logical_id}
        properties = role["Properties"]
        policies = [(f"{stack}/{logical_id}/{p['PolicyName']}", self.resolve(stack, p["PolicyDocument"])) for p in properties.get("Policies", [])]
        # Policies of other stacks name the role through a stack output: by its resolved name.
        name = self.resolve(stack, ref)
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            policies += [
                (f"{s}/{policy_id}", self.resolve(s, p["Properties"]["PolicyDocument"]))
                for s, policy_id, p in self._resources(kind)
                if (ref in p["Properties"].get("Roles", []) if s == stack else name in self.resolve(s, p["Properties"].get("Roles", [])))
            ]
        for arn in self.resolve(stack, properties.get("ManagedPolicyArns", [])):
            if arn not in self._managed_policies:
                raise LookupError(f"{stack}/{logical_id} attaches {arn}, which no template defines")
            policies.append(self._managed_policies[arn])
        return policies

    def _resource_policy(self, resource_arn: str) -> tuple[str, dict] | None:
        for stack, logical_id, key in self._resources("AWS::KMS::Key"):
            if self.arn(stack, logical_id) == resource_arn:
                return f"key policy of {stack}/{logical_id}", self.resolve(stack, key["Properties"]["KeyPolicy"])
        for stack, logical_id, policy in self._resources("AWS::SNS::TopicPolicy"):
            if resource_arn in self.resolve(stack, policy["Properties"]["Topics"]):
                return f"topic policy {stack}/{logical_id}", self.resolve(stack, policy["Properties"]["PolicyDocument"])
        for stack, logical_id, policy in self._resources("AWS::S3::BucketPolicy"):
            bucket = f"arn:aws:s3:::{self.resolve(stack, policy['Properties']['Bucket'])}"
            if resource_arn == bucket or resource_arn.startswith(f"{bucket}/"):
                return f"bucket policy {stack}/{logical_id}", self.resolve(stack, policy["Properties"]["PolicyDocument"])
        for stack, logical_id, bus in self._resources("AWS::Events::EventBus"):
            if self.arn(stack, logical_id) == resource_arn and "Policy" in bus["Properties"]:
                return f"event bus policy of {stack}/{logical_id}", self.resolve(stack, bus["Properties"]["Policy"])
        for stack, logical_id, policy in self._resources("AWS::SQS::QueuePolicy"):
            queues = [self.resolve(stack, {"Fn::GetAtt": [q["Ref"], "Arn"]}) for q in policy["Properties"]["Queues"]]
            if resource_arn in queues:
                return f"queue policy {stack}/{logical_id}", self.resolve(stack, policy["Properties"]["PolicyDocument"])
        for stack, logical_id, group in self._resources("AWS::SageMaker::ModelPackageGroup"):
            policy = group["Properties"].get("ModelPackageGroupPolicy")
            name = str(self.resolve(stack, group["Properties"]["ModelPackageGroupName"])).lower()
            where = f"arn:aws:sagemaker:{self.resolve(stack, {'Ref': 'AWS::Region'})}:{self.resolve(stack, {'Ref': 'AWS::AccountId'})}"
            if policy and (resource_arn == f"{where}:model-package-group/{name}" or resource_arn.startswith(f"{where}:model-package/{name}/")):
                return f"model package group policy of {stack}/{logical_id}", self.resolve(stack, policy)
        permissions = [
            (stack, logical_id, self.resolve(stack, p["Properties"]))
            for stack, logical_id, p in self._resources("AWS::Lambda::Permission")
        ]
        statements = [
            {
                "Sid": logical_id,
                "Effect": "Allow",
                "Principal": {"Service": permission["Principal"]},
                "Action": permission["Action"],
                "Resource": resource_arn,
                **({"Condition": {"ArnLike": {"aws:SourceArn": permission["SourceArn"]}}} if "SourceArn" in permission else {}),
            }
            for stack, logical_id, permission in permissions
            if permission["FunctionName"] in (resource_arn, resource_arn.rsplit(":", 1)[-1])
        ]
        if statements:
            return f"function policy of {resource_arn.rsplit(':', 1)[-1]}", {"Version": "2012-10-17", "Statement": statements}
        return None

    def _physical_names(self, stack: str, template: dict) -> dict[str, _Attributes]:
        """Stand-ins for what CloudFormation would name each resource, as its Ref and GetAtt values."""
        account, region = self.account, self.region
        names = {}
        for logical_id, resource in template["Resources"].items():
            properties = resource.get("Properties", {})

            def named(key: str, logical_id: str = logical_id, properties: dict = properties) -> str:
                value = properties.get(key)
                return value if isinstance(value, str) else f"{self._environment}-{stack}-{logical_id}".lower()

            kind = resource["Type"]
            if kind == "AWS::IAM::Role":
                name = named("RoleName")
                values = {"Ref": name, "Arn": f"arn:aws:iam::{account}:role/{name}"}
            elif kind == "AWS::IAM::ManagedPolicy":
                arn = f"arn:aws:iam::{account}:policy/{named('ManagedPolicyName')}"
                values = {"Ref": arn, "PolicyArn": arn}
            elif kind == "AWS::S3::Bucket":
                name = named("BucketName")
                values = {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
            elif kind == "AWS::KMS::Key":
                key_id = f"key-{logical_id.lower()}"
                values = {"Ref": key_id, "KeyId": key_id, "Arn": f"arn:aws:kms:{region}:{account}:key/{key_id}"}
            elif kind == "AWS::SNS::Topic":
                arn = f"arn:aws:sns:{region}:{account}:{named('TopicName')}"
                values = {"Ref": arn, "TopicArn": arn}
            elif kind == "AWS::StepFunctions::StateMachine":
                name = named("StateMachineName")
                arn = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
                values = {"Ref": arn, "Arn": arn, "Name": name}
            elif kind == "AWS::CloudWatch::Alarm":
                name = named("AlarmName")
                values = {"Ref": name, "Arn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"}
            elif kind == "AWS::ECR::Repository":
                name = named("RepositoryName")
                values = {"Ref": name, "Arn": f"arn:aws:ecr:{region}:{account}:repository/{name}"}
            elif kind == "AWS::SQS::Queue":
                name = named("QueueName")
                values = {"Ref": f"https://sqs.{region}.amazonaws.com/{account}/{name}", "Arn": f"arn:aws:sqs:{region}:{account}:{name}", "QueueName": name}
            elif kind == "AWS::Lambda::Function":
                name = named("FunctionName")
                values = {"Ref": name, "Arn": f"arn:aws:lambda:{region}:{account}:function:{name}"}
            elif kind == "AWS::Events::EventBus":
                name = named("Name")
                values = {"Ref": name, "Name": name, "Arn": f"arn:aws:events:{region}:{account}:event-bus/{name}"}
            elif kind == "AWS::DynamoDB::Table":
                name = named("TableName")
                values = {"Ref": name, "Arn": f"arn:aws:dynamodb:{region}:{account}:table/{name}"}
            elif kind == "AWS::Events::Rule":
                name = named("Name")
                values = {"Ref": name, "Arn": f"arn:aws:events:{region}:{account}:rule/{name}"}
            elif kind == "Custom::SageMakerPipeline":
                values = {"PipelineArn": f"arn:aws:sagemaker:{region}:{account}:pipeline/{properties['PipelineName']}"}
            elif kind == "AWS::SageMaker::MlflowTrackingServer":
                arn = f"arn:aws:sagemaker:{region}:{account}:mlflow-tracking-server/{properties['TrackingServerName']}"
                values = {"Ref": properties["TrackingServerName"], "TrackingServerArn": arn}
            elif kind == "AWS::SageMaker::MlflowApp":
                # SageMaker generates the app's ID; the name is not part of its ARN.
                arn = f"arn:aws:sagemaker:{region}:{account}:mlflow-app/app-{logical_id.lower()}"
                values = {"Ref": arn, "Arn": arn}
            elif kind == "AWS::Scheduler::ScheduleGroup":
                name = named("Name")
                values = {"Ref": name, "Arn": f"arn:aws:scheduler:{region}:{account}:schedule-group/{name}"}
            else:
                values = {"Ref": f"{logical_id}-ref"}
            names[logical_id] = _Attributes(logical_id, values)
        return names


def _principal_context(principal: str) -> dict[str, str]:
    """What AWS puts in every request of an IAM principal: for a role's session, the role's ARN."""
    return {"aws:PrincipalArn": principal} if principal.startswith("arn:aws:iam::") else {}


def _account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None
