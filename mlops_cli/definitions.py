"""Pipeline definitions: the working tree's rendering for an environment, and how it differs from the live
definition step by step, with deploy-time values normalised.

The working tree is rendered with ``${Name}`` placeholders where the stack's upsert fills in deploy-time
values (role, buckets, key, subnets, the step scripts' locations). A placeholder matches whatever the live
definition has in its place, as long as every occurrence of it has the same value there; so only real edits
show, and the values learnt say where the live step scripts are.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import tarfile
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config.naming import model_package_group_name, pipeline_name
from config.pipeline_settings import pipeline_settings
from config.settings import ModelUnit
from mlops_cli.environment import Environment
from mlops_cli.errors import MlopsError
from pipeline_code import render
from pipeline_code.settings import PipelineSettings, placeholder

# Where the rendering cache lives: the same folder the CDK app renders into.
RENDER_CACHE = render.PACKAGE_DIR.parent / ".cache" / "pipelines"
# The placeholders of the step scripts' locations: the stack uploads each as a CDK asset. A definition.json
# names each script's whole location as ${Script:<file>}.
SCRIPTS_BUCKET = "ScriptsBucket"
SCRIPT = render.SCRIPT_PLACEHOLDER
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
_MISSING = object()


def script_files(folder: str) -> list[str]:
    return [script.name for script in render.step_scripts(folder)] + [render.SOURCE_ARCHIVE]


def _subnet_count(live: Any) -> int:
    """How many subnets the live definition's jobs run in (0 outside a VPC)."""
    if isinstance(live, dict):
        counts = [len(value) for key, value in live.items() if key == "Subnets" and isinstance(value, list)]
        return max([*counts, *(_subnet_count(value) for value in live.values())], default=0)
    if isinstance(live, list):
        return max((_subnet_count(item) for item in live), default=0)
    return 0


def _settings(env: Environment, folder: str, live: dict | None) -> PipelineSettings:
    """The stack's settings for `folder` in `env`, with placeholders for the step scripts' locations too."""
    return pipeline_settings(
        prefix=env.prefix,
        model_build=env.config.model_build,
        folder=folder,
        partition=env.partition,
        account=env.account,
        region=env.region,
        script_uris={name: f"s3://{placeholder(SCRIPTS_BUCKET)}/{placeholder(SCRIPT + name)}" for name in script_files(folder)},
        job_subnet_count=_subnet_count(live) if live is not None else 0,
        model_package_group=model_package_group_name(_owner(env, folder).stem),
    )


def _owner(env: Environment, folder: str) -> ModelUnit:
    owner = env.config.pipeline_model(folder)
    if owner is None:
        raise MlopsError(f"pipeline_code/{folder}/ belongs to no model of environment {env.name}: add it to one model's pipelines in its config")
    return owner


def _render(folder: str, settings: PipelineSettings) -> dict:
    return json.loads(render.render_cached(folder, settings, RENDER_CACHE).path.read_text())


def render_working_tree(env: Environment, folder: str, live: dict | None) -> dict:
    """The definition the working tree renders for `env`, with placeholders for deploy-time values."""
    return _render(folder, _settings(env, folder, live))


@dataclass
class Difference:
    """Steps only in one of the two definitions, and each changed value by its path."""

    only_local: list[str] = field(default_factory=list)
    only_live: list[str] = field(default_factory=list)
    changed: list[tuple[str, Any, Any]] = field(default_factory=list)
    # Placeholder -> the value the live definition has in its place.
    values: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.only_local or self.only_live or self.changed)


class _Comparison:
    def __init__(self) -> None:
        self.difference = Difference()

    def _matches(self, template: str, value: str) -> bool:
        names = _PLACEHOLDER.findall(template)
        if not names:
            return template == value
        pattern = "".join(
            re.escape(part) if index % 2 == 0 else "(.+?)" for index, part in enumerate(_PLACEHOLDER.split(template))
        )
        match = re.fullmatch(pattern, value, flags=re.DOTALL)
        if not match:
            return False
        found: dict[str, str] = {}
        for name, bound in zip(names, match.groups()):
            if found.setdefault(name, bound) != bound or self.difference.values.get(name, bound) != bound:
                return False
        self.difference.values.update(found)
        return True

    def compare(self, local: Any, live: Any, path: str) -> None:
        if isinstance(local, str) and isinstance(live, str):
            if not self._matches(local, live):
                self.difference.changed.append((path, local, live))
        elif isinstance(local, dict) and isinstance(live, dict):
            for key in [*local, *(key for key in live if key not in local)]:
                inner = f"{path}.{key}" if path else key
                if key not in local or key not in live:
                    self.difference.changed.append((inner, local.get(key, _MISSING), live.get(key, _MISSING)))
                else:
                    self.compare(local[key], live[key], inner)
        elif isinstance(local, list) and isinstance(live, list) and len(local) == len(live):
            for index, (left, right) in enumerate(zip(local, live)):
                self.compare(left, right, f"{path}[{index}]")
        elif local != live:
            self.difference.changed.append((path, local, live))


