"""Promotion of a model version from one environment (the source) into another (the target), across accounts.

Target side: `ModelPromotion`, a role with a fixed name and the function (functions/model_promotion/)
that checks, copies and registers a version. Source side: `allow_promotion`, the resource-policy
statements on the source's model package group, artifacts bucket and key that let the target's promotion
role read the versions and their artifacts, and nothing more. The source gets no access to the target.

Automatic promotion, optionally: `forward_releases` sends the source deployer's release announcements to
the target's promotion bus, where `ModelPromotion.promote_automatically` starts the function on them. The
function checks the version as for a promotion someone asked for; the event only says which version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops_constructs.canary_deployer.states import DEPLOYMENT_EVENT
from mlops_constructs.compliance import acknowledge, acknowledge_wildcard_resources
from mlops_constructs.dead_letter_alarm import dead_letter_alarm
from mlops_constructs.function_code import platform_function

# What the canary deployer announces when a version goes live: "promoted" after a passed canary (or
# SageMaker's guarded release), "released" for the first release on a new endpoint.
RELEASE_ANNOUNCEMENTS = ("promoted", "released")


def release_announcements(deployer_name: str) -> events.EventPattern:
    """The deployer `deployer_name`'s announcements that a version went live."""
    return events.EventPattern(source=[deployer_name], detail_type=[DEPLOYMENT_EVENT], detail={"event": list(RELEASE_ANNOUNCEMENTS)})


@dataclass(frozen=True)
class PromotedModel:
    """One model the target takes from a source environment: where the source keeps it, where it goes here."""

    # The model's name in the request (`mlops model promote --model NAME`).
    name: str
    target_group_name: str
    source_environment: str
    source_account: str
    source_region: str
    source_group_name: str
    # The object key patterns of the source bucket the source lets the target read (its promotable objects).
    source_object_patterns: tuple[str, ...]
    # Whether the source serves the model: then only a version its deployer released is promoted.
    source_serves: bool
    # The source's artifacts bucket and its key, where the target's stack knows them. Generated names are
    # unknown in another account: then the role may read objects matching the patterns in any bucket of the
    # source account (s3:ResourceAccount) and decrypt with any key of it through S3, and the source's bucket
    # and key policies, which grant this role alone, decide which; the function checks each object's bucket
    # belongs to the source account before it copies.
    source_bucket_name: str | None = None
    source_key_arn: str | None = None

    def as_json(self) -> dict:
        return {
            "sourceEnvironment": self.source_environment,
            "sourceAccount": self.source_account,
            "sourceRegion": self.source_region,
            "sourceGroup": self.source_group_name,
            "sourceBucket": self.source_bucket_name,
            "sourceServes": self.source_serves,
            "targetGroup": self.target_group_name,
        }


