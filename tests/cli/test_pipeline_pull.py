"""`mlops pipeline pull`: a Studio edit of the live pipeline comes home as pipeline_code/<name>/definition.json,
which the stacks deploy like a pipeline.py. Runs on a copy of pipeline_code/, never on the working tree."""

from __future__ import annotations

import copy
import json
import re
import shutil

import pytest
import yaml

from config import ENVIRONMENTS
from mlops_cli.errors import FAILED
from pipeline_code import render
from tests.cli.conftest import FOLDER, PLACEHOLDER
from tests.synth import TEST_CONFIG_DIR, synthesize


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A copy of pipeline_code/ that rendering, naming and the command read instead of the working tree."""
    copy_dir = tmp_path / "pipeline_code"
    shutil.copytree(render.PACKAGE_DIR, copy_dir, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(render, "PACKAGE_DIR", copy_dir)
    return copy_dir


@pytest.fixture
def edited_in_studio(deploy, deployed_definition):
    """The dev pipeline as deployed, then one hyperparameter of its training step changed in Studio."""
    live = copy.deepcopy(deployed_definition)
    train = next(step for step in live["Steps"] if step["Type"] == "Training")
    key = next(iter(train["Arguments"]["HyperParameters"]))
    train["Arguments"]["HyperParameters"][key] = "8"
    deploy(live)
    return train["Name"], key


def test_pull_refuses_to_replace_pipeline_py_without_being_asked(mlops, package, edited_in_studio):
    result = mlops("pipeline", "pull", FOLDER, "--env", "dev")

    assert result.exit_code == FAILED
    assert "is defined in code (pipeline.py)" in result.stderr
    assert not (package / FOLDER / render.DEFINITION_FILE).exists()


def test_pull_writes_the_live_definition_and_then_diff_shows_nothing(mlops, package, edited_in_studio):
    step, key = edited_in_studio

    pulled = mlops("pipeline", "pull", FOLDER, "--env", "dev", "--replace-code")
    diff = mlops("pipeline", "diff", FOLDER, "--env", "dev")

    assert pulled.exit_code == 0, pulled.stderr
    assert not (package / FOLDER / "pipeline.py").exists()
    definition = json.loads((package / FOLDER / render.DEFINITION_FILE).read_text())
    train = next(s for s in definition["Steps"] if s["Name"] == step)
    assert train["Arguments"]["HyperParameters"][key] == "8"
    assert (diff.exit_code, diff.stdout.splitlines()[-1]) == (0, "No differences.")


def test_the_pulled_definition_holds_no_value_of_the_environment(mlops, package, edited_in_studio, dev):
    mlops("pipeline", "pull", FOLDER, "--env", "dev", "--replace-code")

    text = (package / FOLDER / render.DEFINITION_FILE).read_text()
    assert "deployed-" not in text
    assert dev.prefix not in text
    assert f":{dev.account}:" not in text
    assert not re.search(r"s3://cdk-[a-z0-9]+-assets-", text)
    assert {"PipelineName", "PipelineRoleArn", "ModelPackageGroupName"} <= set(PLACEHOLDER.findall(text))


def test_the_pulled_folder_deploys_in_every_environment_with_its_placeholders_filled(mlops, package, edited_in_studio, tmp_path):
    step, key = edited_in_studio
    mlops("pipeline", "pull", FOLDER, "--env", "dev", "--replace-code")

    # The pulled package is part of the synth's key (tests/synth_cache.py): a synth of another pull is never reused.
    synthesized = synthesize(tmp_path / "cdk.out", config_dir=TEST_CONFIG_DIR, environments=ENVIRONMENTS, reuse=True)

    left = {}
    for environment in ENVIRONMENTS:
        config = synthesized.config(environment)
        definition = json.dumps(synthesized.pipeline_definition(environment, FOLDER))
        upserts = [
            r["Properties"] for r in synthesized.template(environment, "model-build")["Resources"].values()
            if "Substitutions" in r.get("Properties", {}) and FOLDER in json.dumps(r["Properties"].get("PipelineName", ""))
        ]
        assert f"{config.prefix}-{FOLDER}" in definition and f"{config.prefix}-models" in definition
        # The Studio edit, not what pipeline.py would render.
        train = next(s for s in synthesized.pipeline_definition(environment, FOLDER)["Steps"] if s["Name"] == step)
        assert train["Arguments"]["HyperParameters"][key] == "8"
        left[environment] = set(PLACEHOLDER.findall(definition))
        # The upsert fills in every placeholder that is left.
        assert left[environment] <= set(upserts[0]["Substitutions"]), environment
    assert len({frozenset(names) for names in left.values()}) == 1


def test_a_definition_naming_a_script_the_folder_lacks_is_refused(synthesized):
    settings = synthesized.pipeline_settings("dev", FOLDER)

    with pytest.raises(ValueError, match=r"refers to \$\{Script:missing.py\}, but the folder has no script missing.py"):
        render.fill_in_definition('{"Steps": [{"Code": "${Script:missing.py}"}]}', settings)


def test_deploy_time_placeholders_are_left_for_the_upsert(synthesized):
    settings = synthesized.pipeline_settings("dev", FOLDER)

    filled = json.loads(render.fill_in_definition('{"Bucket": "${ArtifactsBucket}", "Name": "${PipelineName}"}', settings))

    assert filled == {"Bucket": "${ArtifactsBucket}", "Name": settings.pipeline_name}


STUDIO_CODE = "s3://deployed-artifactsbucket/studio/code"


@pytest.fixture
def designed_in_studio(deploy, deployed_definition, synthesized, dev, tmp_path) -> str:
    """The deployed training pipeline (what the environment's values are learnt from), and a pipeline someone
    designed in Studio with the same steps, its code uploaded under the artifacts bucket; its name."""
    import boto3

    deploy(deployed_definition)
    s3 = boto3.client("s3", region_name=dev.region)
    s3.create_bucket(Bucket="deployed-artifactsbucket", CreateBucketConfiguration={"LocationConstraint": dev.region})
    live_name = "churn-scoring-by-jane"
    text = json.dumps(deployed_definition).replace(f"{dev.prefix}-{FOLDER}", live_name)
    for name, uri in synthesized.pipeline_settings("dev", FOLDER).script_uris.items():
        text = text.replace(uri, f"{STUDIO_CODE}/{name}")
        body = render.source_archive(FOLDER, tmp_path).read_bytes() if name == render.SOURCE_ARCHIVE else (render.PACKAGE_DIR / FOLDER / name).read_bytes()
        s3.put_object(Bucket="deployed-artifactsbucket", Key=f"studio/code/{name}", Body=body)
    boto3.client("sagemaker", region_name=dev.region).create_pipeline(PipelineName=live_name, PipelineDefinition=text, RoleArn=f"arn:aws:iam::{dev.account}:role/x")
    return live_name


def test_new_from_live_brings_a_studio_pipeline_home_as_a_folder(mlops, package, designed_in_studio, dev):
    result = mlops("pipeline", "new", "scoring", "--from-live", designed_in_studio, "--env", "dev")

    assert result.exit_code == 0, result.stderr
    text = (package / "scoring" / render.DEFINITION_FILE).read_text()
    assert "deployed-" not in text and designed_in_studio not in text and dev.prefix not in text
    assert STUDIO_CODE not in text
    assert {path.name for path in render.step_scripts("scoring")} == {path.name for path in render.step_scripts(FOLDER)}
    for script in render.step_scripts("scoring"):
        assert script.read_bytes() == (package / FOLDER / script.name).read_bytes()


def test_new_says_which_models_the_folder_may_belong_to(mlops, package, designed_in_studio):
    result = mlops("pipeline", "new", "scoring", "--from-live", designed_in_studio, "--env", "dev")

    assert result.exit_code == 0, result.stderr
    assert "add scoring to one model's pipelines under models: in every config/<env>.yaml (its models: tabular, churn)" in " ".join(result.stdout.split())


def test_the_new_folder_deploys_in_every_environment(mlops, package, designed_in_studio, tmp_path):
    mlops("pipeline", "new", "scoring", "--from-live", designed_in_studio, "--env", "dev")
    # A folder belongs to a model: here, the one that keeps the environment's names.
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    for environment in ENVIRONMENTS:
        config = yaml.safe_load((TEST_CONFIG_DIR / f"{environment}.yaml").read_text())
        config["models"]["tabular"]["pipelines"].append("scoring")
        (config_dir / f"{environment}.yaml").write_text(yaml.safe_dump(config))

    synthesized = synthesize(tmp_path / "cdk.out", config_dir=config_dir, environments=ENVIRONMENTS, reuse=True)

    for environment in ENVIRONMENTS:
        definition = json.dumps(synthesized.pipeline_definition(environment, "scoring"))
        assert f"{synthesized.config(environment).prefix}-scoring" in definition
        assert not {name for name in PLACEHOLDER.findall(definition) if name.startswith(render.SCRIPT_PLACEHOLDER) or name in render.SYNTH_PLACEHOLDERS}


def test_new_refuses_a_folder_that_exists(mlops, package, designed_in_studio):
    result = mlops("pipeline", "new", FOLDER, "--from-live", designed_in_studio, "--env", "dev")

    assert result.exit_code == FAILED
    assert f"pipeline_code/{FOLDER}/ exists already" in result.stderr


def test_new_refuses_a_name_that_cannot_be_a_pipeline(mlops, package, designed_in_studio):
    result = mlops("pipeline", "new", "my_scoring", "--from-live", designed_in_studio, "--env", "dev")

    assert result.exit_code == FAILED
    assert "underscores are not allowed" in result.stderr
