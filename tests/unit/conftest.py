"""Fixtures shared by the template tests."""

from __future__ import annotations

import pytest

from config import ENVIRONMENTS
from pipeline_code import render


@pytest.fixture(params=ENVIRONMENTS)
def environment(request) -> str:
    """Each environment in turn."""
    return request.param


@pytest.fixture(params=render.pipeline_names())
def pipeline(request) -> str:
    """Each folder of pipeline_code/ in turn: a new folder is tested without editing a test."""
    return request.param
