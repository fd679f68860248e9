"""A test-only CDK app with both sides of a promotion in two accounts, and its policies for the evaluator.

The source stack stands for staging (its artifacts bucket, key and model package group, with the grants of
`allow_promotion`), the target stack for prod (its own bucket, key and group, and `ModelPromotion`). Both
take the names the environments' stacks would pass (config/naming.py), so the rows test what a deploy gets.
"""

from __future__ import annotations

import functools
import tempfile

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

from config.naming import (
    deployer_name,
    model_package_group_name,
    promotable_object_patterns,
    promoted_artifacts_prefix,
    promoter_policy_name,
    promotion_bus_name,
    promotion_dead_letter_alarm_name,
    promotion_function_name,
    promotion_role_name,
)
from mlops_constructs.encrypted_bucket import EncryptedBucket
from stacks.environment import enable_compliance_checks, new_app
from mlops_constructs.model_promotion import ModelPromotion, PromotedModel, allow_promotion, forward_releases, promotion_role_arn
from tests.permissions import EnvironmentPolicies
from tests.synth import cdk_json_context

REGION = "eu-west-1"
SOURCE_ACCOUNT, TARGET_ACCOUNT = "222222222222", "333333333333"
SOURCE_PREFIX, TARGET_PREFIX = "mlops-staging", "mlops-prod"
MODEL = "training"
SOURCE_GROUP, TARGET_GROUP = model_package_group_name(SOURCE_PREFIX), model_package_group_name(TARGET_PREFIX)
# Physical names the test gives the buckets and keys, as the evaluator and moto both call them.
SOURCE_BUCKET, TARGET_BUCKET = "staging-artifacts", "prod-artifacts"
SOURCE_KEY_ID, TARGET_KEY_ID = "key-staging", "key-prod"
SOURCE_KEY_ARN = f"arn:aws:kms:{REGION}:{SOURCE_ACCOUNT}:key/{SOURCE_KEY_ID}"
TARGET_KEY_ARN = f"arn:aws:kms:{REGION}:{TARGET_ACCOUNT}:key/{TARGET_KEY_ID}"
PROMOTION_ROLE_ARN = promotion_role_arn("aws", TARGET_ACCOUNT, promotion_role_name(TARGET_PREFIX))
SOURCE_DEPLOYER = deployer_name(SOURCE_PREFIX)
# The source deployer's announcements bus (the canary deployer names it so), and the target's promotion bus.
ANNOUNCEMENTS_BUS = f"{SOURCE_DEPLOYER}-announcements"
PROMOTION_BUS_ARN = f"arn:aws:events:{REGION}:{TARGET_ACCOUNT}:event-bus/{promotion_bus_name(TARGET_PREFIX)}"
STACKS = {"source": SOURCE_ACCOUNT, "target": TARGET_ACCOUNT}
# An existing role of the target account that config names as allowed to start promotions.
RELEASE_MANAGER = "release-manager"
# A bucket of an account that is neither side's.
OTHER_ACCOUNT, OTHER_ACCOUNTS_BUCKET = "444444444444", "elsewhere-artifacts"


def promoted_model(*, serves: bool = True, source_names_known: bool = True) -> PromotedModel:
    """The model as the target's stack describes it; without `source_names_known`, as a stack that cannot know
    the source's generated bucket name and key ARN describes it."""
    return PromotedModel(
        name=MODEL,
        target_group_name=TARGET_GROUP,
        source_environment="staging",
        source_account=SOURCE_ACCOUNT,
        source_region=REGION,
        source_group_name=SOURCE_GROUP,
        source_bucket_name=SOURCE_BUCKET if source_names_known else None,
        source_key_arn=SOURCE_KEY_ARN if source_names_known else None,
        source_object_patterns=tuple(promotable_object_patterns(SOURCE_PREFIX)),
        source_serves=serves,
    )


def _storage(stack: cdk.Stack, bucket_name: str) -> tuple[s3.Bucket, kms.Key]:
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    logs = s3.Bucket(
        stack,
        "AccessLogs",
        enforce_ssl=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    )
    artifacts = EncryptedBucket(
        stack, "Artifacts", key=key, access_logs=logs, retain=False, noncurrent_version_expiration=cdk.Duration.days(30)
    ).bucket
    artifacts.node.default_child.bucket_name = bucket_name
    return artifacts, key


