"""Real validators over every environment: cdk-nag (AwsSolutions) and cfn-lint, and no AWS call at synth."""

from __future__ import annotations

import json

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_s3 as s3

from config import ENVIRONMENTS
from stacks.environment import enable_compliance_checks
from tests.cfn_lint import shared_lint, templates_by_region
from tests.conftest import AwsCallAttempted, aws_unreachable, lint_findings_of_app
from tests.shared_builds import SharedBuilds
from tests.synth import STACKS, Synthesized

# W3005: CDK writes DependsOn next to a GetAtt that implies it. W3010: availability zones come from config on
# purpose, so synth makes no lookup.
CFN_LINT_IGNORED = ("W3005", "W3010")


def test_cdk_nag_fails_synth_on_an_unacknowledged_finding(tmp_path):
    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "Insecure")
    s3.CfnBucket(stack, "Bucket")
    enable_compliance_checks(app)

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    nag = next(r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions")
    assert {v["ruleName"] for v in nag["violations"]} >= {"AwsSolutions-S1", "AwsSolutions-S10"}


def test_synth_reports_no_validation_finding(synthesized: Synthesized):
    # The app synthesized, so cdk-nag found nothing unacknowledged; nothing else was left open either.
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    assert [v for r in report["pluginReports"] for v in r["violations"]] == []


def test_every_acknowledged_finding_names_its_rule_and_gives_a_reason(synthesized: Synthesized):
    acknowledged = {}
    for metadata_file in synthesized.outdir.glob("assembly-*/*.metadata.json"):
        for path, entries in json.loads(metadata_file.read_text()).items():
            for entry in entries:
                if entry["type"] == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    acknowledged.update({(path, rule): reason for rule, reason in entry["data"].items()})
    assert any("AwsSolutions-IAM5" in rule for _, rule in acknowledged)
    for (path, rule), reason in acknowledged.items():
        assert "AwsSolutions-" in rule or "CloudFormation-Validate::" in rule, (path, rule)
        assert len(reason) >= 30, (path, rule, reason)


def test_cfn_lint_finds_no_errors_or_warnings(shared_builds: SharedBuilds, synthesized: Synthesized, optional_pieces_on: Synthesized):
    findings = lint_findings_of_app(shared_builds)
    # dev with every optional piece: the templates the pieces leave as dev's own are not linted twice.
    findings += shared_lint(shared_builds, "optional-pieces-on", templates_by_region(optional_pieces_on.outdir, {"dev": optional_pieces_on.config("dev").region}))

    assert (len(synthesized.template_paths()), len(optional_pieces_on.template_paths())) == (len(ENVIRONMENTS) * len(STACKS), len(STACKS))
    assert [str(finding) for finding in findings if finding.rule not in CFN_LINT_IGNORED] == []


def test_synth_makes_no_aws_call(synthesized: Synthesized, synth_aws_calls: list[str]):
    assert synth_aws_calls == []


def test_synth_needs_no_context_lookup(synthesized: Synthesized):
    for environment in ("dev", "staging", "prod"):
        manifest = json.loads((synthesized.outdir / f"assembly-{environment}" / "manifest.json").read_text())
        assert manifest.get("missing", []) == [], environment


def test_the_no_aws_guard_catches_a_boto3_call():
    attempts: list[str] = []
    with aws_unreachable(attempts), pytest.raises(AwsCallAttempted):
        boto3.client("sts", region_name="eu-west-1").get_caller_identity()
    assert attempts == ["sts.GetCallerIdentity"]
