"""Models as units in the templates: the model keeping the environment's names keeps every logical ID and
physical name an environment with one model had, and each model's approval rule starts its own deployer
on its own group's approvals only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moto.events.models import EventPattern

from config import ENVIRONMENTS
from config.naming import deployer_name, model_package_group_name
from tests.synth import Synthesized, environment_config
from tests.unit.test_deployment import model_package_state_change

# Every resource with a physical name in the model-build, deployment and operations stacks of each
# environment as it was synthesized before environments had several models, by environment/stack/logical ID;
# dev's alarms and endpoint clean-up since as dev serves serverless (a switch of serving modes releases to
# the other mode's endpoint and retires the old one, see the configuration reference).
RECORDED = Path(__file__).resolve().parent / "recorded" / "environment_named_resources.json"
STACKS = ("model-build", "deployment", "operations")


def _named(synthesized: Synthesized, environment: str, stack: str) -> dict[str, dict]:
    named = {}
    for logical_id, resource in synthesized.template(environment, stack)["Resources"].items():
        properties = resource.get("Properties") or {}
        names = {key: value for key, value in properties.items() if (key.endswith("Name") or key == "Name") and key != "MetricName" and isinstance(value, str)}
        if names:
            named[f"{environment}/{stack}/{logical_id}"] = {"type": resource["Type"], **names}
    return named


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_environment_named_model_keeps_every_logical_id_and_physical_name_it_had(synthesized: Synthesized, environment):
    # A named resource under a new logical ID is created before the old one is deleted, and the name clashes.
    recorded = {key: value for key, value in json.loads(RECORDED.read_text()).items() if key.startswith(f"{environment}/")}
    now = {key: value for stack in STACKS for key, value in _named(synthesized, environment, stack).items()}

    assert {key: now.get(key) for key in recorded} == recorded


def _approval_rules(synthesized: Synthesized) -> dict[str, dict]:
    """dev's approval rules by the deployer they start (its state machine's logical ID)."""
    rules = synthesized.template("dev", "deployment")["Resources"]
    return {
        rule["Properties"]["Targets"][0]["Arn"]["Ref"]: rule["Properties"]
        for rule in rules.values()
        if rule["Type"] == "AWS::Events::Rule" and rule["Properties"]["EventPattern"]["source"] == ["aws.sagemaker"]
    }


def _deployer_of(synthesized: Synthesized, model: str) -> str:
    name = deployer_name(environment_config("dev").model_units()[model].stem)
    machines = synthesized.template("dev", "deployment")["Resources"]
    (logical_id,) = [key for key, machine in machines.items() if machine["Type"] == "AWS::StepFunctions::StateMachine" and machine["Properties"].get("StateMachineName") == name]
    return logical_id


@pytest.mark.parametrize("model", ["tabular", "churn"])
def test_each_models_approval_rule_starts_its_deployer_on_its_own_groups_approvals_only(synthesized: Synthesized, model):
    units = environment_config("dev").model_units()
    own = model_package_group_name(units[model].stem)
    (other,) = [model_package_group_name(unit.stem) for name, unit in units.items() if name != model]
    pattern = EventPattern.load(json.dumps(_approval_rules(synthesized)[_deployer_of(synthesized, model)]["EventPattern"]))

    assert pattern.matches_event(model_package_state_change(group=own))
    assert not pattern.matches_event(model_package_state_change(group=other))


def test_every_model_has_one_approval_rule(synthesized: Synthesized):
    deployers = {_deployer_of(synthesized, model) for model in environment_config("dev").model_units()}

    assert set(_approval_rules(synthesized)) == deployers
