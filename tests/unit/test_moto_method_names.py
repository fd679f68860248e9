"""moto's list of a response class's methods, remembered per state of the class (tests/conftest.py), is what
moto itself would find at every request."""

from __future__ import annotations

import inspect

import moto.core.responses
from moto.core.responses import BaseResponse


class _Answers(BaseResponse):
    def describe_thing(self) -> str:
        return "thing"


def _found() -> list[str]:
    return moto.core.responses.method_names_from_class(_Answers)


def _as_moto_finds_them() -> list[str]:
    return [name for name, _ in inspect.getmembers(_Answers, inspect.isfunction)]


def test_the_suite_remembers_moto_method_names():
    assert getattr(moto.core.responses.method_names_from_class, "remembers", False)


def test_a_method_added_or_removed_after_a_request_is_seen_at_the_next(monkeypatch):
    assert _found() == _as_moto_finds_them()

    monkeypatch.setattr(_Answers, "list_things", lambda self: "things", raising=False)
    assert "list_things" in _found()
    assert _found() == _as_moto_finds_them()

    monkeypatch.setattr(_Answers, "describe_thing", "not a method")
    assert "describe_thing" not in _found()
    assert _found() == _as_moto_finds_them()

