"""The config folders tests/user_config checks: the user's own config/ and a copy of it in other accounts
and regions. Each is checked once per test session, by whichever xdist worker asks first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import USER_CONFIG_DIR
from tests.shared_builds import SharedBuilds

YOURS = "your-config"
MOVED = "your-config-in-other-accounts-and-regions"


def _check_yours(shared_builds: SharedBuilds) -> Callable[[Path], object]:
    from tests.user_config.checks import check

    return lambda folder: check(USER_CONFIG_DIR, folder, shared_builds)


def _check_moved(shared_builds: SharedBuilds) -> Callable[[Path], object]:
    from tests.user_config.checks import check, in_other_accounts_and_regions

    return lambda folder: check(in_other_accounts_and_regions(USER_CONFIG_DIR, folder / "config"), folder, shared_builds)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The checks of the moved copy first: their synth and lint share nothing with the rest of the suite,
    so the first worker builds them while the other builds the suite's own synth. The checks of config/
    stay last: while it holds the tests' values, they read that synth, and would wait for it if first."""
    moved = [item for item in items if getattr(item, "callspec", None) and item.callspec.params.get("config_check") == MOVED]
    items[:] = moved + [item for item in items if item not in moved]


@pytest.fixture(scope="session", params=[YOURS, MOVED])
def config_check(request: pytest.FixtureRequest, shared_builds: SharedBuilds):
    """The outcome of the checks (tests/user_config/checks.py) on config/, then on config/ moved to other
    accounts and regions: the same checks must pass on both."""
    from tests.user_config.checks import recorded

    build = _check_yours if request.param == YOURS else _check_moved
    return recorded(shared_builds.folder(f"user-config-{request.param}", build(shared_builds)))
