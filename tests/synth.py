"""Synthesizing the app the way `cdk synth` does (same context from cdk.json), in this process, and reading
what a synth left on disk, in any process."""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import aws_cdk as cdk
import yaml

from config import ENVIRONMENTS, EnvironmentConfig, load_environment
from config.settings import ModelBuild
from pipeline_code.settings import PipelineSettings
from stacks.environment import add_environments, new_app, write_pipeline_definitions
from stacks.model_build import ModelBuildStack
from stacks.storage import StorageStack
from tests import synth_cache

ROOT = Path(__file__).resolve().parent.parent
# The tests' own configuration (see its files' header): what every template, behaviour and snapshot test
# synthesizes. The repository's config/ is the user's, checked by tests/user_config alone.
TEST_CONFIG_DIR = ROOT / "tests" / "config"
STACKS = ("network", "storage", "studio", "model-build", "deployment", "batch-inference", "operations")
RENDER_CACHE = ROOT / ".cache" / "pipelines"
# What a synth knows besides its cloud assembly, written into the assembly's folder so that any process can
# read the synth: the config it was made from, each pipeline's render settings, the rendering time.
SYNTHESIS_FILE = "synthesis.json"


@functools.cache
def environment_config(environment: str) -> EnvironmentConfig:
    """`environment` as the tests' own configuration sets it (tests/config/<environment>.yaml)."""
    return load_environment(TEST_CONFIG_DIR, environment)


def cdk_json_context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


class Synthesized:
    """A synthesized app, read from the cloud assembly in `outdir`. Each call of `template()` parses the
    template anew, so a test may change what it gets without changing what the next test reads."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        synthesis = json.loads((outdir / SYNTHESIS_FILE).read_text())
        self.config_dir = Path(synthesis["config_dir"])
        self.render_seconds: float = synthesis["render_seconds"]
        # The AWS calls and remote connections the synth attempted (each one failed it, unless caught).
        self.aws_calls: list[str] = synthesis["aws_calls"]
        self._pipeline_settings: dict[str, dict[str, dict]] = synthesis["pipeline_settings"]
        self._configs: dict[str, EnvironmentConfig] = {}
        self._template_texts: dict[tuple[str, str], str] = {}

    def stacks(self, environment: str) -> dict[str, dict]:
        """Stack name -> the properties the environment's manifest gives its stack (template file,
        termination protection, ...)."""
        manifest = json.loads((self.outdir / f"assembly-{environment}" / "manifest.json").read_text())
        return {
            artifact["properties"]["stackName"]: artifact["properties"]
            for artifact in manifest["artifacts"].values()
            if artifact["type"] == "aws:cloudformation:stack"
        }

    def template(self, environment: str, stack: str) -> dict:
        key = (environment, stack)
        if key not in self._template_texts:
            template_file = self.stacks(environment)[f"{environment}-{stack}"]["templateFile"]
            self._template_texts[key] = (self.outdir / f"assembly-{environment}" / template_file).read_text()
        return json.loads(self._template_texts[key])

    def template_paths(self) -> list[Path]:
        return sorted(self.outdir.glob("assembly-*/*.template.json"))

    def config(self, environment: str) -> EnvironmentConfig:
        if environment not in self._configs:
            self._configs[environment] = load_environment(self.config_dir, environment)
        return self._configs[environment]

    def prefix(self, environment: str) -> str:
        return self.config(environment).prefix

    def pipeline_settings(self, environment: str, pipeline: str) -> PipelineSettings:
        """What the environment's model-build stack rendered `pipeline` with."""
        fields = self._pipeline_settings[environment][pipeline]
        return PipelineSettings(**{name: tuple(value) if isinstance(value, list) else value for name, value in fields.items()})

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
    config_dir: Path = TEST_CONFIG_DIR,
    environments: tuple[str, ...] = ENVIRONMENTS,
    render_cache: Path = RENDER_CACHE,
    *,
    reuse: bool = False,
) -> Synthesized:
    """`environments` of `config_dir` synthesized into `outdir` with AWS unreachable: a synth that calls AWS
    fails (AwsCallAttempted), and the calls it attempted are kept (`Synthesized.aws_calls`). With `reuse`, a
    synth made before from the same inputs is copied instead (see tests/synth_cache.py): for fixtures that
    synthesize the code as it is, never under a monkeypatch."""
    kept_as = synth_cache.key(config_dir, environments) if reuse else None
    if kept_as is None or not synth_cache.restore(kept_as, outdir):
        _synthesize(outdir, config_dir, environments, render_cache)
        if kept_as is not None:
            synth_cache.keep(kept_as, outdir)
    synthesis = json.loads((outdir / SYNTHESIS_FILE).read_text())
    if synthesis["config_dir"] != str(config_dir):
        # Kept from a synth of the same files in another folder: the config is read from this one.
        synthesis["config_dir"] = str(config_dir)
        (outdir / SYNTHESIS_FILE).write_text(json.dumps(synthesis))
    return Synthesized(outdir)


