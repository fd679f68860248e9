"""Whether a string holds a value aws-cdk-lib resolves later (a deploy-time value, a JSON path token), decided
here: `cdk.Token.is_unresolved` would be a round trip to aws-cdk-lib's node process for every string asked."""

from __future__ import annotations

# How aws-cdk-lib writes a token into a string.
_TOKEN_MARK = "${Token["


def holds_token(text: str) -> bool:
    return _TOKEN_MARK in text