def _steps(steps: list[dict]) -> dict[str, dict]:
    """Every step by name, the steps of a Condition's branches included, each branch reduced to its names."""
    found: dict[str, dict] = {}
    for step in steps:
        arguments = step.get("Arguments")
        if step.get("Type") == "Condition" and isinstance(arguments, dict):
            branches = {key: arguments[key] for key in ("IfSteps", "ElseSteps") if isinstance(arguments.get(key), list)}
            for branch in branches.values():
                found.update(_steps(branch))
            step = {**step, "Arguments": {**arguments, **{key: [s.get("Name") for s in branch] for key, branch in branches.items()}}}
        found[step.get("Name", "?")] = step
    return found


def difference(local: dict, live: dict) -> Difference:
    """How `live` differs from `local` (the working tree's rendering), step by step."""
    comparison = _Comparison()
    result = comparison.difference
    local_steps, live_steps = _steps(local.get("Steps", [])), _steps(live.get("Steps", []))
    result.only_local = [name for name in local_steps if name not in live_steps]
    result.only_live = [name for name in live_steps if name not in local_steps]
    for name, step in local_steps.items():
        if name in live_steps:
            other = live_steps[name]
            # A step's arguments are named after the step directly: Train.HyperParameters.max_depth.
            comparison.compare(step.get("Arguments", {}), other.get("Arguments", {}), name)
            rest = {key: value for key, value in step.items() if key != "Arguments"}
            comparison.compare(rest, {key: value for key, value in other.items() if key != "Arguments"}, name)
    local_parameters = {parameter.get("Name"): parameter for parameter in local.get("Parameters", [])}
    live_parameters = {parameter.get("Name"): parameter for parameter in live.get("Parameters", [])}
    comparison.compare(local_parameters, live_parameters, "Parameters")
    for key in [*local, *(key for key in live if key not in local)]:
        if key not in ("Steps", "Parameters"):
            comparison.compare({key: local.get(key, _MISSING)}, {key: live.get(key, _MISSING)}, "")
    return result


