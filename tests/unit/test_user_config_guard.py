"""No test outside tests/user_config can read the repository's config/: what a user puts there (accounts,
regions, users, e-mails) never reaches the template, behaviour and snapshot tests, which run on tests/config."""

from __future__ import annotations

import pytest

from config import load_environment, load_environments
from tests.conftest import USER_CONFIG_DIR, UserConfigRefused
from tests.synth import TEST_CONFIG_DIR, Synthesized


def test_loading_config_outside_user_config_tests_fails_pointing_to_tests_config():
    with pytest.raises(UserConfigRefused, match=r"Tests synthesize from the tests' configuration, tests/config"):
        load_environment(USER_CONFIG_DIR, "dev")


def test_loading_every_environment_of_config_outside_user_config_tests_fails():
    with pytest.raises(UserConfigRefused):
        load_environments(USER_CONFIG_DIR)


def test_the_suites_synth_reads_the_tests_own_config(synthesized: Synthesized):
    assert synthesized.config_dir == TEST_CONFIG_DIR
