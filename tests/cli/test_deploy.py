"""`mlops deploy status|approve|deny|rollback` against the synthesized deployer running in moto."""

from __future__ import annotations

import json

import pytest
import yaml

from mlops_cli.commands.deploy import BAKE_STATES
from mlops_cli.errors import FAILED
from mlops_constructs.canary_deployer.canary import APPROVAL_STATE
from tests.behaviour import sfn_harness
from tests.behaviour.deployer_world import GROUP, STATE_MACHINE, released_world
from tests.cli.conftest import run_mlops
from tests.synth import TEST_CONFIG_DIR


@pytest.fixture
def approval_world(approval_template, world_mlops):
    with released_world(approval_template) as world:
        yield world


@pytest.fixture
def released(variants_template, world_mlops):
    with released_world(variants_template) as world:
        yield world


def _waiting_for_approval(world) -> str:
    execution = world.start(world.register())
    world.wait_for_state(execution, APPROVAL_STATE)
    world.task_token(execution)
    return execution


def test_status_shows_what_serves_and_the_last_outcome(world_mlops, released):
    result = world_mlops("deploy", "status", "--env", "dev", "--model", "tabular", "--json")

    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    assert [(v["variant"], v["weight"], v["version"]) for v in status["serving"]["variants"]] == [("blue", 1.0, 1)]
    assert status["running"] is None
    assert (status["last_outcome"]["status"], status["last_outcome"]["version"]) == ("SUCCEEDED", 1)
    assert {alarm["name"] for alarm in status["alarms"]} == set(released.alarms.values())


def test_status_of_a_serverless_environment_shows_its_serverless_endpoint_and_alarms(world_config, world_mlops, serverless_template):
    # dev as the test config has it: serverless (the world config puts the other worlds' dev on instances).
    dev = yaml.safe_load((world_config / "dev.yaml").read_text())
    dev["deployment"] = yaml.safe_load((TEST_CONFIG_DIR / "dev.yaml").read_text())["deployment"]
    (world_config / "dev.yaml").write_text(yaml.safe_dump(dev))
    with released_world(serverless_template) as world:
        result = world_mlops("deploy", "status", "--env", "dev", "--model", "tabular", "--json")
        shown = world_mlops("deploy", "status", "--env", "dev", "--model", "tabular").stdout

    assert result.exit_code == 0, result.stderr
    (row,) = [line for line in shown.splitlines() if "mlops-dev-serverless-model-v1" in line]
    assert "mlops-dev-serverless (InService)" in shown and row.split()[1:4] == ["blue", "│", "1.0"] and "serverless" in row
    status = json.loads(result.stdout)
    assert [(v["variant"], v["weight"], v["instances"], v["version"]) for v in status["serving"]["variants"]] == [("blue", 1.0, None, 1)]
    assert {alarm["name"] for alarm in status["alarms"]} == set(world.alarms.values())


def test_status_shows_the_phase_and_the_waiting_approval(world_mlops, approval_world):
    _waiting_for_approval(approval_world)

    result = world_mlops("deploy", "status", "--env", "dev", "--model", "tabular", "--json")

    running = json.loads(result.stdout)["running"]
    assert (running["phase"], running["waiting_for_approval"], running["version"], running["release"]) == (APPROVAL_STATE, True, 2, "approval")


def test_status_during_the_bake_shows_when_it_ends(world_mlops, variants_template, released):
    with sfn_harness.held_before("Bake") as held:
        execution = released.start(released.register())
        held.reached()
        running = json.loads(world_mlops("deploy", "status", "--env", "dev", "--model", "tabular", "--json").stdout)["running"]

    assert running["phase"] in BAKE_STATES and "bake_ends" in running
    assert released.wait(execution).status == "SUCCEEDED"


def test_the_bake_states_are_the_deployers(variants_template):
    (deployer,) = [
        resource for resource in variants_template["Resources"].values()
        if resource["Type"] == "AWS::StepFunctions::StateMachine" and resource["Properties"].get("StateMachineName") == STATE_MACHINE
    ]
    definition = json.dumps(deployer["Properties"]["DefinitionString"])

    assert [name for name in BAKE_STATES if f'\\"{name}\\":{{' not in definition] == []


