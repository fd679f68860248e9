"""State machine JSON paths and intrinsic functions, each asked of aws-cdk-lib at most once per process.

Each of sfn.JsonPath's helpers is a round trip to aws-cdk-lib's node process, and it gives the same token
for the same path every time; a state machine asks for a few dozen paths hundreds of times. Use these in
place of ``sfn.JsonPath.string_at`` and friends. Its constants (``DISCARD``, ``execution_id``) are round
trips too, each time they are read.

An intrinsic function whose arguments are known when the state is made (``states_format``, ``states_math_add``) is written out
here, as the text sfn.JsonPath renders, under a parameter key ending in ``.$``: no round trip at all.
"""

from __future__ import annotations

import functools

from aws_cdk import aws_stepfunctions as sfn

from mlops_constructs.tokens import holds_token

string_at = functools.cache(sfn.JsonPath.string_at)
list_at = functools.cache(sfn.JsonPath.list_at)
number_at = functools.cache(sfn.JsonPath.number_at)
DISCARD = sfn.JsonPath.DISCARD
EXECUTION_ID = sfn.JsonPath.execution_id


def states_format(template: str, *values: str) -> str:
    """``States.Format(template, values...)`` as ``sfn.JsonPath.format`` renders it, for a parameter whose key
    ends in ``.$``: each value is a JSON path (``$.a.b`` or ``$$.Execution.Id``), given as the path itself,
    or else a text passed as it is. The template may hold deploy-time values (a bucket's name); the values
    may not, nor the tokens ``string_at`` returns."""
    for value in values:
        if holds_token(value):
            raise ValueError(f"states_format takes JSON paths as plain text ('$.a'), not tokens: {value!r}")
    return f"States.Format({', '.join([_quoted(template), *(value if value.startswith('$') else _quoted(value) for value in values)])})"


def states_math_add(path: str, step: int) -> str:
    """``States.MathAdd(path, step)`` as ``sfn.JsonPath.math_add(number_at(path), step)`` renders it, for a
    parameter whose key ends in ``.$``: `path` given as the path itself."""
    return f"States.MathAdd({path}, {step})"


def _quoted(text: str) -> str:
    """`text` as a string literal of an intrinsic function, escaped as aws-cdk-lib escapes it: an apostrophe,
    and a backslash unless it escapes a brace (``\\{`` and ``\\}`` stay as they are)."""
    escaped = []
    for index, char in enumerate(text):
        if char == "'":
            escaped.append("\\'")
        elif char == "\\" and text[index + 1 : index + 2] not in ("{", "}"):
            escaped.append("\\\\")
        else:
            escaped.append(char)
    return f"'{''.join(escaped)}'"
