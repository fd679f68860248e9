"""Config validation: bad input fails synth with the file, the key and what is accepted."""

from __future__ import annotations

from pathlib import Path

import botocore
import pytest
import yaml

from config import ENVIRONMENTS, ConfigError, load_environment, load_environments
from config.settings import known_regions
from pipeline_code.settings import SKLEARN_VERSION
from tests.conftest import aws_unreachable
from tests.synth import TEST_CONFIG_DIR, environment_config


def _write_variant(tmp_path: Path, change) -> Path:
    config = yaml.safe_load((TEST_CONFIG_DIR / "dev.yaml").read_text())
    change(config)
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_shipped_config_is_valid(environment):
    config = environment_config(environment)

    assert config.name == environment
    assert config.prefix == f"{config.project}-{environment}"


def test_wrong_type_names_file_key_and_what_is_accepted(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["studio"].update(idle_timeout_minutes="an hour"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    message = str(error.value)
    assert "dev.yaml" in message
    assert "studio.idle_timeout_minutes" in message
    assert "valid integer" in message
    assert "'an hour'" in message


def test_unknown_key_lists_the_accepted_keys(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["storage"].update(retension="retain"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    message = str(error.value)
    assert "storage.retension: unknown key" in message
    assert "removal" in message and "noncurrent_version_expiration_days" in message


def test_value_outside_the_allowed_set_lists_the_allowed_values(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["network"].update(studio_network_mode="Private"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "network.studio_network_mode: Input should be 'PublicInternetOnly' or 'VpcOnly'" in str(error.value)


def test_missing_file_is_an_error_not_a_fallback(tmp_path):
    (tmp_path / "dev.yaml").write_text((TEST_CONFIG_DIR / "dev.yaml").read_text())

    with pytest.raises(ConfigError) as error:
        load_environment(tmp_path, "prod")

    message = str(error.value)
    assert "prod.yaml: no such config file" in message
    assert "found: dev" in message
    assert "no fallback" in message


@pytest.mark.parametrize("account", ["12345", "1234567890123", "abcdefghijkl"])
def test_bad_account_id_explains_the_expected_format(tmp_path, account):
    config_dir = _write_variant(tmp_path, lambda c: c.update(account=account))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "account: must be a 12-digit AWS account ID" in str(error.value)


def _write_dev_text(tmp_path: Path, replace: str, by: str) -> Path:
    text = (TEST_CONFIG_DIR / "dev.yaml").read_text()
    assert replace in text
    (tmp_path / "dev.yaml").write_text(text.replace(replace, by))
    return tmp_path


@pytest.mark.parametrize("written", ["012345670123", "123456789012"])
def test_unquoted_account_id_asks_for_quotes_and_shows_the_id_as_written(tmp_path, written):
    # YAML reads 012345670123 as the octal number 1402433619, and 123456789012 as a decimal number.
    config_dir = _write_dev_text(tmp_path, f'account: "{environment_config("dev").account}"', f"account: {written}")

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    message = str(error.value)
    assert "dev.yaml: 1 error(s):" in message
    assert f'account: write the account ID in quotes, account: "{written}"' in message
    assert str(yaml.safe_load(f"a: {written}")["a"]) not in message.replace(written, "")


def test_missing_required_key_is_named(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c.pop("region"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "region: required key is missing" in str(error.value)


def test_vpc_and_existing_vpc_are_mutually_exclusive(tmp_path):
    existing = {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0"], "availability_zones": ["eu-west-1a"]}
    config_dir = _write_variant(tmp_path, lambda c: c["network"].update(existing_vpc=existing))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "network: set exactly one of 'vpc' (create one) or 'existing_vpc'" in str(error.value)


def test_duplicate_studio_users_are_rejected(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["studio"].update(users=[{"name": "ana"}, {"name": "ana"}]))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "studio: user names must be unique; repeated: ana" in str(error.value)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("git@github.com:team/repo.git", "must be an HTTPS clone URL"),
        ("http://github.com/team/repo.git", "must be an HTTPS clone URL"),
        ("https://user:token@github.com/team/repo.git", "no user name, port or query"),
        ("https://github.com/team/repo.git?ref=main", "no user name, port or query"),
    ],
)
def test_studio_git_repository_must_be_a_plain_https_url(tmp_path, url, complaint):
    config_dir = _write_variant(tmp_path, lambda c: c["studio"].update(git_repositories=[url]))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "studio.git_repositories.0" in str(error.value)
    assert complaint in str(error.value)


def test_studio_git_repositories_are_unique_and_at_most_ten(tmp_path):
    url = "https://github.com/team/repo.git"
    (tmp_path / "repeated").mkdir()
    (tmp_path / "many").mkdir()
    repeated = _write_variant(tmp_path / "repeated", lambda c: c["studio"].update(git_repositories=[url, url]))
    too_many = _write_variant(
        tmp_path / "many", lambda c: c["studio"].update(git_repositories=[f"https://github.com/team/repo{i}.git" for i in range(11)])
    )

    with pytest.raises(ConfigError) as error:
        load_environment(repeated, "dev")
    assert f"git_repositories must be unique; repeated: {url}" in str(error.value)
    with pytest.raises(ConfigError) as error:
        load_environment(too_many, "dev")
    assert "studio.git_repositories: List should have at most 10 items" in str(error.value)


def test_invalid_yaml_names_the_file(tmp_path):
    (tmp_path / "dev.yaml").write_text("account: [unclosed\n")

    with pytest.raises(ConfigError) as error:
        load_environment(tmp_path, "dev")

    assert "dev.yaml: not valid YAML" in str(error.value)


def test_invalid_yaml_is_one_line_naming_where_it_failed(tmp_path):
    (tmp_path / "dev.yaml").write_text("account: [unclosed\n")

    with pytest.raises(ConfigError) as error:
        load_environment(tmp_path, "dev")

    assert str(error.value) == (
        f"{tmp_path / 'dev.yaml'}: not valid YAML: line 2, column 1: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence at line 1)"
    )


def test_vpc_block_too_small_for_the_subnets_is_rejected(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["network"]["vpc"].update(cidr="10.10.0.0/24"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "network.vpc.cidr: must be a /16 to /18 IPv4 block" in str(error.value)


def test_alarm_polls_slower_than_fifteen_seconds_are_rejected(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["deployment"].update(alarm_poll_seconds=30))

    with pytest.raises(ConfigError, match=r"deployment\.alarm_poll_seconds: Input should be less than or equal to 14"):
        load_environment(config_dir, "dev")


def test_guardrails_bake_longer_than_sagemaker_allows_is_rejected(tmp_path):
    config_dir = _write_variant(
        tmp_path, lambda c: c["deployment"].update(strategy="guardrails", alarm_poll_seconds=10, bake_checks=400, serving={"mode": "instances"})
    )

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "dev.yaml" in str(error.value) and "deployment:" in str(error.value)
    assert "4000 s" in str(error.value) and "3600 s" in str(error.value)


def test_reviewer_role_names_must_be_iam_role_names(tmp_path):
    path = _write_variant(tmp_path, lambda c: c.setdefault("model_build", {}).update(reviewer_role_names=["ml lead"]))

    with pytest.raises(ConfigError, match=r"model_build\.reviewer_role_names\.0"):
        load_environment(path, "dev")


def test_approver_role_names_must_be_iam_role_names(tmp_path):
    path = _write_variant(tmp_path, lambda c: c.setdefault("deployment", {}).update(approver_role_names=["release manager"]))

    with pytest.raises(ConfigError, match=r"deployment\.approver_role_names\.0"):
        load_environment(path, "dev")


def test_unknown_region_names_the_file_and_key(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c.update(region="eu-west-9"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert str(error.value).splitlines() == [
        f"{config_dir / 'dev.yaml'}: 1 error(s):",
        f"  region: is not an AWS region known to botocore {botocore.__version__} (got 'eu-west-9')",
    ]


def test_region_without_the_scikit_learn_image_names_the_key_and_the_regions_that_have_it(tmp_path):
    def to_mexico(config):
        config.update(region="mx-central-1")
        config["network"]["vpc"].update(availability_zones=["mx-central-1a", "mx-central-1b"])

    with pytest.raises(ConfigError) as error:
        load_environment(_write_variant(tmp_path, to_mexico), "dev")

    (problem,) = str(error.value).splitlines()[1:]
    assert problem.startswith(f"  region: has no SageMaker scikit-learn {SKLEARN_VERSION} image, which the pipelines and batch jobs run on; ")
    assert "eu-west-1, eu-west-2" in problem and problem.endswith("(got 'mx-central-1')")


def test_region_of_another_partition_is_accepted(tmp_path):
    def to_china(config):
        config.update(region="cn-north-1")
        config["network"]["vpc"].update(availability_zones=["cn-north-1a", "cn-north-1b"])

    config = load_environment(_write_variant(tmp_path, to_china), "dev")

    assert config.region == "cn-north-1"


def test_known_regions_are_read_without_any_network_call():
    known_regions.cache_clear()
    attempts: list[str] = []

    with aws_unreachable(attempts):
        regions = known_regions()

    assert attempts == []
    assert {"eu-west-1", "us-east-1", "us-gov-west-1", "cn-north-1"} <= regions
    assert "aws-global" not in regions and "eu-west-9" not in regions


def test_availability_zone_of_another_region_names_its_key(tmp_path):
    def zones_of_two_regions(config):
        config["region"] = "eu-west-1"
        config["network"]["vpc"].update(availability_zones=["eu-west-1a", "eu-west-2b"])

    config_dir = _write_variant(tmp_path, zones_of_two_regions)

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "network.vpc.availability_zones.1: is not an availability zone of region eu-west-1 (got 'eu-west-2b')" in str(error.value)


def test_existing_vpc_zones_must_belong_to_the_region(tmp_path):
    existing = {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0"], "availability_zones": ["us-east-1a"]}

    def use_existing_vpc(config):
        config["region"] = "eu-west-1"
        config["network"].pop("vpc")
        config["network"].update(existing_vpc=existing)

    with pytest.raises(ConfigError, match=r"network\.existing_vpc\.availability_zones\.0: is not an availability zone of region eu-west-1"):
        load_environment(_write_variant(tmp_path, use_existing_vpc), "dev")


def test_repeated_key_names_the_key_and_both_lines(tmp_path):
    (tmp_path / "dev.yaml").write_text('region: eu-west-1\naccount: "123456789012"\nregion: eu-west-2\n')

    with pytest.raises(ConfigError) as error:
        load_environment(tmp_path, "dev")

    assert "  region: repeated key (lines 1 and 3); give each key once" in str(error.value)


def test_repeated_nested_key_is_named_by_its_dotted_path(tmp_path):
    config_dir = _write_dev_text(tmp_path, "  removal: destroy\n", "  removal: destroy\n  removal: retain\n")

    with pytest.raises(ConfigError, match=r"  storage\.removal: repeated key"):
        load_environment(config_dir, "dev")


def test_yaml_file_that_is_no_environment_is_reported(tmp_path):
    for environment in ENVIRONMENTS:
        (tmp_path / f"{environment}.yaml").write_text((TEST_CONFIG_DIR / f"{environment}.yaml").read_text())
    (tmp_path / "qa.yaml").write_text((TEST_CONFIG_DIR / "dev.yaml").read_text())

    with pytest.raises(ConfigError) as error:
        load_environments(tmp_path)

    assert str(error.value).startswith(f"{tmp_path / 'qa.yaml'}: not an environment's config file; nothing reads it.")
    assert "The environments are dev, staging, prod" in str(error.value)


def test_errors_of_several_files_are_reported_together(tmp_path):
    for environment in ENVIRONMENTS:
        (tmp_path / f"{environment}.yaml").write_text((TEST_CONFIG_DIR / f"{environment}.yaml").read_text())
    region = environment_config("dev").region
    (tmp_path / "dev.yaml").write_text((tmp_path / "dev.yaml").read_text().replace(f"region: {region}", "region: eu-west-9"))
    (tmp_path / "prod.yaml").unlink()

    with pytest.raises(ConfigError) as error:
        load_environments(tmp_path)

    paragraphs = str(error.value).split("\n\n")
    assert [paragraph.split(":")[0] for paragraph in paragraphs] == [str(tmp_path / "dev.yaml"), str(tmp_path / "prod.yaml")]
    assert "region: is not an AWS region" in paragraphs[0]
    assert "no such config file" in paragraphs[1]


def test_notification_emails_under_deployment_say_where_they_moved(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["deployment"].update(notification_emails=["ml-team@example.com"]))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "deployment.notification_emails: this key has moved to notifications.emails" in str(error.value)


@pytest.mark.parametrize(
    ("slack", "key"),
    [({"workspace_id": "t0123abcd", "channel_id": "C0123ABCD"}, "workspace_id"), ({"workspace_id": "T0123ABCD", "channel_id": "#ml-alerts"}, "channel_id")],
)
def test_slack_ids_must_be_the_ids_slack_shows(tmp_path, slack, key):
    config_dir = _write_variant(tmp_path, lambda c: c["notifications"].update(slack=slack))

    with pytest.raises(ConfigError, match=f"notifications.slack.{key}"):
        load_environment(config_dir, "dev")


def test_daily_digest_takes_a_scheduler_expression(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["notifications"].update(daily_digest="every morning"))

    with pytest.raises(ConfigError, match="notifications.daily_digest: must be rate"):
        load_environment(config_dir, "dev")


def _batch_error(tmp_path: Path, **batch_inference) -> str:
    config_dir = _write_variant(tmp_path, lambda c: c.setdefault("batch_inference", {}).update(batch_inference))
    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")
    return str(error.value)


def test_batch_inference_defaults_apply_when_the_section_is_absent(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c.pop("batch_inference", None))

    batch = load_environment(config_dir, "dev").batch_inference

    assert (batch.instance_count, batch.max_runtime_seconds, batch.image_tag, batch.schedule, batch.image_build) == (1, 3600, None, None, None)


def test_batch_inference_instance_count_outside_sagemakers_bounds_is_rejected(tmp_path):
    message = _batch_error(tmp_path, instance_count=0)

    assert "dev.yaml" in message and "batch_inference.instance_count" in message and "greater than or equal to 1" in message


def test_batch_inference_runtime_above_sagemakers_limit_is_rejected(tmp_path):
    message = _batch_error(tmp_path, max_runtime_seconds=1_000_000)

    assert "batch_inference.max_runtime_seconds" in message and "777600" in message


def test_batch_inference_image_tag_must_be_an_ecr_tag(tmp_path):
    message = _batch_error(tmp_path, image_tag="latest and greatest")

    assert "batch_inference.image_tag" in message


def test_batch_inference_schedule_needs_s3_uris_and_a_schedule_expression(tmp_path):
    message = _batch_error(tmp_path, schedule={"expression": "every night", "input_uri": "data/in", "output_uri": "s3://bucket/out/"})

    assert "batch_inference.schedule.expression" in message and "cron(...)" in message
    assert "batch_inference.schedule.input_uri: must be an S3 URI such as 's3://my-bucket/batch/input/'" in message


def test_a_scheduled_batch_must_write_under_the_batch_output_prefix(tmp_path):
    message = _batch_error(tmp_path, schedule={"expression": "cron(0 3 * * ? *)", "input_uri": "s3://my-bucket/in/", "output_uri": "s3://my-bucket/pipelines/x/"})

    assert "batch_inference.schedule.output_uri: must be under the batch output prefix" in message
    assert "batch-inference/output/" in message


def test_batch_inference_schedule_rejects_unknown_keys(tmp_path):
    message = _batch_error(tmp_path, schedule={"expression": "cron(0 3 * * ? *)", "input_uri": "s3://b/in/", "output_uri": "s3://b/out/", "input": {}})

    assert "batch_inference.schedule.input: unknown key; accepted keys here: expression, input_uri, output_uri" in message


def test_batch_inference_image_build_needs_a_codeconnections_arn(tmp_path):
    message = _batch_error(tmp_path, image_build={"connection_arn": "my-github", "repository": "org/repo"})

    assert "batch_inference.image_build.connection_arn" in message and "CodeConnections" in message


def test_batch_inference_image_build_repository_is_owner_slash_name(tmp_path):
    arn = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0a1b2c3d-4e5f-4a1b-8c2d-3e4f5a6b7c8d"

    message = _batch_error(tmp_path, image_build={"connection_arn": arn, "repository": "https://github.com/org/repo"})

    assert "batch_inference.image_build.repository" in message


def test_manual_approval_with_no_notification_target_names_the_keys_to_set(tmp_path):
    def gate_nobody_hears(config):
        config["deployment"]["manual_approval"] = True
        config["notifications"] = {"emails": []}

    with pytest.raises(ConfigError) as error:
        load_environment(_write_variant(tmp_path, gate_nobody_hears), "dev")

    message = str(error.value)
    assert "dev.yaml" in message
    assert "deployment.manual_approval" in message
    assert "notifications.emails" in message and "notifications.slack" in message
    # The check is about two keys, so it names them instead of dumping the whole file back.
    assert "(got {" not in message


@pytest.mark.parametrize(
    "target",
    [{"emails": ["release-managers@example.com"]}, {"slack": {"workspace_id": "T0123ABCD", "channel_id": "C0123ABCD"}}],
    ids=["emails", "slack"],
)
def test_manual_approval_with_a_notification_target_is_accepted(tmp_path, target):
    def gate_with_target(config):
        config["deployment"]["manual_approval"] = True
        config["notifications"] = target

    assert load_environment(_write_variant(tmp_path, gate_with_target), "dev").deployment.manual_approval


def test_mlflow_mode_outside_serverless_or_tracking_server_lists_both(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["model_build"].update(mlflow={"mode": "provisioned"}))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "model_build.mlflow.mode" in str(error.value)
    assert "'serverless' or 'tracking-server'" in str(error.value)


def test_mlflow_size_without_a_tracking_server_says_the_app_has_none(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["model_build"].update(mlflow={"mode": "serverless", "size": "Small"}))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "model_build.mlflow: " in str(error.value)
    assert "a serverless MLflow App has no size. Remove size, or set mode: tracking-server" in str(error.value)


def test_mlflow_tracking_server_is_small_unless_sized(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["model_build"].update(mlflow={"mode": "tracking-server"}))

    assert load_environment(config_dir, "dev").model_build.mlflow.tracking_server_size == "Small"


def _vpc_only_dev(c: dict, **network) -> None:
    c["network"].update(studio_network_mode="VpcOnly", **network)
    # A VpcOnly environment serves from its private subnets, which serverless endpoints cannot.
    c["deployment"]["serving"] = {"mode": "instances"}


def test_endpoint_zones_outside_the_vpc_are_named_with_the_vpcs_zones(tmp_path):
    dev = yaml.safe_load((TEST_CONFIG_DIR / "dev.yaml").read_text())
    zones = dev["network"]["vpc"]["availability_zones"]
    stranger = next(f"{dev['region']}{letter}" for letter in "abcdefgh" if f"{dev['region']}{letter}" not in zones)
    config_dir = _write_variant(tmp_path, lambda c: _vpc_only_dev(c, endpoint_availability_zones=[stranger]))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert f"network: endpoint_availability_zones: {stranger} not among the VPC's availability_zones ({', '.join(zones)})" in str(error.value)


def test_endpoint_zones_without_vpc_only_studio_are_refused(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["network"].update(endpoint_availability_zones=c["network"]["vpc"]["availability_zones"][:1]))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "only VpcOnly Studio has interface endpoints; remove the key" in str(error.value)


def test_endpoint_zones_default_to_every_zone_of_the_vpc(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: _vpc_only_dev(c))
    network = load_environment(config_dir, "dev").network

    assert network.endpoint_zones == network.vpc.availability_zones


# -- serverless serving ---------------------------------------------------------------------------


def _serverless_dev(tmp_path, **deployment):
    return _write_variant(tmp_path, lambda c: c["deployment"].update(**deployment))


@pytest.mark.parametrize(
    ("deployment", "named"),
    [
        ({"data_capture": {"enabled": True}}, "data_capture.enabled must be false"),
        ({"data_capture": {"enabled": True}, "monitoring": {"enabled": True}}, "monitoring.enabled must be false"),
        ({"strategy": "guardrails"}, "strategy must be 'variants'"),
        ({"instance_type": "ml.m5.large"}, "instance_type apply to serving.mode 'instances' only"),
        ({"initial_instance_count": 2}, "initial_instance_count apply to serving.mode 'instances' only"),
        ({"autoscaling": {"max_capacity": 4}}, "autoscaling apply to serving.mode 'instances' only"),
        ({"canary_weight": 0.5}, "canary_weight apply to serving.mode 'instances' only"),
    ],
    ids=["data capture", "model monitoring", "guardrails", "instance type", "instance count", "autoscaling", "canary weight"],
)
def test_serverless_serving_refuses_what_serverless_endpoints_do_not_support(tmp_path, deployment, named):
    with pytest.raises(ConfigError) as error:
        load_environment(_serverless_dev(tmp_path, **deployment), "dev")

    assert "dev.yaml" in str(error.value) and "deployment: with serving.mode 'serverless'" in str(error.value)
    assert named in str(error.value)


def test_serverless_serving_is_refused_in_a_vpc_only_environment(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["network"].update(studio_network_mode="VpcOnly"))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "dev.yaml" in str(error.value) and "serverless endpoints take no VPC configuration" in str(error.value)


@pytest.mark.parametrize("memory", [512, 1536, 8192])
def test_serverless_memory_must_be_a_size_sagemaker_accepts(tmp_path, memory):
    with pytest.raises(ConfigError) as error:
        load_environment(_serverless_dev(tmp_path, serving={"mode": "serverless", "memory_size_mb": memory}), "dev")

    assert "deployment.serving.memory_size_mb" in str(error.value) and "1024" in str(error.value) and "6144" in str(error.value)


@pytest.mark.parametrize("concurrency", [0, 201])
def test_serverless_max_concurrency_is_within_sagemakers_bounds(tmp_path, concurrency):
    with pytest.raises(ConfigError, match=r"deployment\.serving\.max_concurrency"):
        load_environment(_serverless_dev(tmp_path, serving={"mode": "serverless", "max_concurrency": concurrency}), "dev")


def test_provisioned_concurrency_above_the_maximum_is_refused(tmp_path):
    serving = {"mode": "serverless", "max_concurrency": 2, "provisioned_concurrency": 3}

    with pytest.raises(ConfigError) as error:
        load_environment(_serverless_dev(tmp_path, serving=serving), "dev")

    assert "deployment.serving" in str(error.value) and "provisioned_concurrency (3) must be at most max_concurrency (2)" in str(error.value)


def test_serverless_sizes_with_instance_serving_are_refused(tmp_path):
    config_dir = _write_variant(tmp_path, lambda c: c["deployment"].update(serving={"mode": "instances", "memory_size_mb": 2048}))

    with pytest.raises(ConfigError) as error:
        load_environment(config_dir, "dev")

    assert "memory_size_mb apply to mode 'serverless' only" in str(error.value)


def test_dev_serves_serverless_and_staging_and_prod_on_instances():
    modes = {name: load_environment(TEST_CONFIG_DIR, name).deployment.serving.mode for name in ("dev", "staging", "prod")}

    assert modes == {"dev": "serverless", "staging": "instances", "prod": "instances"}