class ModelPromotion(Construct):
    """The target environment's promotion: the role `role_name` and the function `function_name`.

    The function copies a source version's objects into `bucket` under `copies_prefix`, encrypted with
    `key`, and registers it in the model's target group as PendingManualApproval. `mlops model promote`
    invokes it with credentials of the target account.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role_name: str,
        function_name: str,
        bucket: s3.IBucket,
        key: kms.IKey,
        copies_prefix: str,
        models: list[PromotedModel],
    ) -> None:
        super().__init__(scope, construct_id)
        if not models:
            raise ValueError("ModelPromotion needs at least one model to promote")
        stack = cdk.Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Promotes approved model versions from another environment into this one",
        )
        copies = bucket.arn_for_objects(f"{copies_prefix}*")
        target_groups = sorted({model.target_group_name.lower() for model in models})
        target_packages = [stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*") for group in target_groups]
        target_group_arns = [stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group) for group in target_groups]
        source_packages = sorted(
            {f"arn:{stack.partition}:sagemaker:{m.source_region}:{m.source_account}:model-package/{m.source_group_name.lower()}/*" for m in models}
        )
        source_objects = sorted(
            {f"arn:{stack.partition}:s3:::{m.source_bucket_name or '*'}/{pattern}" for m in models for pattern in m.source_object_patterns}
        )
        source_keys = sorted(
            {(m.source_key_arn or f"arn:{stack.partition}:kms:{m.source_region}:{m.source_account}:key/*", m.source_region) for m in models}
        )
        statements = [
            iam.PolicyStatement(sid="ReadSourceVersions", actions=["sagemaker:DescribeModelPackage"], resources=source_packages),
            iam.PolicyStatement(
                sid="ReadSourceArtifacts",
                actions=["s3:GetObject"],
                resources=source_objects,
                conditions={"StringEquals": {"s3:ResourceAccount": sorted({m.source_account for m in models})}},
            ),
            *(
                iam.PolicyStatement(
                    sid=f"DecryptSourceArtifacts{index}",
                    actions=["kms:Decrypt"],
                    resources=[key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                )
                for index, (key_arn, region) in enumerate(source_keys)
            ),
            iam.PolicyStatement(sid="WriteCopies", actions=["s3:PutObject"], resources=[copies]),
            iam.PolicyStatement(
                sid="EncryptCopies",
                # Multipart copies of large artifacts also decrypt the parts they assemble.
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="RegisterCopies",
                actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage"],
                resources=[*target_packages, *target_group_arns],
            ),
            # ListModelPackages has no resource-level permissions.
            iam.PolicyStatement(sid="FindEarlierPromotions", actions=["sagemaker:ListModelPackages"], resources=["*"]),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        # Named as Lambda names a function's log group, so the command can say where a failed run logged.
        log_group = logs.LogGroup(
            self, "Logs", log_group_name=f"/aws/lambda/{function_name}", retention=logs.RetentionDays.SIX_MONTHS, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.function = platform_function(
            self,
            "Function",
            folder="model_promotion",
            function_name=function_name,
            description="Promotes a model version from another environment: checks it, copies its artifacts, registers it for review",
            role=self.role,
            # A large artifact's server-side copy takes minutes.
            timeout=cdk.Duration.minutes(15),
            memory_size=512,
            log_group=log_group,
            environment={
                "TARGET_BUCKET": bucket.bucket_name,
                "TARGET_KEY_ARN": key.key_arn,
                "COPIES_PREFIX": copies_prefix,
                "MODELS": json.dumps({model.name: model.as_json() for model in models}, sort_keys=True),
            },
        )
        log_group.grant_write(self.role)

        acknowledge(self.role, "AwsSolutions-IAM5[Resource::*]", "sagemaker:ListModelPackages has no resource-level permissions.")
        acknowledge_wildcard_resources(self.role, target_packages, "Versions of this environment's own model package groups, numbered by SageMaker.")
        acknowledge_wildcard_resources(self.role, source_packages, "Versions of the source environment's group, read-only; the source's group policy allows no more.")
        acknowledge_wildcard_resources(
            self.role, source_objects, "Model artifacts and evaluation reports of the source account, read-only; named per pipeline execution."
        )
        acknowledge_wildcard_resources(
            self.role, [arn for arn, _ in source_keys], "The source's artifacts key, through S3 only; its key policy grants this role alone."
        )
        acknowledge_wildcard_resources(self.role, [copies], "The copies are named per model, source environment and version.")

    def promoter_policy(self, scope: Construct, managed_policy_name: str, role_names: list[str]) -> iam.ManagedPolicy:
        """Starting a promotion (`mlops model promote`): invoking the promotion function, nothing else. Attached
        to the existing roles named in `role_names`; the copy still waits for this environment's reviewer."""
        return iam.ManagedPolicy(
            scope,
            "ModelPromoter",
            managed_policy_name=managed_policy_name,
            description=f"Start a promotion into this environment with {self.function.function_name}",
            statements=[iam.PolicyStatement(sid="StartAPromotion", actions=["lambda:InvokeFunction"], resources=[self.function.function_arn])],
            roles=[iam.Role.from_role_name(scope, f"Promoter-{name}", name) for name in role_names],
        )

    def promote_automatically(self, *, bus_name: str, dead_letter_alarm_name: str, sources: list[tuple[str, str]]) -> events.EventBus:
        """Promote each version the source deployers announce as live. `sources` are (account, deployer
        name) pairs; the bus `bus_name` takes their announcements (forwarded by `forward_releases`) and
        nothing else, and a rule on it starts the function with the version's ARN. Announcements the function
        could not act on, after its retries, wait in a dead-letter queue whose alarm is `dead_letter_alarm_name`."""
        stack = cdk.Stack.of(self)
        self.bus = events.EventBus(self, "Promotions", event_bus_name=bus_name)
        bus_arn = stack.format_arn(service="events", resource="event-bus", resource_name=bus_name)
        # The bus's own policy, as the deployer's announcements bus has it (not AWS::Events::EventBusPolicy).
        self.bus.node.default_child.policy = {
            "Version": "2012-10-17",
            "Statement": [
                iam.PolicyStatement(
                    sid=f"ReleasesOf{index}",
                    principals=[iam.AccountPrincipal(account)],
                    actions=["events:PutEvents"],
                    resources=[bus_arn],
                    # events:source and events:detail-type are multivalued (one value per entry of the request):
                    # every entry must be the deployer's announcement, and an empty set, which ForAllValues would
                    # let through, is refused.
                    conditions={
                        "ForAllValues:StringEquals": {"events:source": deployer, "events:detail-type": DEPLOYMENT_EVENT},
                        "Null": {"events:source": "false", "events:detail-type": "false"},
                    },
                ).to_statement_json()
                for index, (account, deployer) in enumerate(sources)
            ],
        }
        dead_letters = sqs.Queue(self, "DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=cdk.Duration.days(14))
        acknowledge(dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of automatic promotions.")
        dead_letter_alarm(self, "DeadLettersAlarm", queue=dead_letters, alarm_name=dead_letter_alarm_name, what_failed="automatic promotions")
        for index, (account, deployer) in enumerate(sources):
            pattern = release_announcements(deployer)
            events.Rule(
                self,
                f"PromoteReleases{index}",
                description=f"Promote the versions {deployer} (account {account}) releases",
                event_bus=self.bus,
                event_pattern=events.EventPattern(account=[account], source=pattern.source, detail_type=pattern.detail_type, detail=pattern.detail),
                targets=[
                    targets.LambdaFunction(
                        self.function,
                        event=events.RuleTargetInput.from_object({"sourcePackageArn": events.EventField.from_path("$.detail.modelPackageArn")}),
                        dead_letter_queue=dead_letters,
                        retry_attempts=2,
                        max_event_age=cdk.Duration.hours(1),
                    )
                ],
            )
        return self.bus


def forward_releases(scope: Construct, construct_id: str, *, announcements: events.IEventBus, deployer_name: str, target_bus_arns: list[str]) -> events.Rule:
    """Source side of automatic promotion: the deployer `deployer_name`'s announcements on `announcements`
    that a version went live, forwarded to the targets' promotion buses. Nothing else leaves the bus."""
    return events.Rule(
        scope,
        construct_id,
        description=f"Forward the versions {deployer_name} releases to the environments that promote them",
        event_bus=announcements,
        event_pattern=release_announcements(deployer_name),
        targets=[
            targets.EventBus(events.EventBus.from_event_bus_arn(scope, f"{construct_id}Bus{index}", arn)) for index, arn in enumerate(target_bus_arns)
        ],
    )


def promotion_role_arn(partition: str, account: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def allow_promotion(
    *,
    group: sagemaker.CfnModelPackageGroup,
    bucket: s3.IBucket,
    key: kms.IKey,
    object_patterns: list[str],
    target_role_arns: list[str],
) -> None:
    """Let the target environments' promotion roles `target_role_arns` read the versions of `group`, the
    objects of `bucket` matching `object_patterns` (model artifacts and evaluation reports), and decrypt
    them with `key` through S3: read-only, and to those roles alone.

    Each grant names the role's account as principal and the role's ARN in an ``aws:PrincipalArn``
    condition, so the source can be deployed before the targets exist: a resource policy that named a
    role that does not exist yet would be refused.
    """
    stack = cdk.Stack.of(group)
    accounts = sorted({arn.split(":")[4] for arn in target_role_arns})
    principals = [iam.AccountPrincipal(account) for account in accounts]
    only_the_roles = {"ArnEquals": {"aws:PrincipalArn": sorted(target_role_arns)}}
    packages = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group.model_package_group_name.lower()}/*")
    group.model_package_group_policy = {
        "Version": "2012-10-17",
        "Statement": [
            iam.PolicyStatement(
                sid="PromotionReadsVersions",
                principals=principals,
                actions=["sagemaker:DescribeModelPackage"],
                resources=[packages],
                conditions=only_the_roles,
            ).to_statement_json()
        ],
    }
    added_to_bucket = bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="PromotionReadsModelArtifacts",
            principals=principals,
            actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects(pattern) for pattern in object_patterns],
            conditions=only_the_roles,
        )
    )
    added_to_key = key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="PromotionDecryptsModelArtifacts",
            principals=principals,
            actions=["kms:Decrypt"],
            resources=["*"],
            conditions={**only_the_roles, "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
        )
    )
    # An imported bucket or key takes no statement, silently; the source would then refuse every promotion.
    for what, added in (("bucket", added_to_bucket), ("key", added_to_key)):
        if not added.statement_added:
            raise ValueError(f"allow_promotion needs the source's own artifacts {what}, not an imported one: its policy cannot be changed here")
