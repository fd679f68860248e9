"""Reading synthesized CloudFormation templates in assertions."""

from __future__ import annotations

import json


def resources(template: dict, resource_type: str) -> dict[str, dict]:
    """Logical ID -> resource, for every resource of `resource_type`."""
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def properties(template: dict, resource_type: str) -> list[dict]:
    return [r.get("Properties", {}) for r in resources(template, resource_type).values()]


def only(template: dict, resource_type: str) -> tuple[str, dict]:
    """The logical ID and properties of the one resource of `resource_type` (fails if not exactly one)."""
    ((name, resource),) = resources(template, resource_type).items()
    return name, resource["Properties"]


def role_named(template: dict, prefix: str) -> str:
    """The logical ID of the IAM role whose logical ID starts with `prefix`."""
    return next(name for name in resources(template, "AWS::IAM::Role") if name.startswith(prefix))


def policy_statements(template: dict, role: str) -> list[dict]:
    """Every statement of the inline policies attached to the role with logical ID `role`."""
    return [
        statement
        for policy in properties(template, "AWS::IAM::Policy")
        if {"Ref": role} in policy["Roles"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def state_machine_definition(template: dict, logical_id_prefix: str) -> tuple[dict, dict]:
    """The properties and the parsed definition of the state machine whose logical ID starts with
    `logical_id_prefix`. CloudFormation values inside the definition's strings (ARNs, names) are read
    as the placeholder "<cfn>": enough to check its structure and numbers."""
    properties = next(r["Properties"] for name, r in resources(template, "AWS::StepFunctions::StateMachine").items() if name.startswith(logical_id_prefix))
    text = properties["DefinitionString"]
    if isinstance(text, dict):
        text = "".join(part if isinstance(part, str) else "<cfn>" for part in text["Fn::Join"][1])
    return properties, json.loads(text)


def cfn_text(value) -> str:
    """A CloudFormation string value as text, references written as ``<LogicalId>`` or ``<LogicalId.Attribute>``."""
    if isinstance(value, str):
        return value
    ((function, argument),) = value.items()
    if function == "Fn::Join":
        return argument[0].join(cfn_text(part) for part in argument[1])
    if function == "Fn::GetAtt":
        return f"<{argument[0]}.{argument[1]}>"
    if function == "Ref":
        return f"<{argument}>"
    if function == "Fn::GetStackOutput":
        return f"<{argument['OutputName']}>"
    raise ValueError(f"cfn_text() does not read {function}")


def without_other_models(template: dict, config) -> dict:
    """The deployment `template` with the resources of the model that keeps the environment's names and the
    environment's own; the other models' (under construct Model-<name>) are left out."""
    others = tuple(f"Model{name}" for name, unit in config.model_units().items() if not unit.environment_names)
    return {**template, "Resources": {key: resource for key, resource in template["Resources"].items() if not key.startswith(others)}}
