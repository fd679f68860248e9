"""What tests/user_config checks about a config folder, whatever it holds.

`check()` runs what a first `make deploy` depends on, in order, and records each outcome: every
environment loads and validates; the app synthesizes with AWS unreachable (cdk-nag included: synth raises
on a finding); cfn-lint reports no error on any template, each linted for its own environment's region. A
stage runs only if the one before it passed, and the record says why a stage did not run. Nothing here
assumes any value of the folder's config: it must hold for any valid one.

`in_other_accounts_and_regions()` copies a config folder with every account and region changed, so the
same checks can prove that nothing in the app depends on the sample values.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from config import ENVIRONMENTS, ConfigError, load_environments
from tests.cfn_lint import shared_lint, templates_by_region
from tests.conftest import synthesized_app
from tests.shared_builds import SharedBuilds
from tests.synth import STACKS, TEST_CONFIG_DIR, Synthesized, synthesize

RECORD = "check.json"
# Regions a moved copy is put in (each has zones a to c). Any region would do: these have every service
# the app uses.
OTHER_REGIONS = ("us-west-2", "ap-southeast-2")
OTHER_ACCOUNTS = {"dev": "210987654321", "staging": "210987654322", "prod": "210987654323"}
SPARE_ACCOUNT = "209876543210"


@dataclass
class ConfigCheck:
    config_error: str | None = None
    synth_error: str | None = None
    aws_calls: list[str] = field(default_factory=list)
    nag_findings: list[dict] = field(default_factory=list)
    lint_errors: list[str] = field(default_factory=list)
    linted_templates: int = 0
    regions: dict[str, str] = field(default_factory=dict)

    def synthesized(self) -> None:
        """Fails the calling test with the reason when the app was not synthesized."""
        assert self.config_error is None, f"not synthesized: the config does not load:\n{self.config_error}"
        assert self.synth_error is None, f"synth failed:\n{self.synth_error}"


def check(config_dir: Path, folder: Path, shared_builds: SharedBuilds) -> ConfigCheck:
    """Runs the checks on `config_dir`, synthesizing into `folder`; the record is kept in `folder`.

    A config that is the tests' own in every value (as config/ is until you edit it) synthesizes to the
    same templates as the suite's own synth, so that synth and its lint are read instead of repeated.
    """
    result = ConfigCheck()
    try:
        configs = load_environments(config_dir)
    except ConfigError as error:
        result.config_error = str(error)
        return _recorded(result, folder)
    result.regions = {config.name: config.region for config in configs}
    if _same_values(configs, load_environments(TEST_CONFIG_DIR)):
        synth_folder, lint_name = synthesized_app(shared_builds), "app"
    else:
        synth_folder, lint_name = folder, folder.name
        try:
            synthesize(folder / "cdk.out", config_dir=config_dir, reuse=True)
        except Exception as error:  # noqa: BLE001 - whatever stops a synth is the finding, reported as such
            result.synth_error = f"{type(error).__name__}: {error}"
    outdir = synth_folder / "cdk.out"
    result.nag_findings = _validation_findings(outdir)
    if result.synth_error is None:
        result.aws_calls = Synthesized(outdir).aws_calls
        templates = templates_by_region(outdir, result.regions)
        result.lint_errors = [str(finding) for finding in shared_lint(shared_builds, lint_name, templates) if finding.is_error]
        result.linted_templates = sum(len(paths) for paths in templates.values())
    return _recorded(result, folder)


def recorded(folder: Path) -> ConfigCheck:
    return ConfigCheck(**json.loads((folder / RECORD).read_text()))


def _same_values(configs: list, test_configs: list) -> bool:
    return [config.model_dump() for config in configs] == [config.model_dump() for config in test_configs]


def _recorded(result: ConfigCheck, folder: Path) -> ConfigCheck:
    (folder / RECORD).write_text(json.dumps(asdict(result)))
    return result


def _validation_findings(outdir: Path) -> list[dict]:
    report = outdir / "validation-report.json"
    if not report.exists():
        return []
    return [violation for plugin in json.loads(report.read_text())["pluginReports"] for violation in plugin["violations"]]


def expected_templates(check: ConfigCheck) -> int:
    return len(check.regions) * len(STACKS)


def in_other_accounts_and_regions(config_dir: Path, destination: Path) -> Path:
    """A copy of `config_dir` in `destination` where every environment has another account and another
    region; every string naming the old account or region (availability zones, ARNs) names the new one."""
    shutil.copytree(config_dir, destination)
    for environment in ENVIRONMENTS:
        path = destination / f"{environment}.yaml"
        if not path.is_file():
            continue
        config = yaml.safe_load(path.read_text())
        if not isinstance(config, dict):
            continue
        account, region = str(config.get("account", "")), str(config.get("region", ""))
        new_account = OTHER_ACCOUNTS[environment] if OTHER_ACCOUNTS[environment] != account else SPARE_ACCOUNT
        new_region = next(r for r in _preferred_regions(environment) if r != region)
        renames = {old: new for old, new in ((account, new_account), (region, new_region)) if old}
        path.write_text(yaml.safe_dump(_renamed(config, renames), sort_keys=False))
    return destination


def _preferred_regions(environment: str) -> tuple[str, ...]:
    first = ENVIRONMENTS.index(environment) % len(OTHER_REGIONS)
    return OTHER_REGIONS[first:] + OTHER_REGIONS[:first]


def _renamed(value: object, renames: dict[str, str]) -> object:
    if isinstance(value, dict):
        return {key: _renamed(item, renames) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item, renames) for item in value]
    if isinstance(value, str):
        for old, new in renames.items():
            value = value.replace(old, new)
        return value
    return value
