"""The make targets that act on one environment refuse a name that is not one, and `make help` describes every target."""

from __future__ import annotations

import re
import subprocess

import pytest

from config import ENVIRONMENTS
from tests.synth import ROOT


def _make(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("target", ["deploy", "diff", "destroy", "outputs"])
def test_unknown_environment_fails_listing_the_valid_ones(target):
    result = _make(target, "ENV=nope")

    assert result.returncode != 0
    assert f"ENV=nope is not an environment; the environments are: {' '.join(ENVIRONMENTS)}" in result.stderr
    assert "cdk" not in result.stdout


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_environment_of_the_app_is_accepted(environment):
    assert _make("check-env", f"ENV={environment}").returncode == 0


def test_make_help_describes_every_target():
    makefile = (ROOT / "Makefile").read_text()
    targets = re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE)

    described = dict(re.findall(r"^  make (\S+) +(\S.*)$", _make("help").stdout, re.MULTILINE))

    assert "synth" in targets
    assert [target for target in targets if not described.get(target)] == []


def _fake_cdk(folder, exit_status: int):
    """A stand-in for the CDK CLI that ends a synth the way the real one does."""
    cli = folder / f"cdk-exiting-{exit_status}"
    cli.write_text(
        "#!/bin/sh\n"
        "echo 'Successfully synthesized to cdk.out'\n"
        "echo 'Supply a stack id (dev/network, dev/storage) to display its template.' >&2\n"
        f"exit {exit_status}\n"
    )
    cli.chmod(0o755)
    return cli


def test_synth_leaves_out_the_clis_closing_supply_a_stack_id_line(tmp_path):
    result = _make("-o", "setup", "synth", f"CDK={_fake_cdk(tmp_path, 0)}")

    assert result.returncode == 0
    assert "Successfully synthesized to cdk.out" in result.stdout
    assert "Supply a stack id" not in result.stdout + result.stderr


def test_a_failing_synth_still_fails_make_synth(tmp_path):
    assert _make("-o", "setup", "synth", f"CDK={_fake_cdk(tmp_path, 3)}").returncode != 0
