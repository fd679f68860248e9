"""What matters in the synthesized templates: encryption, public access, retention, network shape, names."""

from __future__ import annotations

import json
import re

import pytest

from tests.optional_pieces import GIT_REPOSITORIES
from tests.templates import policy_statements, properties, resources, role_named
from tests.synth import STACKS, Synthesized, environment_config





def test_data_buckets_are_encrypted_with_the_environment_key(synthesized: Synthesized, environment):
    storage = synthesized.template(environment, "storage")
    key = next(iter(resources(storage, "AWS::KMS::Key")))
    buckets = properties(storage, "AWS::S3::Bucket")

    kms_encrypted = [
        b for b in buckets
        if b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"].get("KMSMasterKeyID")
        == {"Fn::GetAtt": [key, "Arn"]}
    ]
    # Training data and artifacts on the key; the access-log bucket cannot be (S3 log delivery needs SSE-S3).
    assert len(kms_encrypted) == 2
    assert len(buckets) == 3


def test_every_bucket_blocks_public_access(synthesized: Synthesized, environment):
    for bucket in properties(synthesized.template(environment, "storage"), "AWS::S3::Bucket"):
        assert bucket["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }


def test_every_bucket_denies_requests_without_tls(synthesized: Synthesized, environment):
    storage = synthesized.template(environment, "storage")
    buckets = set(resources(storage, "AWS::S3::Bucket"))
    denied = set()
    for policy in properties(storage, "AWS::S3::BucketPolicy"):
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                denied.add(policy["Bucket"]["Ref"])
    assert denied == buckets


def test_training_data_bucket_sends_events_to_eventbridge(synthesized: Synthesized, environment):
    storage = synthesized.template(environment, "storage")
    notifications = properties(storage, "Custom::S3BucketNotifications")
    data_bucket = next(name for name in resources(storage, "AWS::S3::Bucket") if name.startswith("TrainingData"))

    assert [n["BucketName"] for n in notifications] == [{"Ref": data_bucket}]
    assert notifications[0]["NotificationConfiguration"] == {"EventBridgeConfiguration": {}}


def test_data_buckets_are_versioned_and_expire_old_versions(synthesized: Synthesized, environment):
    config = environment_config(environment)
    for bucket in properties(synthesized.template(environment, "storage"), "AWS::S3::Bucket"):
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
        if "KMSMasterKeyID" in str(bucket["BucketEncryption"]):
            rule = bucket["LifecycleConfiguration"]["Rules"][0]
            assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == config.storage.noncurrent_version_expiration_days


def test_kms_key_rotates(synthesized: Synthesized, environment):
    keys = properties(synthesized.template(environment, "storage"), "AWS::KMS::Key")
    assert [k["EnableKeyRotation"] for k in keys] == [True]


def test_ecr_repositories_scan_on_push_with_immutable_tags_and_kms(synthesized: Synthesized, environment):
    repositories = properties(synthesized.template(environment, "storage"), "AWS::ECR::Repository")
    # Processing, inference (served models) and batch inference images.
    assert len(repositories) == 3
    for repository in repositories:
        assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
        assert repository["ImageTagMutability"] == "IMMUTABLE"
        assert repository["EncryptionConfiguration"]["EncryptionType"] == "KMS"
        assert "LifecyclePolicy" in repository


def test_prod_retains_buckets_key_and_repositories(synthesized: Synthesized):
    storage = synthesized.template("prod", "storage")
    for resource_type in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::ECR::Repository"):
        for name, resource in resources(storage, resource_type).items():
            assert resource["DeletionPolicy"] == "Retain", name
            assert resource["UpdateReplacePolicy"] == "Retain", name
    assert not resources(storage, "Custom::S3AutoDeleteObjects")


def test_dev_destroys_buckets_after_emptying_them(synthesized: Synthesized):
    storage = synthesized.template("dev", "storage")
    buckets = resources(storage, "AWS::S3::Bucket")

    assert all(b["DeletionPolicy"] == "Delete" for b in buckets.values())
    emptied = {p["BucketName"]["Ref"] for p in properties(storage, "Custom::S3AutoDeleteObjects")}
    assert emptied == set(buckets)


def test_dev_has_no_nat_gateway_and_no_interface_endpoints(synthesized: Synthesized):
    network = synthesized.template("dev", "network")
    assert not resources(network, "AWS::EC2::NatGateway")
    assert not resources(network, "AWS::EC2::VPCEndpoint")
    assert not resources(network, "AWS::EC2::InternetGateway")


def test_prod_has_exactly_the_endpoints_vpc_only_studio_needs(synthesized: Synthesized):
    endpoints = properties(synthesized.template("prod", "network"), "AWS::EC2::VPCEndpoint")

    def service(endpoint):
        name = endpoint["ServiceName"]
        return name if isinstance(name, str) else name["Fn::Join"][1][-1]

    region = environment_config("prod").region
    assert sorted(service(e).split(f"{region}.")[-1].lstrip(".") for e in endpoints) == sorted(
        # experiments: SageMaker managed MLflow's API. No studio: nobody opens Studio from inside prod's VPC.
        ["sagemaker.api", "sagemaker.runtime", "sts", "logs", "monitoring", "ecr.api", "ecr.dkr", "s3", "experiments"]
    )
    interface = [e for e in endpoints if e.get("VpcEndpointType") == "Interface"]
    assert all(e["PrivateDnsEnabled"] for e in interface)


def test_studio_security_group_allows_nfs_and_traffic_within_itself(synthesized: Synthesized, environment):
    network = synthesized.template(environment, "network")
    studio_group = next(name for name in resources(network, "AWS::EC2::SecurityGroup") if name.startswith("StudioSecurityGroup"))
    rules = [
        r for r in properties(network, "AWS::EC2::SecurityGroupIngress")
        if r["GroupId"] == {"Fn::GetAtt": [studio_group, "GroupId"]}
    ]
    assert all(r["SourceSecurityGroupId"] == {"Fn::GetAtt": [studio_group, "GroupId"]} for r in rules)
    assert {(r["IpProtocol"], r.get("FromPort"), r.get("ToPort")) for r in rules} == {("tcp", 2049, 2049), ("-1", None, None)}


@pytest.mark.parametrize(("environment", "mode"), [("dev", "PublicInternetOnly"), ("staging", "VpcOnly"), ("prod", "VpcOnly")])
def test_studio_network_mode_follows_the_environment(synthesized: Synthesized, environment, mode):
    (domain,) = properties(synthesized.template(environment, "studio"), "AWS::SageMaker::Domain")
    assert domain["AppNetworkAccessType"] == mode


def test_domain_is_named_after_project_and_environment_with_iam_auth(synthesized: Synthesized, environment):
    (domain,) = properties(synthesized.template(environment, "studio"), "AWS::SageMaker::Domain")
    assert domain["DomainName"] == f"mlops-{environment}"
    assert domain["AuthMode"] == "IAM"


def test_domain_defaults_new_studio_idle_shutdown_storage_and_docker(synthesized: Synthesized, environment):
    config = environment_config(environment).studio
    (domain,) = properties(synthesized.template(environment, "studio"), "AWS::SageMaker::Domain")
    user = domain["DefaultUserSettings"]

    assert user["StudioWebPortal"] == "ENABLED"
    assert user["DefaultLandingUri"] == "studio::"
    idle = user["JupyterLabAppSettings"]["AppLifecycleManagement"]["IdleSettings"]
    assert idle["LifecycleManagement"] == "ENABLED"
    assert idle["IdleTimeoutInMinutes"] == config.idle_timeout_minutes
    ebs = user["SpaceStorageSettings"]["DefaultEbsStorageSettings"]
    assert ebs == {"DefaultEbsVolumeSizeInGb": config.default_space_storage_gb, "MaximumEbsVolumeSizeInGb": config.max_space_storage_gb}
    assert domain["DomainSettings"]["DockerSettings"]["EnableDockerAccess"] == "ENABLED"


def _offered_git_repositories(synthesized: Synthesized, environment: str) -> list[list[dict]]:
    """What the domain's private-space and shared-space JupyterLab settings offer to clone."""
    (domain,) = properties(synthesized.template(environment, "studio"), "AWS::SageMaker::Domain")
    return [settings["JupyterLabAppSettings"].get("CodeRepositories", []) for settings in (domain["DefaultUserSettings"], domain["DefaultSpaceSettings"])]


def test_every_jupyterlab_space_offers_the_configured_git_repositories_for_cloning(synthesized: Synthesized, environment):
    expected = [{"RepositoryUrl": url} for url in environment_config(environment).studio.git_repositories]

    assert _offered_git_repositories(synthesized, environment) == [expected, expected]


def test_a_configured_git_repository_is_offered_in_private_and_shared_spaces(optional_pieces_on: Synthesized):
    expected = [{"RepositoryUrl": url} for url in GIT_REPOSITORIES]

    assert expected
    assert _offered_git_repositories(optional_pieces_on, "dev") == [expected, expected]


def test_one_user_profile_per_configured_user(synthesized: Synthesized, environment):
    users = [u.name for u in environment_config(environment).studio.users]
    profiles = properties(synthesized.template(environment, "studio"), "AWS::SageMaker::UserProfile")
    assert sorted(p["UserProfileName"] for p in profiles) == sorted(users)


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_disposable_environments_delete_domain_and_profiles_after_the_clean_up(synthesized: Synthesized, environment):
    studio = synthesized.template(environment, "studio")
    (cleanup,) = resources(studio, "Custom::StudioDomainCleanup").values()
    profiles = resources(studio, "AWS::SageMaker::UserProfile")
    domains = resources(studio, "AWS::SageMaker::Domain")

    assert set(profiles) <= set(cleanup["DependsOn"])
    assert cleanup["Properties"]["DomainLogicalId"] in domains
    # The policy that lets the clean-up reach the domains goes only after the clean-up is done with them.
    (access,) = [name for name in resources(studio, "AWS::IAM::Policy") if name.startswith("DomainCleanupDomainAccess")]
    assert access in cleanup["DependsOn"]
    assert cleanup["Properties"]["DomainRetained"] == "false"
    for name, resource in {**profiles, **domains}.items():
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Delete", "Delete"), name


def test_prod_retains_domain_and_profiles_and_its_clean_up_may_call_nothing(synthesized: Synthesized):
    studio = synthesized.template("prod", "studio")
    for resource_type in ("AWS::SageMaker::Domain", "AWS::SageMaker::UserProfile"):
        for name, resource in resources(studio, resource_type).items():
            assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain"), name
    (cleanup,) = properties(studio, "Custom::StudioDomainCleanup")
    assert cleanup["DomainRetained"] == "true"
    actions = {a for s in policy_statements(studio, role_named(studio, "DomainCleanupHandlerRole")) for a in _actions(s)}
    assert not {a for a in actions if not a.startswith("logs:")}


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_domain_cleanup_gives_up_well_within_cloudformations_hour(synthesized: Synthesized, environment):
    studio = synthesized.template(environment, "studio")
    (waiter,) = resources(studio, "AWS::StepFunctions::StateMachine").values()
    # The function ARNs are tokens inside JSON strings: leaving them out keeps the JSON valid.
    definition = json.loads("".join(part for part in waiter["Properties"]["DefinitionString"]["Fn::Join"][1] if isinstance(part, str)))
    (retry,) = definition["States"]["framework-isComplete-task"]["Retry"]

    assert retry["IntervalSeconds"] * retry["MaxAttempts"] <= 45 * 60


def _statements(template: dict, role_prefix: str) -> list[dict]:
    return policy_statements(template, role_named(template, role_prefix))


# Actions AWS offers only on "*": listing, searching, describing the network, the metrics and opening MLflow's UI.
_ONLY_ON_STAR = (
    "sagemaker:List",
    "sagemaker:Search",
    "sagemaker:GetSearchSuggestions",
    "ec2:Describe",
    "cloudwatch:PutMetricData",
    "sagemaker-mlflow:AccessUI",
)


def test_execution_role_uses_star_only_where_aws_offers_nothing_narrower(synthesized: Synthesized, environment):
    for statement in _statements(synthesized.template(environment, "studio"), "ExecutionRole"):
        if statement["Resource"] == "*":
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all(action.startswith(_ONLY_ON_STAR) for action in actions), statement["Sid"]


def test_execution_role_can_pass_itself_only_to_sagemaker(synthesized: Synthesized, environment):
    passes = [s for s in _statements(synthesized.template(environment, "studio"), "ExecutionRole") if s["Action"] == "iam:PassRole"]
    # dev's draft pipelines also pass the pipeline role; the role passing itself is the statement about itself.
    (pass_itself,) = [s for s in passes if "ExecutionRole" in json.dumps(s["Resource"])]
    assert pass_itself["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    # Studio's image builds (sm-docker) pass the build role, to CodeBuild only.
    for statement in passes:
        service = "codebuild" if "ImageBuildRole" in json.dumps(statement["Resource"]) else "sagemaker"
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": f"{service}.amazonaws.com"}}


def test_data_access_policies_cover_only_this_environments_buckets_key_and_repositories(synthesized: Synthesized, environment):
    storage = synthesized.template(environment, "storage")
    own = set(resources(storage, "AWS::S3::Bucket")) | set(resources(storage, "AWS::KMS::Key")) | set(resources(storage, "AWS::ECR::Repository"))
    statements = [s for policy in properties(storage, "AWS::IAM::ManagedPolicy") for s in policy["PolicyDocument"]["Statement"]]
    for statement in statements:
        # ECR's token has no resource; the promoter policy lets release managers invoke the promotion function.
        if statement["Action"] in ("ecr:GetAuthorizationToken", "lambda:InvokeFunction"):
            continue
        referenced = {logical_id for logical_id in own if logical_id in str(statement["Resource"])}
        assert referenced, statement["Sid"]
        # Wildcards only in object keys, after a bucket ARN's "/".
        assert "*" not in re.sub(r"/[^']*'", "'", str(statement["Resource"])), statement["Sid"]


@pytest.mark.parametrize(("environment", "protected"), [("dev", False), ("staging", False), ("prod", True)])
def test_only_prod_stacks_have_termination_protection(synthesized: Synthesized, environment, protected):
    assert {name: stack.get("terminationProtection", False) for name, stack in synthesized.stacks(environment).items()} == {
        f"{environment}-{name}": protected for name in STACKS
    }


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_s3_gateway_endpoint_reaches_only_this_accounts_buckets_and_ecr_layers(synthesized: Synthesized, environment):
    config = environment_config(environment)
    (endpoint,) = [
        e for e in properties(synthesized.template(environment, "network"), "AWS::EC2::VPCEndpoint") if e.get("VpcEndpointType") != "Interface"
    ]
    statements = {s["Sid"]: s for s in endpoint["PolicyDocument"]["Statement"]}

    assert set(statements) == {"ThisAccountsBuckets", "EcrImageLayers"}
    assert all(s["Effect"] == "Allow" for s in statements.values())
    assert statements["ThisAccountsBuckets"]["Condition"] == {"StringEquals": {"aws:ResourceAccount": config.account}}
    assert statements["EcrImageLayers"]["Action"] == "s3:GetObject"
    assert statements["EcrImageLayers"]["Resource"] == f"arn:aws:s3:::prod-{config.region}-starport-layer-bucket/*"
