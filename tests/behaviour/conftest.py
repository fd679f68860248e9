"""Fixtures shared by the behaviour tests."""

from __future__ import annotations

import pytest

REGION = "eu-west-1"


@pytest.fixture
def aws_env(monkeypatch):
    """Fake credentials and the region, as a Lambda in eu-west-1 would see them (AWS_REGION)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
