"""cfn-lint over the templates of a synth, each environment's templates linted for the environment's region.

cfn-lint takes about a quarter of a second of CPU per template (6 s for the 21 of one synth), so what a
session lints is linted once: a caller names the lint, and the first process of the session to ask runs it
(see tests/shared_builds.py). Within it, a template is linted only if no lint has linted the same bytes for
the same region with the same cfn-lint: its findings are kept by that digest and read back for every copy (a
synth of config/ that holds the tests' values, the stacks a variant leaves as they are, and the templates a
change left as they were, in the next run).

The findings are kept in `.cache/cfn-lint/<toolchain>/`, where <toolchain> digests everything besides the
template and the region that decides cfn-lint's findings: the installed files of cfn-lint and of every
package it requires (their RECORD, which lists each file's hash), the Python version, the cfn-lint settings
files it reads (`.cfnlintrc*` in the home and the working folder), the version of the resource schemas it
downloaded into its own cache (which it prefers when they are newer than those it ships), and this file,
which runs it and reads its output. Anything else changed there starts a new folder; older ones are removed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from tests import installed
from tests.kept_results import digest_files, folder_for, write_atomically
from tests.shared_builds import SharedBuilds

FINDINGS = "cfn-lint.json"
# <toolchain digest>/<digest of region and template>.json: the findings of one template (rule, message).
KNOWN_FINDINGS = Path(__file__).resolve().parent.parent / ".cache" / "cfn-lint"
_SETTINGS_FILES = (".cfnlintrc", ".cfnlintrc.yaml", ".cfnlintrc.yml")


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


def lint_each_once(templates: dict[str, list[Path]], known: Path) -> list[Finding]:
    """`lint(templates)`, where a template whose bytes were linted for its region before (their findings kept
    in `known`) is not linted again; the findings of the others are kept there for the next lint."""
    known.mkdir(parents=True, exist_ok=True)
    digests = {path: _digest(region, path) for region, paths in templates.items() for path in paths}
    unknown = {region: [path for path in paths if not (known / f"{digests[path]}.json").exists()] for region, paths in templates.items()}
    unknown = {region: paths for region, paths in unknown.items() if paths}
    linted = lint(unknown) if unknown else []
    if any(finding.rule == "cfn-lint" for finding in linted):
        # cfn-lint itself failed: nothing is kept, and the failure is the finding.
        return linted
    by_path: dict[str, list[dict]] = defaultdict(list)
    for finding in linted:
        by_path[finding.path].append({"rule": finding.rule, "message": finding.message})
    linted_paths = {str(path) for paths in unknown.values() for path in paths}
    for path in (path for paths in unknown.values() for path in paths):
        write_atomically(known / f"{digests[path]}.json", json.dumps(by_path[str(path)]).encode())
    # A finding cfn-lint names some other way than by a template it was given is reported, never dropped.
    return [finding for finding in linted if finding.path not in linted_paths] + [
        Finding(str(path), **finding)
        for path, digest in digests.items()
        for finding in json.loads((known / f"{digest}.json").read_text())
    ]


def _digest(region: str, template: Path) -> str:
    return hashlib.sha256(region.encode() + b"\0" + template.read_bytes()).hexdigest()


def _downloaded_schemas() -> Path:
    """Where cfn-lint keeps the resource schemas it downloads (`cfnlint.helpers.get_cache_dir()`), without
    importing cfn-lint."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aws" / "cfn-lint" / "schemas"


@functools.cache
def toolchain_digest() -> str:
    """A digest of everything besides a template and its region that decides cfn-lint's findings on it."""
    digest = installed.code_digest("cfn-lint")
    settings = [folder / name for folder in (Path.home(), Path.cwd()) for name in _SETTINGS_FILES]
    settings.append(_downloaded_schemas() / "version.json")
    digest_files(digest, [*settings, Path(__file__)])
    return digest.hexdigest()[:32]


def known_findings() -> Path:
    """The folder of the findings kept for this toolchain; those kept for any other are removed."""
    return folder_for(KNOWN_FINDINGS, toolchain_digest())


def shared_lint(shared_builds: SharedBuilds, name: str, templates: dict[str, list[Path]]) -> list[Finding]:
    """`lint(templates)`, run once per session under `name` by whichever process asks first, linting only the
    templates no lint with this toolchain has linted (`lint_each_once`)."""

    def build(folder: Path) -> None:
        findings = lint_each_once(templates, known_findings())
        (folder / FINDINGS).write_text(json.dumps([asdict(finding) for finding in findings]))

    folder = shared_builds.folder(f"cfn-lint-{name}", build)
    return [Finding(**finding) for finding in json.loads((folder / FINDINGS).read_text())]
