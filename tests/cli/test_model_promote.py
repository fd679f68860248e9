"""`mlops model promote VERSION --from staging --to prod`, end to end against moto in two accounts.

moto runs Lambda functions only in Docker, which these tests do not have, so the command's Invoke is
answered in process, as Lambda answers it: the promotion handler runs on the request's payload (with the
target role's clients of tests/behaviour/promotion_world.py), its answer is the payload, and an exception
becomes a `FunctionError` with Lambda's error document (errorMessage, errorType). Everything else the
command does (the credentials' check, the request it sends) meets moto.
"""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

from config.naming import promotion_function_name
from mlops_cli import environment as cli_environment
from mlops_cli.errors import FAILED
from tests import promotion_app as app
from tests.behaviour.promotion_world import COPIES_PREFIX, promotion_world


@pytest.fixture
def prod(config_dir):
    config = cli_environment.load_config("prod", config_dir)
    # The promotion app names what the test config's prod and staging are.
    assert (config.account, config.region, config.prefix) == (app.TARGET_ACCOUNT, app.REGION, app.TARGET_PREFIX)
    return config


def _hold_credentials_of(account: str, monkeypatch) -> None:
    """The command's credentials: a role's session in `account` (moto tells accounts apart by credentials;
    MOTO_ACCOUNT_ID would put every caller, the source's too, in one account)."""
    sts = boto3.client("sts", region_name=app.REGION)
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/release-manager", RoleSessionName="release-manager")["Credentials"]
    for name, key in (("AWS_ACCESS_KEY_ID", "AccessKeyId"), ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"), ("AWS_SESSION_TOKEN", "SessionToken")):
        monkeypatch.setenv(name, credentials[key])


@pytest.fixture
def world(credentials, prod, monkeypatch):
    monkeypatch.delenv("MOTO_ACCOUNT_ID")
    with promotion_world() as world:
        _hold_credentials_of(prod.account, monkeypatch)
        yield world


@pytest.fixture
def invoked(world, monkeypatch) -> list[dict]:
    """Every Invoke the command makes, answered by the promotion handler; the requests it sent."""
    requests: list[dict] = []

    def invoke(params, **_):
        function = params["url_path"].split("/functions/", 1)[1].split("/", 1)[0]
        assert function == promotion_function_name(app.TARGET_PREFIX)
        event = json.loads(params["body"])
        requests.append(event)
        try:
            payload, error = world.handle(event), None
        except Exception as raised:  # Lambda reports any exception of the handler this way
            payload, error = {"errorMessage": str(raised), "errorType": type(raised).__name__, "stackTrace": []}, "Unhandled"
        body = json.dumps(payload).encode()
        parsed = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body)), **({"FunctionError": error} if error else {})}
        return AWSResponse(params["url"], 200, {}, None), parsed

    class Session(boto3.Session):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.events.register("before-call.lambda.Invoke", invoke)

    monkeypatch.setattr(cli_environment.boto3, "Session", Session)
    return requests


def test_promote_copies_the_version_and_says_where_it_landed_and_what_comes_next(mlops, world, invoked):
    version = world.register_source_version()

    result = mlops("model", "promote", str(version), "--from", "staging", "--to", "prod")

    assert result.exit_code == 0, result.stderr
    assert invoked == [{"version": version, "sourceEnvironment": "staging"}]
    assert f"Version {version} of training in staging is now version 1 of {app.TARGET_GROUP} in prod, PendingManualApproval." in result.stdout
    assert f"Artifact: s3://{app.TARGET_BUCKET}/{COPIES_PREFIX}training/staging/v{version}/model/model.tar.gz" in result.stdout
    assert "mlops model approve 1 --env prod" in result.stdout
    (package,) = world.target_packages()
    assert package["ModelApprovalStatus"] == "PendingManualApproval"


def test_promote_again_says_the_version_was_promoted_before(mlops, world, invoked):
    version = world.register_source_version()
    mlops("model", "promote", str(version), "--from", "staging", "--to", "prod")

    result = mlops("model", "promote", str(version), "--from", "staging", "--to", "prod")

    assert result.exit_code == 0, result.stderr
    assert f"was promoted before: it is version 1 of {app.TARGET_GROUP} in prod" in result.stdout
    assert len(world.target_packages()) == 1


def test_promote_names_the_model_when_asked_to(mlops, world, invoked):
    version = world.register_source_version()

    mlops("model", "promote", str(version), "--from", "staging", "--to", "prod", "--model", "training")

    assert invoked == [{"version": version, "sourceEnvironment": "staging", "model": "training"}]


def test_promote_as_json_gives_the_functions_answer(mlops, world, invoked):
    version = world.register_source_version()

    result = mlops("model", "promote", str(version), "--from", "staging", "--to", "prod", "--json")

    answer = json.loads(result.stdout)
    assert (answer["targetVersion"], answer["approvalStatus"], answer["alreadyPromoted"]) == (1, "PendingManualApproval", False)


def test_a_refused_promotion_is_one_plain_sentence(mlops, world, invoked):
    version = world.register_source_version(status="PendingManualApproval")

    result = mlops("model", "promote", str(version), "--from", "staging", "--to", "prod")

    assert result.exit_code == FAILED
    assert f"Error: not promoted: training version {version} is PendingManualApproval in staging, not Approved" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failed_promotion_names_its_log_and_says_a_retry_is_safe(mlops, world, invoked, monkeypatch):
    version = world.register_source_version()
    monkeypatch.setattr(world, "handle", lambda event: (_ for _ in ()).throw(TimeoutError("copy timed out")))

    result = mlops("model", "promote", str(version), "--from", "staging", "--to", "prod")

    assert result.exit_code == FAILED
    assert "the promotion failed: TimeoutError: copy timed out" in result.stderr
    assert f"log group /aws/lambda/{promotion_function_name(app.TARGET_PREFIX)} in prod" in result.stderr
    assert "running the command again is safe" in result.stderr


def test_promote_with_credentials_of_another_account_is_refused_before_anything(mlops, world, invoked, monkeypatch):
    _hold_credentials_of(app.SOURCE_ACCOUNT, monkeypatch)

    result = mlops("model", "promote", "1", "--from", "staging", "--to", "prod")

    assert result.exit_code == FAILED
    assert f"but environment prod is account {app.TARGET_ACCOUNT}" in result.stderr
    assert invoked == []


def test_an_environment_without_a_promotion_function_says_so(mlops, world):
    result = mlops("model", "promote", "1", "--from", "staging", "--to", "prod")

    assert result.exit_code == FAILED
    assert f"environment prod has no promotion function {promotion_function_name(app.TARGET_PREFIX)}" in result.stderr


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [("prod", "prod", "--from and --to are both prod"), ("qa", "prod", "unknown environment 'qa'"), ("staging", "live", "unknown environment 'live'")],
)
def test_a_promotion_between_no_two_environments_is_refused(mlops, source, target, message):
    result = mlops("model", "promote", "1", "--from", source, "--to", target)

    assert result.exit_code == FAILED
    assert message in result.stderr