def test_status_tells_people_how_to_answer_the_approval(world_mlops, approval_world):
    _waiting_for_approval(approval_world)

    result = world_mlops("deploy", "status", "--env", "dev", "--model", "tabular")

    assert f"phase: {APPROVAL_STATE}" in result.stdout
    assert "mlops deploy approve --env dev --model tabular" in result.stdout


def test_status_shows_an_alarm_in_alarm(world_mlops, released):
    released.set_alarm(released.alarms["green-5xx"])

    result = world_mlops("deploy", "status", "--env", "dev", "--model", "tabular", "--json")

    states = {alarm["name"]: alarm["state"] for alarm in json.loads(result.stdout)["alarms"]}
    assert states[released.alarms["green-5xx"]] == "ALARM"


def test_approve_promotes_the_waiting_canary(world_mlops, approval_world):
    execution = _waiting_for_approval(approval_world)

    result = world_mlops("deploy", "approve", "--env", "dev", "--model", "tabular")

    assert result.exit_code == 0, result.stderr
    assert approval_world.wait(execution).status == "SUCCEEDED"
    assert approval_world.live_variants() == {"green": 1.0}


def test_deny_rolls_the_waiting_canary_back_with_the_note(world_mlops, approval_world):
    execution = _waiting_for_approval(approval_world)

    result = world_mlops("deploy", "deny", "--env", "dev", "--model", "tabular", "--note", "latency doubled in the canary")

    assert result.exit_code == 0, result.stderr
    ended = approval_world.wait(execution)
    assert ended.status == "FAILED" and "latency doubled in the canary" in ended.cause
    assert approval_world.live_variants() == {"blue": 1.0}


def test_approve_with_nothing_waiting_says_so(world_mlops, released):
    result = world_mlops("deploy", "approve", "--env", "dev", "--model", "tabular")

    assert result.exit_code == FAILED
    assert "nothing is waiting for approval in" in result.stderr and "no deployment is running" in result.stderr


def test_rollback_starts_the_deployer_with_the_explicit_rollback_input(world_mlops, released):
    packages = released.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    (version_1,) = [package["ModelPackageArn"] for package in packages if package["ModelPackageVersion"] == 1]
    assert released.deploy(released.register()).status == "SUCCEEDED"

    result = world_mlops("deploy", "rollback", "--to", "1", "--env", "dev", "--model", "tabular")

    assert result.exit_code == 0, result.stderr
    (execution,) = [e for e in released.sfn.list_executions(stateMachineArn=released.state_machine)["executions"] if e["name"].startswith("rollback-to-v1-")]
    (started,) = sfn_harness.wait(released.sfn, execution["executionArn"]).events("ExecutionStarted")
    assert json.loads(started["executionStartedEventDetails"]["input"]) == {"ModelPackageArn": version_1, "Release": "rollback"}


def test_rollback_to_the_version_serving_is_refused(world_mlops, released):
    result = world_mlops("deploy", "rollback", "--to", "1", "--env", "dev", "--model", "tabular")

    assert result.exit_code == FAILED
    assert "version 1 is already serving" in result.stderr


def test_rollback_to_a_rejected_version_is_refused(world_mlops, released):
    released.register(status="Rejected")

    result = world_mlops("deploy", "rollback", "--to", "2", "--env", "dev", "--model", "tabular")

    assert result.exit_code == FAILED
    assert "version 2 is Rejected: only an Approved version can be deployed" in result.stderr


def test_status_of_an_undeployed_environment_says_so(world_config, credentials, monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("MOTO_ACCOUNT_ID", sfn_harness.PSEUDO_PARAMETERS["AWS::AccountId"])
    with mock_aws():
        result = run_mlops(world_config, "deploy", "status", "--env", "dev", "--model", "tabular")

    assert result.exit_code == FAILED
    assert "is environment dev deployed?" in result.stderr

