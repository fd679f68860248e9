"""Your config/ is ready to deploy: it loads, the app synthesizes from it offline, cdk-nag and cfn-lint find
nothing. These tests assert nothing about the values you chose; every other test runs on tests/config.

Each test runs twice: on config/ itself, and on a copy of config/ with every account and region changed,
which proves that the checks, and the app, hold for accounts and regions other than the ones you have."""

from __future__ import annotations

from tests.user_config.checks import ConfigCheck, expected_templates


def test_every_environment_loads_and_validates(config_check: ConfigCheck):
    assert config_check.config_error is None, config_check.config_error


def test_app_synthesizes_every_environment_with_aws_unreachable(config_check: ConfigCheck):
    config_check.synthesized()
    assert config_check.aws_calls == []


def test_cdk_nag_finds_nothing(config_check: ConfigCheck):
    assert config_check.config_error is None, config_check.config_error
    assert config_check.nag_findings == []


def test_cfn_lint_reports_no_error_on_any_template_in_its_region(config_check: ConfigCheck):
    config_check.synthesized()
    assert config_check.linted_templates == expected_templates(config_check)
    assert config_check.lint_errors == []
