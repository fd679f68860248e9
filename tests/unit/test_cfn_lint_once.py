"""cfn-lint runs once per distinct template, region and toolchain; every copy gets the findings, in this run and later ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import cfn_lint
from tests.cfn_lint import Finding, lint_each_once


@pytest.fixture
def linted(monkeypatch) -> list[dict[str, list[str]]]:
    """Each call of cfn-lint, as region -> template names; every template gets one finding naming its region."""
    calls: list[dict[str, list[str]]] = []

    def lint(templates: dict[str, list[Path]]) -> list[Finding]:
        calls.append({region: [path.name for path in paths] for region, paths in templates.items()})
        return [Finding(str(path), "E3002", f"bad property in {region}") for region, paths in templates.items() for path in paths]

    monkeypatch.setattr(cfn_lint, "lint", lint)
    return calls


def _template(folder: Path, name: str, resources: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"Resources": resources}))
    return path


def test_a_copy_of_a_linted_template_gets_its_findings_without_a_second_lint(tmp_path, linted):
    known = tmp_path / "known"
    first = _template(tmp_path / "app", "dev-network.template.json", {"Vpc": {"Type": "AWS::EC2::VPC"}})
    copy = _template(tmp_path / "your-config", "dev-network.template.json", {"Vpc": {"Type": "AWS::EC2::VPC"}})

    lint_each_once({"eu-west-1": [first]}, known)
    findings = lint_each_once({"eu-west-1": [copy]}, known)

    assert linted == [{"eu-west-1": ["dev-network.template.json"]}]
    assert findings == [Finding(str(copy), "E3002", "bad property in eu-west-1")]


def test_a_template_changed_by_one_byte_or_linted_for_another_region_is_linted(tmp_path, linted):
    known = tmp_path / "known"
    first = _template(tmp_path / "app", "dev-network.template.json", {"Vpc": {"Type": "AWS::EC2::VPC"}})
    changed = _template(tmp_path / "variant", "dev-network.template.json", {"Vpc": {"Type": "AWS::EC2::VPCs"}})
    lint_each_once({"eu-west-1": [first]}, known)

    findings = lint_each_once({"eu-west-1": [changed], "us-west-2": [first]}, known)

    assert linted[1] == {"eu-west-1": ["dev-network.template.json"], "us-west-2": ["dev-network.template.json"]}
    assert findings == [Finding(str(changed), "E3002", "bad property in eu-west-1"), Finding(str(first), "E3002", "bad property in us-west-2")]


def test_nothing_is_kept_when_cfn_lint_itself_fails(tmp_path, monkeypatch):
    known = tmp_path / "known"
    template = _template(tmp_path / "app", "dev-network.template.json", {"Vpc": {"Type": "AWS::EC2::VPC"}})
    failed = Finding("cfn-lint --regions eu-west-1", "cfn-lint", "exited 1: Traceback ...")
    monkeypatch.setattr(cfn_lint, "lint", lambda templates: [failed])

    assert lint_each_once({"eu-west-1": [template]}, known) == [failed]
    assert list(known.iterdir()) == []


def test_a_finding_that_names_no_linted_template_is_reported(tmp_path, monkeypatch):
    template = _template(tmp_path / "app", "dev-network.template.json", {"Vpc": {"Type": "AWS::EC2::VPC"}})
    elsewhere = Finding("relative/dev-network.template.json", "E0000", "could not parse")
    monkeypatch.setattr(cfn_lint, "lint", lambda templates: [elsewhere])

    assert lint_each_once({"eu-west-1": [template]}, tmp_path / "known") == [elsewhere]


def test_a_cfnlintrc_in_the_working_folder_keeps_the_findings_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    without = cfn_lint.toolchain_digest.__wrapped__()
    (tmp_path / ".cfnlintrc").write_text("ignore_checks:\n  - E3002\n")

    assert cfn_lint.toolchain_digest.__wrapped__() != without


def test_newer_schemas_cfn_lint_downloaded_keep_the_findings_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    without = cfn_lint.toolchain_digest.__wrapped__()
    schemas = tmp_path / "aws" / "cfn-lint" / "schemas"
    schemas.mkdir(parents=True)
    (schemas / "version.json").write_text('{"schema_date": "2099-01-01"}')

    assert cfn_lint.toolchain_digest.__wrapped__() != without


def test_another_cfn_lint_version_keeps_the_findings_apart(monkeypatch):
    ours = cfn_lint.toolchain_digest.__wrapped__()
    cfn_lint.installed.one_version_later(monkeypatch, "cfn-lint")

    assert cfn_lint.toolchain_digest.__wrapped__() != ours


def test_findings_kept_for_another_toolchain_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(cfn_lint, "KNOWN_FINDINGS", tmp_path / "cfn-lint")
    (tmp_path / "cfn-lint" / "older-toolchain").mkdir(parents=True)
    ((tmp_path / "cfn-lint" / "older-toolchain") / "digest.json").write_text("[]")

    known = cfn_lint.known_findings()

    assert known.parent == tmp_path / "cfn-lint"
    assert list((tmp_path / "cfn-lint").iterdir()) == []
