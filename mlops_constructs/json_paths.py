"""State machine JSON paths, each asked of aws-cdk-lib once per process.

Each of sfn.JsonPath's helpers is a round trip to aws-cdk-lib's node process, and it gives the same token
for the same path every time; a state machine asks for a few dozen paths hundreds of times. Use these in
place of ``sfn.JsonPath.string_at`` and friends.
"""

from __future__ import annotations

import functools

from aws_cdk import aws_stepfunctions as sfn

string_at = functools.cache(sfn.JsonPath.string_at)
list_at = functools.cache(sfn.JsonPath.list_at)
number_at = functools.cache(sfn.JsonPath.number_at)
DISCARD = sfn.JsonPath.DISCARD
