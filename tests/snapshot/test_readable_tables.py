"""What the template snapshots hold but cannot show: small readable tables, one file each.

- per environment and state machine, every task state's Retry rules (errors, interval, backoff, attempts)
  and Catch targets, one line per rule: a dropped error name or a changed attempt count is a one-line diff;
- per environment and stack, every role's action -> resource map (with the conditions that scope it);
- per handler folder, the SHA-256 of each source file, since the template snapshots normalize Lambda asset
  hashes away: a changed handler is a visible diff too.
Update on purpose, as the template snapshots: `make snapshot-update`.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from config import ENVIRONMENTS
from tests.synth import ROOT, STACKS, Synthesized
from tests.templates import cfn_text, resources

_GENERATED_SUFFIX = re.compile(r"[0-9A-F]{8}$")


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


def _definition(properties: dict) -> dict:
    text = properties["DefinitionString"]
    if isinstance(text, dict):
        text = "".join(part if isinstance(part, str) else "<cfn>" for part in text["Fn::Join"][1])
    return json.loads(text)


def _rule(retry: dict) -> str:
    interval = retry.get("IntervalSeconds", 1)
    backoff = retry.get("BackoffRate", 2.0)
    extras = "".join(f", {key} {retry[key]}" for key in ("MaxDelaySeconds", "JitterStrategy") if key in retry)
    return f"{', '.join(retry['ErrorEquals'])}: {retry.get('MaxAttempts', 3)} attempts, first after {interval}s, backoff x{backoff}{extras}"


def error_handling(definition: dict) -> dict[str, dict[str, list[str]]]:
    """Task state (including Parallel branches and Map processors, by path) -> its retry and catch rules."""
    table: dict[str, dict[str, list[str]]] = {}

    def walk(states: dict, path: str) -> None:
        for name, state in states.items():
            here = f"{path}{name}"
            if state["Type"] in ("Task", "Parallel", "Map"):
                table[here] = {
                    "retry": [_rule(r) for r in state.get("Retry", [])],
                    "catch": [f"{', '.join(c['ErrorEquals'])} -> {c['Next']}" for c in state.get("Catch", [])],
                }
                if "TimeoutSeconds" in state or "HeartbeatSeconds" in state:
                    table[here]["timeout"] = [f"{key} {state[key]}" for key in ("TimeoutSeconds", "HeartbeatSeconds") if key in state]
            for index, branch in enumerate(state.get("Branches", [])):
                walk(branch["States"], f"{here} / branch {index + 1} / ")
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                walk(processor["States"], f"{here} / item / ")

    walk(definition["States"], "")
    return table


def _machine_name(logical_id: str, properties: dict) -> str:
    name = properties.get("StateMachineName")
    return name if isinstance(name, str) else _GENERATED_SUFFIX.sub("", logical_id)


def _machines(synthesized: Synthesized, environment: str) -> list[tuple[str, str, dict]]:
    return [
        (stack, _machine_name(logical_id, r["Properties"]), r["Properties"])
        for stack in STACKS
        for logical_id, r in resources(synthesized.template(environment, stack), "AWS::StepFunctions::StateMachine").items()
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_state_machines_retries_and_catches_match_their_table(synthesized: Synthesized, snapshot_json, environment):
    tables = {f"{stack}/{name}": error_handling(_definition(properties)) for stack, name, properties in _machines(synthesized, environment)}

    assert tables == snapshot_json


def _statement_lines(statement: dict) -> list[tuple[str, str]]:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    found = statement.get("Resource", [])
    targets = found if isinstance(found, list) else [found]
    condition = f" if {json.dumps(statement['Condition'], sort_keys=True)}" if "Condition" in statement else ""
    effect = "" if statement.get("Effect", "Allow") == "Allow" else "DENY "
    return [(action, f"{effect}{cfn_text(target)}{condition}") for action in actions for target in targets]


def role_permissions(template: dict) -> dict[str, dict[str, list[str]]]:
    """Role (logical ID without its generated suffix) -> action -> the resources (and conditions) its inline
    and attached policies of this stack grant it."""
    roles: dict[str, dict[str, set[str]]] = {}
    names = {logical_id: _GENERATED_SUFFIX.sub("", logical_id) for logical_id in resources(template, "AWS::IAM::Role")}
    documents: list[tuple[str, dict]] = []
    for logical_id, role in resources(template, "AWS::IAM::Role").items():
        documents += [(logical_id, p["PolicyDocument"]) for p in role["Properties"].get("Policies", [])]
        roles.setdefault(names[logical_id], {})
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            roles[names[logical_id]].setdefault("(managed policy)", set()).add(cfn_text(arn) if not isinstance(arn, dict) or "Fn::Join" in arn or "Ref" in arn else json.dumps(arn))
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in resources(template, kind).values():
            for role in policy["Properties"].get("Roles", []):
                if isinstance(role, dict) and role.get("Ref") in names:
                    documents.append((role["Ref"], policy["Properties"]["PolicyDocument"]))
    for logical_id, document in documents:
        for statement in document["Statement"]:
            for action, target in _statement_lines(statement):
                roles.setdefault(names[logical_id], {}).setdefault(action, set()).add(target)
    return {role: {action: sorted(targets) for action, targets in sorted(actions.items())} for role, actions in sorted(roles.items())}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_roles_actions_and_resources_match_their_table(synthesized: Synthesized, snapshot_json, environment, stack):
    assert role_permissions(synthesized.template(environment, stack)) == snapshot_json


def test_each_handlers_source_matches_its_recorded_hash(snapshot_json):
    """The template snapshots normalize Lambda asset hashes away; a handler's change shows here instead."""
    functions = ROOT / "functions"
    hashes = {
        str(path.relative_to(ROOT)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(functions.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }

    assert hashes == snapshot_json