def build(*, source_names_known: bool = True) -> cdk.App:
    app = new_app(outdir=tempfile.mkdtemp(prefix="promotion-app-"), context=cdk_json_context())
    stage = cdk.Stage(app, "promotion")
    source = cdk.Stack(stage, "source", env=cdk.Environment(account=SOURCE_ACCOUNT, region=REGION))
    source_bucket, source_key = _storage(source, SOURCE_BUCKET)
    source_group = sagemaker.CfnModelPackageGroup(source, "Group", model_package_group_name=SOURCE_GROUP)
    allow_promotion(
        group=source_group,
        bucket=source_bucket,
        key=source_key,
        object_patterns=promotable_object_patterns(SOURCE_PREFIX),
        target_role_arns=[PROMOTION_ROLE_ARN],
    )

    announcements = events.EventBus(source, "Announcements", event_bus_name=ANNOUNCEMENTS_BUS)
    forward_releases(source, "ForwardReleases", announcements=announcements, deployer_name=SOURCE_DEPLOYER, target_bus_arns=[PROMOTION_BUS_ARN])

    target = cdk.Stack(stage, "target", env=cdk.Environment(account=TARGET_ACCOUNT, region=REGION))
    target_bucket, target_key = _storage(target, TARGET_BUCKET)
    sagemaker.CfnModelPackageGroup(target, "Group", model_package_group_name=TARGET_GROUP)
    promotion = ModelPromotion(
        target,
        "Promotion",
        role_name=promotion_role_name(TARGET_PREFIX),
        function_name=promotion_function_name(TARGET_PREFIX),
        bucket=target_bucket,
        key=target_key,
        copies_prefix=promoted_artifacts_prefix(TARGET_PREFIX),
        models=[promoted_model(source_names_known=source_names_known)],
    )
    promotion.promoter_policy(target, promoter_policy_name(TARGET_PREFIX), [RELEASE_MANAGER])
    promotion.promote_automatically(
        bus_name=promotion_bus_name(TARGET_PREFIX),
        dead_letter_alarm_name=promotion_dead_letter_alarm_name(TARGET_PREFIX),
        sources=[(SOURCE_ACCOUNT, SOURCE_DEPLOYER)],
    )
    # cdk-nag as the environments' app runs it: a finding on either side fails the synth.
    enable_compliance_checks(app)
    return app


@functools.cache
def templates(*, source_names_known: bool = True) -> dict[str, dict]:
    """Stack name -> its synthesized template (synthesized once per process)."""
    app = build(source_names_known=source_names_known)
    app.synth()
    assembly = app.node.find_child("promotion").synth()
    return {name: assembly.get_stack_by_name(f"promotion-{name}").template for name in STACKS}


class PromotionPolicies(EnvironmentPolicies):
    """`EnvironmentPolicies` over the two stacks of the promotion app, each in its own account."""

    def __init__(self, stack_templates: dict[str, dict]) -> None:
        self.region, self.prefix, self._environment = REGION, TARGET_PREFIX, "promotion"
        self.templates = stack_templates
        self._refs = {}
        for stack, template in stack_templates.items():
            self.account = STACKS[stack]
            pseudo = {"AWS::AccountId": self.account, "AWS::Region": REGION, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
            names = self._physical_names(stack, template)
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] == "AWS::KMS::Key":
                    key_id = SOURCE_KEY_ID if stack == "source" else TARGET_KEY_ID
                    names[logical_id].update(Ref=key_id, KeyId=key_id, Arn=f"arn:aws:kms:{REGION}:{self.account}:key/{key_id}")
            self._refs[stack] = {**pseudo, "AWS::StackId": self._stack_id(stack), **names}
        self.account = TARGET_ACCOUNT
        self._managed_policies = {}
        self._buckets = {SOURCE_BUCKET: SOURCE_ACCOUNT, TARGET_BUCKET: TARGET_ACCOUNT, OTHER_ACCOUNTS_BUCKET: OTHER_ACCOUNT}

    def resource_account(self, resource_arn: str) -> str:
        if resource_arn.startswith("arn:aws:s3:::"):
            return self._buckets[resource_arn.removeprefix("arn:aws:s3:::").split("/", 1)[0]]
        return super().resource_account(resource_arn)


@functools.cache
def policies(*, source_names_known: bool = True) -> PromotionPolicies:
    return PromotionPolicies(templates(source_names_known=source_names_known))
