"""Synthesizing the app the way `cdk synth` does (same context from cdk.json), in this process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import cx_api

from config import ENVIRONMENTS
from stacks.environment import add_environments

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
STACKS = ("network", "storage", "studio", "model-build")
RENDER_CACHE = ROOT / ".cache" / "pipelines"


def cdk_json_context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synthesized:
    assembly: cx_api.CloudAssembly
    outdir: Path

    def template(self, environment: str, stack: str) -> dict:
        stage = self.assembly.get_nested_assembly(f"assembly-{environment}")
        return stage.get_stack_by_name(f"{environment}-{stack}").template

    def template_paths(self) -> list[Path]:
        return sorted(self.outdir.glob("assembly-*/*.template.json"))


def synthesize(outdir: Path, config_dir: Path = CONFIG_DIR, environments: tuple[str, ...] = ENVIRONMENTS) -> Synthesized:
    app = cdk.App(outdir=str(outdir), context=cdk_json_context())
    add_environments(app, config_dir, RENDER_CACHE, environments)
    return Synthesized(assembly=app.synth(), outdir=outdir)
