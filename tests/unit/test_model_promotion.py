"""The promotion building blocks as synthesized (tests/promotion_app.py): who may do what across the two
accounts, decided by the policy evaluator with cross-account semantics (the caller's identity policy and the
resource's policy must both allow), and what the templates give the function and role."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from moto.events.models import EventPattern
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

from config.naming import (
    promotable_object_patterns,
    promoted_artifacts_prefix,
    promoter_policy_name,
    promotion_function_name,
    promotion_role_name,
    release_record_key,
)
from functions.model_promotion import handler as promotion
from mlops_constructs.canary_deployer.states import DEPLOYMENT_EVENT
from mlops_constructs.model_promotion import allow_promotion
from tests import promotion_app as app
from tests.cfn_lint import known_findings, lint_each_once
from tests.permissions import Request
from tests.templates import resources
from tests.unit.test_function_contracts import RUNTIME_VARIABLES, _folder_reads

ROLE = app.PROMOTION_ROLE_ARN
# Any other principal, given every permission its own account could give it: only the resource side stops it.
ANOTHER_ACCOUNTS_ROLE = "arn:aws:iam::444444444444:role/admin"
ANOTHER_TARGET_ROLE = f"arn:aws:iam::{app.TARGET_ACCOUNT}:role/admin"
A_SOURCE_ROLE = f"arn:aws:iam::{app.SOURCE_ACCOUNT}:role/admin"
EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
ADMINS = {role: [("allow everything", EVERYTHING)] for role in (ANOTHER_ACCOUNTS_ROLE, ANOTHER_TARGET_ROLE, A_SOURCE_ROLE)}

SOURCE_PACKAGE = f"arn:aws:sagemaker:{app.REGION}:{app.SOURCE_ACCOUNT}:model-package/{app.SOURCE_GROUP}/3"
OTHER_SOURCE_PACKAGE = f"arn:aws:sagemaker:{app.REGION}:{app.SOURCE_ACCOUNT}:model-package/mlops-staging-churn-models/3"
TARGET_PACKAGE = f"arn:aws:sagemaker:{app.REGION}:{app.TARGET_ACCOUNT}:model-package/{app.TARGET_GROUP}/1"
EXECUTION = f"arn:aws:s3:::{app.SOURCE_BUCKET}/pipelines/mlops-staging-training/exec-1"
MODEL_ARTIFACT = f"{EXECUTION}/Train/pipelines-exec-1-Train/output/model.tar.gz"
EVALUATION_REPORT = f"{EXECUTION}/Evaluate/evaluation/evaluation.json"
PROMOTED_INTO_SOURCE = f"arn:aws:s3:::{app.SOURCE_BUCKET}/{promoted_artifacts_prefix(app.SOURCE_PREFIX)}training/dev/v2/model/model.tar.gz"
DATA_SPLIT = f"{EXECUTION}/Preprocess/train/train.csv"
COPY = f"arn:aws:s3:::{app.TARGET_BUCKET}/{promoted_artifacts_prefix(app.TARGET_PREFIX)}training/staging/v3/model/model.tar.gz"
RELEASE_RECORD = f"arn:aws:s3:::{app.SOURCE_BUCKET}/{release_record_key(app.SOURCE_GROUP, 3)}"
VIA_S3 = {"kms:ViaService": f"s3.{app.REGION}.amazonaws.com"}

def _s3(principal: str, action: str, arn: str) -> Request:
    """An S3 request, with the account owning its bucket in the context as S3 puts it there."""
    bucket = arn.removeprefix("arn:aws:s3:::").split("/", 1)[0]
    owner = app.SOURCE_ACCOUNT if bucket == app.SOURCE_BUCKET else app.TARGET_ACCOUNT
    return Request(principal, action, arn, {"s3:ResourceAccount": owner})


ALLOWED = {
    "the promotion role reads a version of the source group": Request(ROLE, "sagemaker:DescribeModelPackage", SOURCE_PACKAGE),
    "the promotion role reads a model artifact of the source": _s3(ROLE, "s3:GetObject", MODEL_ARTIFACT),
    "the promotion role reads an evaluation report of the source": _s3(ROLE, "s3:GetObject", EVALUATION_REPORT),
    "the promotion role reads what the source promoted itself": _s3(ROLE, "s3:GetObject", PROMOTED_INTO_SOURCE),
    "the promotion role reads a release record of the source's deployer": _s3(ROLE, "s3:GetObject", RELEASE_RECORD),
    "the promotion role decrypts the source's artifacts through S3": Request(ROLE, "kms:Decrypt", app.SOURCE_KEY_ARN, VIA_S3),
    "the promotion role writes a copy into the target bucket": _s3(ROLE, "s3:PutObject", COPY),
    "the promotion role encrypts the copy with the target key": Request(ROLE, "kms:GenerateDataKey", app.TARGET_KEY_ARN, VIA_S3),
    "the promotion role decrypts parts of a multipart copy with the target key": Request(ROLE, "kms:Decrypt", app.TARGET_KEY_ARN, VIA_S3),
    "the promotion role registers the copy in the target group": Request(ROLE, "sagemaker:CreateModelPackage", TARGET_PACKAGE),
    "the promotion role finds earlier promotions in the target group": Request(ROLE, "sagemaker:ListModelPackages", "*"),
    "the promotion role reads the target's versions": Request(ROLE, "sagemaker:DescribeModelPackage", TARGET_PACKAGE),
}

DENIED = {
    "another account's role reads a source version": Request(ANOTHER_ACCOUNTS_ROLE, "sagemaker:DescribeModelPackage", SOURCE_PACKAGE),
    "another account's role reads a source model artifact": _s3(ANOTHER_ACCOUNTS_ROLE, "s3:GetObject", MODEL_ARTIFACT),
    "another account's role decrypts with the source key": Request(ANOTHER_ACCOUNTS_ROLE, "kms:Decrypt", app.SOURCE_KEY_ARN, VIA_S3),
    "another role of the target account reads a source version": Request(ANOTHER_TARGET_ROLE, "sagemaker:DescribeModelPackage", SOURCE_PACKAGE),
    "another role of the target account reads a source model artifact": _s3(ANOTHER_TARGET_ROLE, "s3:GetObject", MODEL_ARTIFACT),
    "another role of the target account decrypts with the source key": Request(ANOTHER_TARGET_ROLE, "kms:Decrypt", app.SOURCE_KEY_ARN, VIA_S3),
    "the promotion role reads a version of another source group": Request(ROLE, "sagemaker:DescribeModelPackage", OTHER_SOURCE_PACKAGE),
    "the promotion role changes a source version": Request(ROLE, "sagemaker:UpdateModelPackage", SOURCE_PACKAGE),
    "the promotion role reads the source's data splits": _s3(ROLE, "s3:GetObject", DATA_SPLIT),
    "the promotion role reads anything else of the source bucket": _s3(ROLE, "s3:GetObject", f"arn:aws:s3:::{app.SOURCE_BUCKET}/mlflow/run/model.pkl"),
    "the promotion role writes to the source bucket": _s3(ROLE, "s3:PutObject", MODEL_ARTIFACT),
    "the promotion role writes a release record into the source bucket": _s3(ROLE, "s3:PutObject", RELEASE_RECORD),
    "another account's role reads a source release record": _s3(ANOTHER_ACCOUNTS_ROLE, "s3:GetObject", RELEASE_RECORD),
    "another role of the target account reads a source release record": _s3(ANOTHER_TARGET_ROLE, "s3:GetObject", RELEASE_RECORD),
    "the promotion role decrypts with the source key outside S3": Request(ROLE, "kms:Decrypt", app.SOURCE_KEY_ARN),
    "the promotion role encrypts with the source key": Request(ROLE, "kms:GenerateDataKey", app.SOURCE_KEY_ARN, VIA_S3),
    "the promotion role writes outside the copies in the target bucket": _s3(
        ROLE, "s3:PutObject", f"arn:aws:s3:::{app.TARGET_BUCKET}/pipelines/mlops-prod-training/exec-1/Train/model.tar.gz"
    ),
    "the promotion role approves a target version": Request(ROLE, "sagemaker:UpdateModelPackage", TARGET_PACKAGE),
    "the source account writes into the target bucket": _s3(A_SOURCE_ROLE, "s3:PutObject", COPY),
    "the source account encrypts with the target key": Request(A_SOURCE_ROLE, "kms:GenerateDataKey", app.TARGET_KEY_ARN, VIA_S3),
    "the source account registers a version in the target group": Request(A_SOURCE_ROLE, "sagemaker:CreateModelPackage", TARGET_PACKAGE),
    "the source account reads the target's versions": Request(A_SOURCE_ROLE, "sagemaker:DescribeModelPackage", TARGET_PACKAGE),
}


@pytest.fixture(scope="module")
def decisions():
    rows = {**ALLOWED, **DENIED}
    decided = app.policies().decide(list(rows.values()), identity_policies=ADMINS)
    return dict(zip(rows, decided, strict=True))


@pytest.mark.parametrize("row", ALLOWED)
def test_allowed(decisions, row):
    assert decisions[row].allowed, decisions[row].explain()


@pytest.mark.parametrize("row", DENIED)
def test_denied(decisions, row):
    assert not decisions[row].allowed, decisions[row].explain()


def _promotion(kind: str) -> dict:
    (found,) = [r["Properties"] for name, r in resources(app.templates()["target"], kind).items() if name.startswith("Promotion")]
    return found


def test_the_promotion_role_has_the_name_the_source_grants_to():
    assert _promotion("AWS::IAM::Role")["RoleName"] == promotion_role_name(app.TARGET_PREFIX)
    assert ROLE.endswith(f":role/{promotion_role_name(app.TARGET_PREFIX)}")


def test_the_function_has_the_name_the_command_invokes():
    assert _promotion("AWS::Lambda::Function")["FunctionName"] == promotion_function_name(app.TARGET_PREFIX)


def test_the_function_is_given_every_variable_its_handler_reads():
    variables = _promotion("AWS::Lambda::Function")["Environment"]["Variables"]

    assert _folder_reads("model_promotion") - RUNTIME_VARIABLES <= set(variables)


def test_the_function_is_told_each_models_source_and_target_group():
    models = json.loads(_promotion("AWS::Lambda::Function")["Environment"]["Variables"]["MODELS"])

    assert models == {
        "training": {
            "sourceAccount": app.SOURCE_ACCOUNT,
            "sourceBucket": app.SOURCE_BUCKET,
            "sourceEnvironment": "staging",
            "sourceGroup": app.SOURCE_GROUP,
            "sourceRegion": app.REGION,
            "sourceServes": True,
            "targetGroup": app.TARGET_GROUP,
        }
    }


def test_the_copies_land_where_the_targets_served_models_read_artifacts():
    # Served models read pipelines/<prefix>-* of their artifacts bucket (stacks/storage.py).
    assert promoted_artifacts_prefix(app.TARGET_PREFIX).startswith(f"pipelines/{app.TARGET_PREFIX}-")


def test_the_source_shares_model_artifacts_evaluation_reports_and_release_records_only():
    assert promotable_object_patterns(app.SOURCE_PREFIX) == [
        "pipelines/mlops-staging-*/*/Train/*",
        "pipelines/mlops-staging-*/*/Evaluate/*",
        "pipelines/mlops-staging-promoted/*",
        "releases/*",
    ]


def test_the_function_looks_for_release_records_where_the_deployer_writes_them():
    assert promotion.release_record_key("mlops-staging-models", 7) == release_record_key("mlops-staging-models", 7)


def test_the_source_grants_name_the_role_in_a_condition_so_they_deploy_before_the_role_exists():
    (group,) = resources(app.templates()["source"], "AWS::SageMaker::ModelPackageGroup").values()
    (statement,) = group["Properties"]["ModelPackageGroupPolicy"]["Statement"]

    assert json.dumps(statement["Principal"]).count(f":iam::{app.TARGET_ACCOUNT}:root") == 1
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": [ROLE]}}


def test_cfn_lint_finds_nothing_in_either_side(tmp_path):
    paths = []
    for name, template in app.templates().items():
        path = Path(tmp_path) / f"{name}.template.json"
        path.write_text(json.dumps(template))
        paths.append(path)

    findings = [f for f in lint_each_once({app.REGION: paths}, known_findings()) if f.rule != "W3005"]

    assert [str(f) for f in findings] == []


def test_the_source_grants_refuse_an_imported_bucket_whose_policy_they_cannot_change():
    stack = cdk.Stack(cdk.App(), "source", env=cdk.Environment(account=app.SOURCE_ACCOUNT, region=app.REGION))
    with pytest.raises(ValueError, match="needs the source's own artifacts bucket, not an imported one"):
        allow_promotion(
            group=sagemaker.CfnModelPackageGroup(stack, "Group", model_package_group_name=app.SOURCE_GROUP),
            bucket=s3.Bucket.from_bucket_name(stack, "Imported", app.SOURCE_BUCKET),
            key=kms.Key(stack, "Key"),
            object_patterns=promotable_object_patterns(app.SOURCE_PREFIX),
            target_role_arns=[ROLE],
        )


# -- automatic promotion -------------------------------------------------------------------------------


def _announcement(event: str, account: str = app.SOURCE_ACCOUNT, source: str = app.SOURCE_DEPLOYER) -> dict:
    """An announcement as the canary deployer puts it on its bus (mlops_constructs/canary_deployer/states.py)."""
    return {
        "version": "0",
        "id": "3f2c4a0e-0000-0000-0000-000000000000",
        "source": source,
        "detail-type": DEPLOYMENT_EVENT,
        "account": account,
        "time": "2026-12-06T18:00:00Z",
        "region": app.REGION,
        "resources": [f"arn:aws:states:{app.REGION}:{account}:stateMachine:{source}"],
        "detail": {"endpoint": "mlops-staging-endpoint", "modelPackageArn": SOURCE_PACKAGE, "execution": "x", "event": event, "detail": "mlops-staging-model-v3"},
    }


def _rule(stack: str, description_start: str) -> tuple[str, dict]:
    (found,) = [
        (logical_id, r["Properties"])
        for logical_id, r in resources(app.templates()[stack], "AWS::Events::Rule").items()
        if r["Properties"].get("Description", "").startswith(description_start)
    ]
    return found


def _matches(rule: dict, event: dict) -> bool:
    return EventPattern.load(json.dumps(rule["EventPattern"])).matches_event(event)


@pytest.mark.parametrize(("stack", "rule"), [("source", "Forward the versions"), ("target", "Promote the versions")])
@pytest.mark.parametrize(("event", "promotes"), [("promoted", True), ("released", True), ("rolled back", False), ("approval requested", False), ("first release failed", False)])
def test_only_announcements_that_a_version_went_live_promote_it(stack, rule, event, promotes):
    assert _matches(_rule(stack, rule)[1], _announcement(event)) is promotes


@pytest.mark.parametrize("announcement", [_announcement("promoted", account="444444444444"), _announcement("promoted", source="mlops-staging-batch-inference")])
def test_the_target_promotes_on_announcements_of_its_source_deployer_only(announcement):
    assert not _matches(_rule("target", "Promote the versions")[1], announcement)


def test_the_source_forwards_its_releases_to_the_targets_promotion_bus():
    (target,) = _rule("source", "Forward the versions")[1]["Targets"]

    assert target["Arn"] == app.PROMOTION_BUS_ARN


def test_the_target_rule_starts_the_function_with_the_announced_version_only():
    (target,) = _rule("target", "Promote the versions")[1]["Targets"]

    assert target["InputTransformer"]["InputPathsMap"] == {"detail-modelPackageArn": "$.detail.modelPackageArn"}
    assert json.loads(target["InputTransformer"]["InputTemplate"].replace("<detail-modelPackageArn>", '"x"')) == {"sourcePackageArn": "x"}
    assert "DeadLetterConfig" in target


# Who may start an automatic promotion: row -> whether it is allowed. The requests need the synthesized app's
# names, so they are made in the fixture.
BUS_ROWS = {
    "the source's forwarding rule puts the deployer's announcements on the promotion bus": True,
    "the source's forwarding rule puts other events on the promotion bus": False,
    "the source's forwarding rule puts events of another detail type on the promotion bus": False,
    "the source's forwarding rule puts the deployer's announcements with other events on the promotion bus": False,
    "another account puts the deployer's announcements on the promotion bus": False,
    "the promotion rule starts the function": True,
    "another rule starts the function": False,
}


@pytest.fixture(scope="module")
def bus_decisions():
    policies = app.policies()
    forwarder = policies.role_trusted_by("source", "events.amazonaws.com")
    deployer_event = {"events:source": [app.SOURCE_DEPLOYER], "events:detail-type": [DEPLOYMENT_EVENT]}
    rule_id, _ = _rule("target", "Promote the versions")
    (function_id,) = [i for i in resources(app.templates()["target"], "AWS::Lambda::Function") if i.startswith("PromotionFunction")]
    function = policies.arn("target", function_id)
    requests = {
        "the source's forwarding rule puts the deployer's announcements on the promotion bus": Request(
            forwarder, "events:PutEvents", app.PROMOTION_BUS_ARN, deployer_event
        ),
        "the source's forwarding rule puts other events on the promotion bus": Request(
            forwarder, "events:PutEvents", app.PROMOTION_BUS_ARN, {**deployer_event, "events:source": ["mlops-staging-batch-inference"]}
        ),
        "the source's forwarding rule puts events of another detail type on the promotion bus": Request(
            forwarder, "events:PutEvents", app.PROMOTION_BUS_ARN, {**deployer_event, "events:detail-type": ["Pipeline Execution Status Change"]}
        ),
        "the source's forwarding rule puts the deployer's announcements with other events on the promotion bus": Request(
            forwarder, "events:PutEvents", app.PROMOTION_BUS_ARN, {**deployer_event, "events:source": [app.SOURCE_DEPLOYER, "mlops-staging-batch-inference"]}
        ),
        "another account puts the deployer's announcements on the promotion bus": Request(
            ANOTHER_ACCOUNTS_ROLE, "events:PutEvents", app.PROMOTION_BUS_ARN, deployer_event
        ),
        "the promotion rule starts the function": Request(
            "events.amazonaws.com", "lambda:InvokeFunction", function, {"aws:SourceArn": policies.arn("target", rule_id)}
        ),
        "another rule starts the function": Request(
            "events.amazonaws.com", "lambda:InvokeFunction", function, {"aws:SourceArn": f"arn:aws:events:{app.REGION}:{app.TARGET_ACCOUNT}:rule/other"}
        ),
    }
    return dict(zip(requests, policies.decide(list(requests.values()), identity_policies=ADMINS), strict=True))


@pytest.mark.parametrize("row", BUS_ROWS)
def test_who_may_start_an_automatic_promotion(bus_decisions, row):
    assert bus_decisions[row].allowed is BUS_ROWS[row], bus_decisions[row].explain()


# -- a target that cannot know the source's generated bucket name and key ARN ------------------------------

OTHER_ACCOUNTS_OBJECT = f"arn:aws:s3:::{app.OTHER_ACCOUNTS_BUCKET}/pipelines/mlops-staging-training/exec-1/Train/model.tar.gz"
ANY_SOURCE_KEY = f"arn:aws:kms:{app.REGION}:{app.SOURCE_ACCOUNT}:key/key-other"
UNKNOWN_NAMES_ROWS = {
    "the promotion role reads a model artifact of the source": (_s3(ROLE, "s3:GetObject", MODEL_ARTIFACT), True),
    "the promotion role reads a release record of the source's deployer": (_s3(ROLE, "s3:GetObject", RELEASE_RECORD), True),
    "the promotion role decrypts the source's artifacts through S3": (Request(ROLE, "kms:Decrypt", app.SOURCE_KEY_ARN, VIA_S3), True),
    "the promotion role reads the source's data splits": (_s3(ROLE, "s3:GetObject", DATA_SPLIT), False),
    "the promotion role reads a like-named object of another account's bucket": (
        Request(ROLE, "s3:GetObject", OTHER_ACCOUNTS_OBJECT, {"s3:ResourceAccount": app.OTHER_ACCOUNT}),
        False,
    ),
    "the promotion role decrypts with another key of the source account": (Request(ROLE, "kms:Decrypt", ANY_SOURCE_KEY, VIA_S3), False),
}


@pytest.fixture(scope="module")
def unknown_names_decisions():
    rows = list(UNKNOWN_NAMES_ROWS)
    decided = app.policies(source_names_known=False).decide([UNKNOWN_NAMES_ROWS[row][0] for row in rows])
    return dict(zip(rows, decided, strict=True))


@pytest.mark.parametrize("row", UNKNOWN_NAMES_ROWS)
def test_without_the_sources_names_the_sources_policies_decide(unknown_names_decisions, row):
    assert unknown_names_decisions[row].allowed is UNKNOWN_NAMES_ROWS[row][1], unknown_names_decisions[row].explain()


def test_without_the_sources_names_the_role_reads_the_patterns_in_the_source_account_only():
    (role,) = [r for i, r in resources(app.templates(source_names_known=False)["target"], "AWS::IAM::Policy").items() if i.startswith("PromotionRole")]
    (statement,) = [s for s in role["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "ReadSourceArtifacts"]

    assert statement["Condition"] == {"StringEquals": {"s3:ResourceAccount": [app.SOURCE_ACCOUNT]}}
    assert statement["Resource"] == sorted(f"arn:aws:s3:::*/{pattern}" for pattern in promotable_object_patterns(app.SOURCE_PREFIX))


def test_the_roles_named_as_promoters_may_invoke_the_promotion_function_and_nothing_else():
    (policy,) = [
        r["Properties"]
        for r in resources(app.templates()["target"], "AWS::IAM::ManagedPolicy").values()
        if r["Properties"]["ManagedPolicyName"] == promoter_policy_name(app.TARGET_PREFIX)
    ]
    (statement,) = policy["PolicyDocument"]["Statement"]

    assert policy["Roles"] == [app.RELEASE_MANAGER]
    assert (statement["Action"], statement["Resource"]) == ("lambda:InvokeFunction", {"Fn::GetAtt": [_promotion_id("AWS::Lambda::Function"), "Arn"]})


def _promotion_id(kind: str) -> str:
    (found,) = [name for name in resources(app.templates()["target"], kind) if name.startswith("Promotion")]
    return found
