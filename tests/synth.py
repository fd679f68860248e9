"""Synthesizing the app the way `cdk synth` does (same context from cdk.json), in this process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import cx_api

from config import ENVIRONMENTS, load_environment
from config.settings import ModelBuild
from stacks.model_build import ModelBuildStack
from stacks.storage import StorageStack
from stacks.environment import EnvironmentStage, add_environments, new_app

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
STACKS = ("network", "storage", "studio", "model-build", "deployment", "batch-inference", "operations")
RENDER_CACHE = ROOT / ".cache" / "pipelines"


def cdk_json_context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synthesized:
    assembly: cx_api.CloudAssembly
    outdir: Path
    stages: list[EnvironmentStage]

    def template(self, environment: str, stack: str) -> dict:
        stage = self.assembly.get_nested_assembly(f"assembly-{environment}")
        return stage.get_stack_by_name(f"{environment}-{stack}").template

    def template_paths(self) -> list[Path]:
        return sorted(self.outdir.glob("assembly-*/*.template.json"))

    def prefix(self, environment: str) -> str:
        (stage,) = [s for s in self.stages if s.config.name == environment]
        return stage.config.prefix

    def pipeline_definition(self, environment: str, pipeline: str) -> dict:
        """The rendered definition the environment's upsert deploys, read from the asset in cdk.out."""
        resources = self.template(environment, "model-build")["Resources"]
        (upsert,) = [
            r["Properties"] for r in resources.values()
            if r["Type"] == "Custom::SageMakerPipeline" and r["Properties"]["PipelineName"] == f"{self.prefix(environment)}-{pipeline}"
        ]
        return json.loads((self.outdir / f"asset.{upsert['DefinitionKey']}").read_text())


def synthesize(
    outdir: Path,
    config_dir: Path = CONFIG_DIR,
    environments: tuple[str, ...] = ENVIRONMENTS,
    render_cache: Path = RENDER_CACHE,
) -> Synthesized:
    app = new_app(outdir=str(outdir), context=cdk_json_context())
    stages = add_environments(app, config_dir, render_cache, environments)
    return Synthesized(assembly=app.synth(), outdir=outdir, stages=stages)


def model_build_stack(outdir: Path, model_build: ModelBuild | None = None) -> tuple[cdk.App, ModelBuildStack]:
    """dev's storage and model-build stacks alone, with `model_build` instead of dev's (not synthesized yet)."""
    config = load_environment(CONFIG_DIR, "dev")
    app = new_app(outdir=str(outdir), context=cdk_json_context())
    env = cdk.Environment(account=config.account, region=config.region)
    storage = StorageStack(app, "storage", prefix=config.prefix, storage=config.storage, env=env)
    stack = ModelBuildStack(
        app,
        "model-build",
        prefix=config.prefix,
        model_build=model_build or config.model_build,
        data_bucket=storage.data_bucket,
        artifacts_bucket=storage.artifacts_bucket,
        key=storage.key,
        data_access_policy=storage.data_access_policy,
        subnet_ids=["subnet-0123456789abcdef0"],
        security_group_id="sg-0123456789abcdef0",
        render_cache=RENDER_CACHE,
        retain_model_registry=False,
        jobs_in_vpc=False,
        env=env,
    )
    return app, stack