def shown(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def changed_scripts(env: Environment, folder: str, values: dict[str, str]) -> tuple[list[str], list[str]]:
    """The step scripts whose live copy differs from the working tree's, and those that could not be read."""
    bucket = values.get(SCRIPTS_BUCKET)
    s3 = env.client("s3")
    changed, unreadable = [], []
    for name in script_files(folder):
        key = values.get(SCRIPT + name)
        if bucket is None or key is None:
            continue
        try:
            live = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as error:
            unreadable.append(f"{name} (s3://{bucket}/{key}: {error})")
            continue
        if name == render.SOURCE_ARCHIVE:
            local = render.source_archive(folder, RENDER_CACHE).read_bytes()
        else:
            local = (render.PACKAGE_DIR / folder / name).read_bytes()
        if live != local:
            changed.append(name)
    return changed, unreadable


def render_draft(env: Environment, folder: str, draft: str, live: dict) -> tuple[dict, dict[str, str]]:
    """The working tree's rendering of `folder` named `draft`, and the deploy-time values the deployed
    pipeline `live` uses, learnt by comparing it with the working tree rendered as deployed."""
    learnt = difference(render_working_tree(env, folder, live), live).values
    return _render(folder, dataclasses.replace(_settings(env, folder, live), pipeline_name=draft)), learnt


def script_bodies(folder: str) -> dict[str, bytes]:
    """Each step script of the working tree, and the source archive, as the stack would upload them."""
    bodies = {script.name: script.read_bytes() for script in render.step_scripts(folder)}
    bodies[render.SOURCE_ARCHIVE] = render.source_archive(folder, RENDER_CACHE).read_bytes()
    return bodies


def fill_in(definition: dict, values: dict[str, str]) -> str:
    """The definition with every placeholder replaced by its value (escaped as JSON text), as the upsert
    does; LookupError naming the placeholders without one."""
    text = json.dumps(definition)
    missing = sorted({name for name in _PLACEHOLDER.findall(text) if name not in values})
    if missing:
        raise LookupError(", ".join(missing))
    return _PLACEHOLDER.sub(lambda match: json.dumps(values[match.group(1)])[1:-1], text)


def generalised(env: Environment, folder: str, live: dict, values: dict[str, str], *, live_name: str | None = None, code: dict[str, str] | None = None) -> dict:
    """The live definition with the environment's values turned back into placeholders, so the same
    definition.json deploys to every environment: each step script's location, the pipeline role, the
    deploy-time values learnt from the live definition, the pipeline's and the model package group's names.
    A pipeline made in Studio names its own pipeline (`live_name`) and code locations (`code`)."""
    replacements: dict[str, str] = {}
    bucket = values.get(SCRIPTS_BUCKET)
    for name, value in values.items():
        if name.startswith(SCRIPT) and bucket is not None:
            replacements[f"s3://{bucket}/{value}"] = placeholder(name)
        elif name != SCRIPTS_BUCKET:
            replacements[value] = placeholder(name)
    if "PipelineRoleName" in values:
        role = f"arn:{env.partition}:iam::{env.account}:role/{values['PipelineRoleName']}"
        replacements[role] = placeholder("PipelineRoleArn")
    replacements.update(code or {})
    replacements[live_name or pipeline_name(env.prefix, folder)] = placeholder("PipelineName")
    # A pipeline made in Studio may belong to no model of the config yet: any model's group is its group.
    owner = env.config.pipeline_model(folder)
    for unit in [owner] if owner else env.config.model_units().values():
        replacements[model_package_group_name(unit.stem)] = placeholder("ModelPackageGroupName")
    # Longest first, so a value inside a longer one (a role name inside its ARN) goes with the longer one.
    ordered = sorted(((value, name) for value, name in replacements.items() if value), key=lambda pair: -len(pair[0]))

    def general(value: Any) -> Any:
        if isinstance(value, str):
            for specific, name in ordered:
                value = value.replace(specific, name)
            return value
        if isinstance(value, dict):
            return {key: general(item) for key, item in value.items()}
        if isinstance(value, list):
            return [general(item) for item in value]
        return value

    return general(live)


def _code_locations(value: Any) -> set[str]:
    """Every S3 location of code in a definition: a Python script or a source archive."""
    if isinstance(value, str):
        return set(re.findall(r"s3://[^\s\"']+?\.(?:py|tar\.gz)(?=$|[\s\"'])", value))
    if isinstance(value, dict):
        return set().union(*(_code_locations(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_code_locations(item) for item in value)) if value else set()
    return set()


def fetch_code(env: Environment, definition: dict, folder: Path) -> dict[str, str]:
    """Download the code a Studio-made definition runs into `folder` (a source archive's Python files
    unpacked, since the stack packs the folder's scripts itself); each location -> the placeholder of
    what replaces it. LookupError when two scripts would share a name."""
    s3 = env.client("s3")
    replacements: dict[str, str] = {}
    written: dict[str, str] = {}
    for location in sorted(_code_locations(definition)):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if location.endswith(".tar.gz"):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
                files = {Path(member.name).name: archive.extractfile(member).read() for member in archive.getmembers() if member.isfile() and member.name.endswith(".py")}
            replacements[location] = placeholder(SCRIPT + render.SOURCE_ARCHIVE)
        else:
            files = {Path(key).name: body}
            replacements[location] = placeholder(SCRIPT + Path(key).name)
        for name, content in files.items():
            if written.setdefault(name, location) != location and (folder / name).read_bytes() != content:
                raise LookupError(f"{name} comes from both {written[name]} and {location}")
            (folder / name).write_bytes(content)
    return replacements


def learnt_values(env: Environment, live_by_folder: dict[str, dict]) -> dict[str, str]:
    """The environment's deploy-time values, learnt from its deployed pipelines (folder -> live definition)."""
    values: dict[str, str] = {}
    for folder, live in live_by_folder.items():
        values.update({name: value for name, value in difference(render_working_tree(env, folder, live), live).values.items() if not name.startswith(SCRIPT) and name != SCRIPTS_BUCKET})
    return values
