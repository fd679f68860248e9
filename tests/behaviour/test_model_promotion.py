"""Promotion of a model version from staging (one account) into prod (another), against moto.

See tests/behaviour/promotion_world.py for how the two accounts are played, and tests/promotion_app.py for
the synthesized policies every recorded call is decided against.
"""

from __future__ import annotations

import json

import pytest

from functions.model_promotion import handler as promotion
from tests import promotion_app as app
from tests.behaviour.deployer_world import GROUP, deployer_world
from tests.behaviour.promotion_world import ARTIFACT_BYTES, COPIES_PREFIX, REPORT, promotion_world, session_in

SOURCE_ARN = f"arn:aws:sagemaker:{app.REGION}:{app.SOURCE_ACCOUNT}:model-package/{app.SOURCE_GROUP}"


@pytest.fixture
def world(aws_env):
    with promotion_world() as world:
        yield world


def _object(world, uri: str) -> tuple[bytes, dict]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    got = world.target.client("s3").get_object(Bucket=bucket, Key=key)
    return got["Body"].read(), got


def test_the_artifact_is_copied_into_the_targets_bucket_under_the_targets_key(world):
    version = world.register_source_version()

    answer = world.promote(version)

    (url,) = answer["modelDataUrls"]
    assert url == f"s3://{app.TARGET_BUCKET}/{COPIES_PREFIX}training/staging/v{version}/model/model.tar.gz"
    body, head = _object(world, url)
    assert body == ARTIFACT_BYTES
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", app.TARGET_KEY_ARN)


def test_the_evaluation_report_is_copied_and_the_metrics_point_at_the_copy(world):
    version = world.register_source_version()

    world.promote(version)

    (package,) = world.target_packages()
    uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert uri.startswith(f"s3://{app.TARGET_BUCKET}/{COPIES_PREFIX}training/staging/v{version}/metrics/")
    body, head = _object(world, uri)
    assert json.loads(body) == REPORT
    assert head["SSEKMSKeyId"] == app.TARGET_KEY_ARN


def test_the_target_version_waits_for_review_and_carries_its_lineage(world):
    version = world.register_source_version()

    answer = world.promote(version)

    (package,) = world.target_packages()
    assert package["ModelPackageArn"] == answer["targetPackageArn"]
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["CustomerMetadataProperties"] == {
        "mlops:promoted-from-account": app.SOURCE_ACCOUNT,
        "mlops:promoted-from-environment": "staging",
        "mlops:promoted-from-group": app.SOURCE_GROUP,
        "mlops:promoted-from-version": str(version),
        "mlops:promoted-from-package": f"{SOURCE_ARN}/{version}",
        "mlops:promoted-from-release": promotion.CANARY_PASSED,
        "mlops:promoted-from-description": "AUC 0.93",
    }


def test_a_long_source_description_is_cut_to_what_metadata_holds(world):
    version = world.register_source_version(description="x" * 600)

    world.promote(version)

    (package,) = world.target_packages()
    assert package["CustomerMetadataProperties"]["mlops:promoted-from-description"] == "x" * 256


def test_nothing_the_target_version_refers_to_is_in_the_source_bucket(world):
    version = world.register_source_version()

    world.promote(version)

    (package,) = world.target_packages()
    assert app.SOURCE_BUCKET not in json.dumps([package["InferenceSpecification"], package["ModelMetrics"]])


def test_the_serving_image_and_environment_are_kept(world):
    version = world.register_source_version()

    world.promote(version)

    (package,) = world.target_packages()
    (container,) = package["InferenceSpecification"]["Containers"]
    assert container["Image"].endswith("sagemaker-scikit-learn:1.9-0-cpu-py3")
    assert container["Environment"] == {"SAGEMAKER_PROGRAM": "train.py"}


def test_an_s3_location_in_the_container_environment_is_copied_too(world):
    version = world.register_source_version(
        Environment={"SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{app.SOURCE_BUCKET}/pipelines/mlops-staging-training/exec-1/Evaluate/evaluation/evaluation.json"}
    )

    world.promote(version)

    (package,) = world.target_packages()
    (container,) = package["InferenceSpecification"]["Containers"]
    copied = container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]
    assert copied.startswith(f"s3://{app.TARGET_BUCKET}/{COPIES_PREFIX}training/staging/v{version}/environment/SAGEMAKER_SUBMIT_DIRECTORY/")
    assert json.loads(_object(world, copied)[0]) == REPORT


