"""cfn-lint over the templates of a synth, each environment's templates linted for the environment's region.

cfn-lint takes about 6 s of CPU for the 21 templates of one synth, so what a session lints is linted once:
a caller names the lint, and the first process of the session to ask runs it (see tests/shared_builds.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.shared_builds import SharedBuilds

FINDINGS = "cfn-lint.json"


@dataclass(frozen=True)
class Finding:
    """One line of cfn-lint's parseable output (file:line:column:end-line:end-column:rule:message), or a
    failure of cfn-lint itself (rule "cfn-lint")."""

    path: str
    rule: str
    message: str

    @property
    def is_error(self) -> bool:
        return self.rule.startswith("E") or self.rule == "cfn-lint"

    def __str__(self) -> str:
        return f"{self.path}: {self.rule} {self.message}"


def templates_by_region(outdir: Path, regions: dict[str, str]) -> dict[str, list[Path]]:
    """environment -> region given, the templates of each environment's assembly in `outdir`, by region."""
    grouped: dict[str, list[Path]] = defaultdict(list)
    for environment, region in regions.items():
        grouped[region] += sorted((outdir / f"assembly-{environment}").glob("*.template.json"))
    return dict(grouped)


def lint(templates: dict[str, list[Path]]) -> list[Finding]:
    """Every finding on `templates` (region -> templates); one cfn-lint process per region, all at once."""
    cfn_lint = str(Path(sys.executable).with_name("cfn-lint"))
    runs = [
        subprocess.Popen(
            [cfn_lint, "--format", "parseable", "--regions", region, "--", *map(str, paths)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for region, paths in templates.items()
    ]
    findings = []
    for region, run in zip(templates, runs, strict=True):
        stdout, stderr = run.communicate()
        lines = [line.split(":", 6) for line in stdout.splitlines()]
        findings += [Finding(parts[0], parts[5], parts[6]) for parts in lines if len(parts) == 7]
        # Exit code bits: 2 errors, 4 warnings, 8 informational. Anything else is cfn-lint failing.
        if run.returncode & ~(2 | 4 | 8):
            findings.append(Finding(f"cfn-lint --regions {region}", "cfn-lint", f"exited {run.returncode}: {stderr or stdout}"))
    return findings


def shared_lint(shared_builds: SharedBuilds, name: str, templates: dict[str, list[Path]]) -> list[Finding]:
    """`lint(templates)`, run once per session under `name` by whichever process asks first."""

    def build(folder: Path) -> None:
        (folder / FINDINGS).write_text(json.dumps([asdict(finding) for finding in lint(templates)]))

    folder = shared_builds.folder(f"cfn-lint-{name}", build)
    return [Finding(**finding) for finding in json.loads((folder / FINDINGS).read_text())]
