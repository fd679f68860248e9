"""A synth is kept by what it is made from: anything it reads changes the key, nothing else does, and what is
restored is what was kept."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from config import ConfigError
from pipeline_code import render
from tests import synth_cache
from tests.synth import SYNTHESIS_FILE, TEST_CONFIG_DIR, synthesize


@pytest.fixture
def kept(tmp_path, monkeypatch):
    monkeypatch.setattr(synth_cache, "KEPT", tmp_path / "kept")
    return tmp_path / "kept"


@pytest.fixture
def repository(tmp_path, monkeypatch):
    """A repository of a few files, digested instead of this one."""
    root = tmp_path / "repository"
    for path in (
        "app.py", "stacks/storage.py", "functions/notify/.settings", "tests/synth.py", "tests/conftest.py",
        "tests/test_it.py", "docs/index.md", "README.md", ".cache/x", "stacks/__pycache__/storage.pyc",
    ):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(path)
    monkeypatch.setattr(synth_cache, "ROOT", root)
    return root


def _config_copy(tmp_path, name: str = "config"):
    copy = tmp_path / name
    shutil.copytree(TEST_CONFIG_DIR, copy)
    return copy


def test_the_same_config_in_another_folder_has_the_same_key(tmp_path):
    assert synth_cache.key(_config_copy(tmp_path, "a"), ("dev",)) == synth_cache.key(_config_copy(tmp_path, "b"), ("dev",))


def test_a_changed_config_value_changes_the_key(tmp_path):
    config = _config_copy(tmp_path)
    before = synth_cache.key(config, ("dev",))
    dev = yaml.safe_load((config / "dev.yaml").read_text())
    dev["deployment"]["canary_percentage"] = 20
    (config / "dev.yaml").write_text(yaml.safe_dump(dev))

    assert synth_cache.key(config, ("dev",)) != before


def test_other_environments_have_another_key():
    assert synth_cache.key(TEST_CONFIG_DIR, ("dev",)) != synth_cache.key(TEST_CONFIG_DIR, ("dev", "prod"))


def test_a_pipeline_package_read_from_an_edited_copy_changes_the_key(tmp_path, monkeypatch):
    before = synth_cache.key(TEST_CONFIG_DIR, ("dev",))
    package = tmp_path / "pipeline_code"
    shutil.copytree(render.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(render, "PACKAGE_DIR", package)
    assert synth_cache.key(TEST_CONFIG_DIR, ("dev",)) == before, "an identical copy is the same input"

    script = next(package.glob("*/pipeline.py"))
    script.write_text(script.read_text() + "\n# edited\n")

    assert synth_cache.key(TEST_CONFIG_DIR, ("dev",)) != before


@pytest.mark.parametrize("path", ["stacks/storage.py", "stacks/new.py", "functions/notify/.settings", "tests/synth.py", "tests/conftest.py"])
def test_an_edited_or_new_product_file_or_synth_procedure_changes_the_repository_state(repository, path):
    before = synth_cache.repository_state.__wrapped__()
    (repository / path).write_text("changed")

    assert synth_cache.repository_state.__wrapped__() != before


@pytest.mark.parametrize("path", ["tests/test_it.py", "docs/index.md", "README.md", ".cache/x", "stacks/__pycache__/storage.pyc"])
def test_tests_docs_and_what_runs_leave_do_not_change_the_repository_state(repository, path):
    before = synth_cache.repository_state.__wrapped__()
    (repository / path).write_text("changed")

    assert synth_cache.repository_state.__wrapped__() == before


def _made(outdir):
    """A folder shaped as a synth leaves it: an asset, an assembly and the synthesis record."""
    (outdir / "asset.0123" / "index.py").parent.mkdir(parents=True)
    (outdir / "asset.0123" / "index.py").write_text("handler")
    (outdir / "asset.4567.zip").write_bytes(b"layer")
    (outdir / "assembly-dev").mkdir()
    (outdir / "assembly-dev" / "dev-storage.template.json").write_text("{}")
    (outdir / SYNTHESIS_FILE).write_text(json.dumps({"config_dir": "/elsewhere", "aws_calls": []}))
    return outdir


def test_what_is_restored_is_what_was_kept(tmp_path, kept):
    made = _made(tmp_path / "made")
    synth_cache.keep("state/synth", made)

    assert synth_cache.restore("state/synth", tmp_path / "restored")

    files = sorted(p.relative_to(made) for p in made.rglob("*") if p.is_file())
    assert sorted(p.relative_to(tmp_path / "restored") for p in (tmp_path / "restored").rglob("*") if p.is_file()) == files
    assert all((made / f).read_bytes() == (tmp_path / "restored" / f).read_bytes() for f in files)


def test_templates_are_restored_as_copies_a_test_may_edit(tmp_path, kept):
    synth_cache.keep("state/synth", _made(tmp_path / "made"))
    synth_cache.restore("state/synth", tmp_path / "restored")

    (tmp_path / "restored" / "assembly-dev" / "dev-storage.template.json").write_text("edited")

    assert (kept / "state" / "synth" / "assembly-dev" / "dev-storage.template.json").read_text() == "{}"


def test_an_asset_is_kept_once_for_every_synth_that_holds_it(tmp_path, kept):
    synth_cache.keep("state/first", _made(tmp_path / "first"))
    synth_cache.keep("state/second", _made(tmp_path / "second"))

    first, second = (kept / "state" / name / "asset.4567.zip" for name in ("first", "second"))
    assert first.stat().st_ino == second.stat().st_ino


def test_nothing_is_restored_that_was_not_kept(tmp_path, kept):
    assert not synth_cache.restore("state/never", tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


def test_only_the_newest_repository_states_are_kept(tmp_path, kept):
    for state in range(synth_cache.KEPT_STATES + 2):
        synth_cache.keep(f"state-{state}/synth", _made(tmp_path / f"made-{state}"))

    assert sorted(folder.name for folder in kept.iterdir()) == [f"state-{state}" for state in range(2, synth_cache.KEPT_STATES + 2)]


def test_a_synth_that_fails_is_not_kept(tmp_path, kept):
    config = _config_copy(tmp_path)
    dev = yaml.safe_load((config / "dev.yaml").read_text())
    dev["deployment"]["canary_percentage"] = "half"
    (config / "dev.yaml").write_text(yaml.safe_dump(dev))

    with pytest.raises(ConfigError, match="canary_percentage"):
        synthesize(tmp_path / "cdk.out", config_dir=config, environments=("dev",), reuse=True)

    assert not kept.exists() or not any(kept.rglob(SYNTHESIS_FILE))


def test_a_synth_read_from_another_config_folder_reads_its_config_from_there(synthesized, tmp_path):
    config = _config_copy(tmp_path)

    restored = synthesize(tmp_path / "cdk.out", config_dir=config, reuse=True)

    assert restored.config_dir == config
    assert restored.template("prod", "deployment") == synthesized.template("prod", "deployment")
    assert restored.aws_calls == synthesized.aws_calls == []


def test_another_aws_cdk_lib_version_changes_the_toolchain(monkeypatch):
    ours = synth_cache._toolchain.__wrapped__()
    synth_cache.installed.one_version_later(monkeypatch, "aws-cdk-lib")

    assert synth_cache._toolchain.__wrapped__() != ours
