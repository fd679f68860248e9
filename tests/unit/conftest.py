"""Fixtures shared by the template tests."""

from __future__ import annotations

import pytest

from config import ENVIRONMENTS


@pytest.fixture(params=ENVIRONMENTS)
def environment(request) -> str:
    """Each environment in turn."""
    return request.param