def _synthesize(outdir: Path, config_dir: Path, environments: tuple[str, ...], render_cache: Path) -> None:
    from tests.conftest import aws_unreachable

    attempts: list[str] = []
    with aws_unreachable(attempts):
        app = new_app(outdir=str(outdir), context=cdk_json_context())
        stages = add_environments(app, config_dir, render_cache, environments)
        app.synth()
        write_pipeline_definitions(outdir, stages)
    synthesis = {
        "config_dir": str(config_dir),
        "aws_calls": attempts,
        "render_seconds": sum(stage.model_build.render_seconds for stage in stages),
        "pipeline_settings": {
            stage.config.name: {name: dataclasses.asdict(settings) for name, settings in stage.model_build.pipeline_settings.items()}
            for stage in stages
        },
    }
    (outdir / SYNTHESIS_FILE).write_text(json.dumps(synthesis))


def synthesize_dev_with(workdir: Path, change: Callable[[dict], None], *, reuse: bool = False) -> Synthesized:
    """dev alone, synthesized as `cdk synth` does (cdk-nag included) into `workdir`, from a copy of the tests'
    config whose dev.yaml `change` edits in place."""
    config_dir = workdir / "config"
    shutil.copytree(TEST_CONFIG_DIR, config_dir)
    dev = yaml.safe_load((config_dir / "dev.yaml").read_text())
    change(dev)
    (config_dir / "dev.yaml").write_text(yaml.safe_dump(dev))
    return synthesize(workdir / "cdk.out", config_dir=config_dir, environments=("dev",), reuse=reuse)


def model_build_stack(outdir: Path, model_build: ModelBuild | None = None) -> tuple[cdk.App, ModelBuildStack]:
    """dev's storage and model-build stacks alone, with `model_build` instead of dev's (not synthesized yet)."""
    config = environment_config("dev")
    app = new_app(outdir=str(outdir), context=cdk_json_context())
    env = cdk.Environment(account=config.account, region=config.region)
    model_build = model_build or config.model_build
    storage = StorageStack(app, "storage", prefix=config.prefix, storage=config.storage, mlflow=model_build.mlflow.enabled, env=env)
    stack = ModelBuildStack(
        app,
        "model-build",
        prefix=config.prefix,
        model_build=model_build,
        models=config.model_units(),
        data_bucket=storage.data_bucket,
        artifacts_bucket=storage.artifacts_bucket,
        key=storage.key,
        data_access_policy=storage.data_access_policy,
        subnet_ids=["subnet-0123456789abcdef0"],
        security_group_id="sg-0123456789abcdef0",
        render_cache=RENDER_CACHE,
        retain_model_registry=False,
        jobs_in_vpc=False,
        mlflow_artifact_access=storage.mlflow_artifact_access_policy,
        env=env,
    )
    return app, stack