def test_promoting_the_same_version_again_registers_nothing_new(world):
    version = world.register_source_version()
    first = world.promote(version)

    again = world.promote(version)

    assert len(world.target_packages()) == 1
    assert again["targetPackageArn"] == first["targetPackageArn"]
    assert (first["alreadyPromoted"], again["alreadyPromoted"]) == (False, True)


def test_another_version_is_registered_as_the_next_target_version(world):
    world.promote(world.register_source_version())

    answer = world.promote(world.register_source_version())

    assert answer["targetVersion"] == 2
    assert sorted(p["CustomerMetadataProperties"]["mlops:promoted-from-version"] for p in world.target_packages()) == ["1", "2"]


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_a_version_not_approved_in_the_source_is_refused(world, status):
    version = world.register_source_version(status=status)

    with pytest.raises(promotion.PromotionRefused, match=f"is {status} in staging, not Approved.*mlops model approve {version} --env staging"):
        world.promote(version)

    assert world.target_packages() == []


def test_an_approved_version_the_source_deployer_never_released_is_refused(world):
    version = world.register_source_version(release=None)

    with pytest.raises(promotion.PromotionRefused, match="has not passed its canary in staging.*recorded no release"):
        world.promote(version)

    assert world.target_packages() == []
    assert world.target.client("s3").list_objects_v2(Bucket=app.TARGET_BUCKET).get("KeyCount") == 0


def test_a_version_with_another_release_record_is_refused_naming_it(world):
    version = world.register_source_version(release="rolled-back")

    with pytest.raises(promotion.PromotionRefused, match="release record says 'rolled-back'"):
        world.promote(version)


def test_a_first_release_counts_as_released(world):
    version = world.register_source_version(release=promotion.FIRST_RELEASE)

    world.promote(version)

    (package,) = world.target_packages()
    assert package["CustomerMetadataProperties"]["mlops:promoted-from-release"] == promotion.FIRST_RELEASE


def test_where_the_source_does_not_serve_the_model_an_approved_version_is_enough(world):
    version = world.register_source_version(release=None)

    world.promote(version, serves=False)

    (package,) = world.target_packages()
    assert package["CustomerMetadataProperties"]["mlops:promoted-from-release"] == "not served"


def test_a_version_the_source_does_not_have_is_refused(world):
    with pytest.raises(promotion.PromotionRefused, match="staging has no version 7 of training"):
        world.promote(7)


def test_a_request_naming_another_source_environment_is_refused(world):
    version = world.register_source_version()

    with pytest.raises(promotion.PromotionRefused, match="promoted from staging, not from dev"):
        world.promote(version, source_environment="dev")


def test_an_unknown_model_is_refused_naming_the_models_there_are(world):
    target = promotion.Target(bucket=app.TARGET_BUCKET, key_arn=app.TARGET_KEY_ARN, copies_prefix=COPIES_PREFIX, models={})

    with pytest.raises(promotion.PromotionRefused, match="promotes no model named 'churn'; the models it promotes: none"):
        promotion.promote(promotion.Clients(), target, {"model": "churn", "version": 1})


def test_a_version_whose_artifact_is_outside_the_source_bucket_is_refused(world):
    version = world.register_source_version(ModelDataUrl="s3://somewhere-else/model.tar.gz")

    with pytest.raises(promotion.PromotionRefused, match="refers to s3://somewhere-else/model.tar.gz, outside staging's artifacts bucket"):
        world.promote(version)


def test_a_version_whose_image_is_in_the_source_accounts_registry_is_refused(world):
    version = world.register_source_version(Image=f"{app.SOURCE_ACCOUNT}.dkr.ecr.{app.REGION}.amazonaws.com/custom:1")

    with pytest.raises(promotion.PromotionRefused, match="in staging's own ECR registry"):
        world.promote(version)


