"""Copies of the JSON values the harness patches of moto hand out (states' data, a request's parsed body)."""

from __future__ import annotations

import copy
import datetime
from typing import Any

_UNCHANGING = (str, int, float, bool, type(None), datetime.datetime)


def copy_of(value: Any) -> Any:
    """A copy of `value`, as `copy.deepcopy` makes it, for JSON values: dicts and lists are copied level by
    level, strings, numbers, booleans, null and timestamps are kept (nothing changes them), and anything else
    is deep-copied. Without `deepcopy`'s bookkeeping, a tenth of the cost for the values moto copies."""
    kind = type(value)
    if kind is dict:
        return {key: copy_of(item) for key, item in value.items()}
    if kind is list:
        return [copy_of(item) for item in value]
    if kind in _UNCHANGING:
        return value
    return copy.deepcopy(value)
