"""The one way a command fails: a plain sentence, no traceback."""

from __future__ import annotations

import click

# Exit status of a command that could not do its work. 1 is left for answers a script asks for
# (`pipeline diff`: the definitions differ), as diff(1) does.
FAILED = 2


class MlopsError(click.ClickException):
    """What went wrong and what to do about it, printed as ``Error: <message>`` on stderr."""

    exit_code = FAILED
