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
