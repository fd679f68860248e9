"""`make lint`'s check runs with the suite, so code that fails it cannot pass `make test`."""

from __future__ import annotations

import subprocess
import sys

from tests.synth import ROOT


def test_the_code_passes_ruff():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