def test_every_call_of_a_promotion_is_allowed_by_both_accounts_policies(world):
    version = world.register_source_version()
    world.promote(version)
    world.promote(version)

    decided = world.decide()

    assert {call.operation for call in world.calls} >= {"describe_model_package", "head_object", "copy_object", "list_model_packages", "create_model_package"}
    assert [d.explain() for d in decided if not d.allowed] == []


def test_the_model_may_be_left_out_where_the_target_promotes_one(world):
    version = world.register_source_version()

    answer = world.handle({"version": version})

    assert answer["model"] == app.MODEL


def test_a_version_a_source_deployer_announced_is_promoted_by_its_arn(world):
    version = world.register_source_version()

    answer = world.handle({"sourcePackageArn": f"{SOURCE_ARN}/{version}"})

    assert (answer["model"], answer["sourceVersion"], answer["approvalStatus"]) == (app.MODEL, version, "PendingManualApproval")


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:sagemaker:{app.REGION}:{app.SOURCE_ACCOUNT}:model-package/mlops-staging-churn-models/1",
        f"arn:aws:sagemaker:{app.REGION}:444444444444:model-package/{app.SOURCE_GROUP}/1",
        f"arn:aws:sagemaker:us-east-1:{app.SOURCE_ACCOUNT}:model-package/{app.SOURCE_GROUP}/1",
        f"arn:aws:sagemaker:{app.REGION}:{app.SOURCE_ACCOUNT}:model-package-group/{app.SOURCE_GROUP}",
        "not an arn",
    ],
)
def test_an_announced_version_of_no_group_the_target_promotes_from_is_refused(world, arn):
    with pytest.raises(promotion.PromotionRefused, match="is no version of a group this environment promotes from"):
        world.handle({"sourcePackageArn": arn})


def test_without_the_source_buckets_name_a_version_is_promoted_from_a_bucket_of_the_source_account(world):
    version = world.register_source_version()

    answer = world.handle({"version": version}, source_names_known=False)

    (url,) = answer["modelDataUrls"]
    assert _object(world, url)[0] == ARTIFACT_BYTES


def test_without_the_source_buckets_name_an_artifact_in_another_accounts_bucket_is_refused(world):
    world.create_bucket(session_in(app.OTHER_ACCOUNT, "admin"), app.OTHER_ACCOUNT, app.OTHER_ACCOUNTS_BUCKET)
    version = world.register_source_version(ModelDataUrl=f"s3://{app.OTHER_ACCOUNTS_BUCKET}/model.tar.gz")

    with pytest.raises(promotion.PromotionRefused, match=f"cannot read as an object of staging's account {app.SOURCE_ACCOUNT} \\(S3 answered 403\\)"):
        world.handle({"version": version}, source_names_known=False)

    assert world.target_packages() == []


def test_a_promoted_version_approved_in_the_target_is_released_by_the_targets_deployer(aws_env, variants_template):
    """The version the promotion function registers, as it registers it, goes through the target's approval and
    deployer like any other: the endpoint then serves the copied artifact."""
    with promotion_world() as promoted:
        promoted.promote(promoted.register_source_version())
        (registration,) = [call.parameters for call in promoted.calls if call.operation == "create_model_package"]
    with deployer_world(variants_template) as target:
        # The target's reviewer approves it: the registration as it was made, then the approval.
        arn = target.sagemaker.create_model_package(**{**registration, "ModelPackageGroupName": GROUP})["ModelPackageArn"]
        target.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")

        execution = target.deploy(arn)

        assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
        (served,) = target.live_models().values()
        model = target.sagemaker.describe_model(ModelName=served)
        (container,) = target.sagemaker.describe_model_package(ModelPackageName=arn)["InferenceSpecification"]["Containers"]
        # The deployer's model runs the package's container: the copy in the target's bucket.
        assert [c.get("ModelPackageName") for c in model.get("Containers", [model.get("PrimaryContainer", {})])] == [arn]
        assert container["ModelDataUrl"].startswith(f"s3://{app.TARGET_BUCKET}/{COPIES_PREFIX}")
