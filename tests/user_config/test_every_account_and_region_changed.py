"""The proof that the suite tests the code, not the sample values: the checks of test_your_config.py also
run on a copy of config/ with every account and region changed (and pass), and that copy really differs
from config/ in each of them. The rest of the suite cannot see config/ at all: a test outside
tests/user_config that loads it fails (tests/unit/test_user_config_guard.py)."""

from __future__ import annotations

from pathlib import Path

from config import load_environments
from tests.conftest import USER_CONFIG_DIR
from tests.user_config.checks import in_other_accounts_and_regions


def test_the_copy_has_every_account_region_and_zone_changed(tmp_path: Path):
    moved_dir = in_other_accounts_and_regions(USER_CONFIG_DIR, tmp_path / "config")

    for yours, moved in zip(load_environments(USER_CONFIG_DIR), load_environments(moved_dir), strict=True):
        assert moved.account != yours.account, yours.name
        assert moved.region != yours.region, yours.name
        text = (moved_dir / f"{yours.name}.yaml").read_text()
        assert yours.account not in text and yours.region not in text, yours.name
        zones = moved.network.vpc.availability_zones if moved.network.vpc else moved.network.existing_vpc.availability_zones
        assert all(zone.startswith(moved.region) for zone in zones), yours.name
