"""What a command prints: Rich tables and lines for people, or the same facts as JSON with --json."""

from __future__ import annotations

import datetime
import json
from typing import Any

import click
from rich.console import Console


def console() -> Console:
    # Made per command, on the stdout of the moment (the test runner replaces it). Plain text when stdout
    # is not a terminal, at the terminal's width or COLUMNS. What it prints comes from AWS and from people
    # (failure reasons, notes, descriptions): no markup or emoji codes are interpreted in it.
    return Console(highlight=False, markup=False, emoji=False)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_plain))


def when(value: datetime.datetime | None) -> str:
    """A timestamp as people read it: UTC, to the second."""
    if value is None:
        return "-"
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
