"""`-c env=<name>` (what `make deploy|diff|destroy|synth ENV=<name>` pass) constructs that environment alone."""

from __future__ import annotations

import gc
import json
import os
import runpy
import subprocess
import sys

import aws_cdk as cdk
import pytest

from config import ENVIRONMENTS
from tests.synth import ROOT


class _RecordedStage(cdk.Stage):
    """Stands in for an environment's Stage: records which environments app.py constructs, builds nothing."""

    constructed: list[str] = []

    def __init__(self, scope, config, render_cache, environments=None) -> None:
        super().__init__(scope, config.name)
        self.config = config
        self.model_build = type("NoPipelines", (), {"pipeline_definitions": {}})()
        _RecordedStage.constructed.append(config.name)


def _run_app(monkeypatch, tmp_path, context: dict) -> list[str]:
    """Run app.py in this process with `context` as the CDK CLI's `-c` would give it.

    jsii's node process read its environment when aws-cdk-lib was first imported, so the context the CLI
    passes in CDK_CONTEXT_JSON reaches it here through the App's own context instead.
    """
    from stacks import environment

    new_app = environment.new_app
    monkeypatch.setattr(environment, "EnvironmentStage", _RecordedStage)
    monkeypatch.setattr(environment, "new_app", lambda: new_app(outdir=str(tmp_path), context=context))
    _RecordedStage.constructed = []
    try:
        runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
    finally:
        # app.py freezes what it made for a process that ends with it; this one goes on.
        gc.unfreeze()
    return _RecordedStage.constructed


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_env_context_constructs_only_that_environment(monkeypatch, tmp_path, environment):
    assert _run_app(monkeypatch, tmp_path, {"env": environment}) == [environment]


def test_without_env_context_every_environment_is_constructed(monkeypatch, tmp_path):
    assert _run_app(monkeypatch, tmp_path, {}) == list(ENVIRONMENTS)


def test_unknown_env_context_fails_naming_the_environments_before_constructing_any(monkeypatch, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        _run_app(monkeypatch, tmp_path, {"env": "nope"})

    assert str(exit_.value) == f"Invalid configuration: -c env=nope: not an environment; the environments are: {', '.join(ENVIRONMENTS)}"
    assert _RecordedStage.constructed == []


def test_unknown_env_context_from_the_cli_fails_before_synthesizing(tmp_path):
    result = subprocess.run(
        [sys.executable, "-O", "app.py"],
        cwd=ROOT,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps({"env": "nope"}), "CDK_OUTDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert "-c env=nope: not an environment; the environments are: " in result.stderr
    assert not list(tmp_path.glob("assembly-*"))


def test_make_passes_the_environment_to_the_app_for_every_one_environment_command():
    dry_runs = {
        target: subprocess.run(["make", "--no-print-directory", "-n", target, "ENV=staging"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        for target in ("deploy", "diff", "destroy", "synth")
    }

    for target, commands in dry_runs.items():
        cdk_line = next(line for line in commands.splitlines() if f"cdk {target}" in line)
        assert "'staging/*' -c env=staging" in cdk_line, target


def test_make_synth_without_env_constructs_every_environment():
    commands = subprocess.run(["make", "--no-print-directory", "-n", "synth"], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    cdk_line = next(line for line in commands.splitlines() if "cdk synth" in line)
    assert "-c env=" not in cdk_line
    assert "'**'" in cdk_line
