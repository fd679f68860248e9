"""Each xdist worker keeps to a core of its own when there are as many workers as cores (tests/conftest.py)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from tests.conftest import one_core_per_worker


@pytest.fixture
def pinned(monkeypatch) -> list[set[int]]:
    """The machine's cores are 2 and 5; what the worker pins itself to is recorded, not done."""
    calls: list[set[int]] = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5, 2})
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cores: calls.append(set(cores)))
    return calls


def _worker(worker_id: str, workers: int) -> SimpleNamespace:
    return SimpleNamespace(workerinput={"workerid": worker_id, "workercount": workers})


def test_each_worker_of_as_many_as_the_cores_keeps_to_its_own(pinned):
    assert [one_core_per_worker(_worker("gw0", 2)), one_core_per_worker(_worker("gw1", 2))] == [{2}, {5}]
    assert pinned == [{2}, {5}]


def test_workers_more_or_fewer_than_the_cores_are_left_to_the_scheduler(pinned):
    assert [one_core_per_worker(_worker("gw0", 3)), one_core_per_worker(_worker("gw0", 1))] == [None, None]
    assert pinned == []


def test_a_run_without_workers_is_left_to_the_scheduler(pinned):
    assert one_core_per_worker(SimpleNamespace()) is None
    assert pinned == []
