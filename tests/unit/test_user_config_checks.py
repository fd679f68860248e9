"""The checks tests/user_config runs on the user's config/ report what they find (they are not vacuous)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cfn_lint import lint
from tests.shared_builds import SharedBuilds
from tests.user_config.checks import check


def test_a_config_that_does_not_load_is_reported_and_nothing_is_synthesized(tmp_path: Path, shared_builds: SharedBuilds):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "dev.yaml").write_text("account: [unclosed\n")

    result = check(config_dir, tmp_path, shared_builds)

    assert "dev.yaml: not valid YAML" in result.config_error
    assert "staging.yaml: no such config file" in result.config_error
    assert not (tmp_path / "cdk.out").exists()


def test_cfn_lint_error_is_reported_as_an_error_naming_its_template(tmp_path: Path):
    template = tmp_path / "bucket.template.json"
    template.write_text(json.dumps({"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"NoSuchProperty": "x"}}}}))

    findings = lint({"eu-west-1": [template]})

    assert [(finding.rule, finding.is_error) for finding in findings] == [("E3002", True)]
    assert findings[0].path == str(template)
