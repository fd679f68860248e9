"""Promoting a model version into an environment: invoking the target environment's promotion function.

The target's function does the work (functions/model_promotion/) with its own role, which the source
environment's policies let read that version; the person only needs to be allowed to invoke the function,
in the target account.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from config import ENVIRONMENTS
from config.naming import promotion_function_name
from mlops_cli.environment import Environment
from mlops_cli.errors import MlopsError

# The function copies artifacts for up to its 15-minute timeout; the answer is waited for that long, and a
# timed-out request is not sent again (a second run would only find the first one's copy).
_INVOKE = Config(read_timeout=15 * 60 + 10, connect_timeout=10, retries={"total_max_attempts": 1})
# How the function says a version cannot be promoted (the handler's exception class).
REFUSED = "PromotionRefused"


def function_name(target: Environment) -> str:
    return promotion_function_name(target.prefix)


def check_environments(source: str, target: str) -> None:
    """A promotion goes from one environment to another, both of them environments."""
    for name in (source, target):
        if name not in ENVIRONMENTS:
            raise MlopsError(f"unknown environment '{name}'; the environments are: {', '.join(ENVIRONMENTS)}")
    if source == target:
        raise MlopsError(f"--from and --to are both {source}: a version is promoted from one environment into another")


def promote(target: Environment, source: str, version: int, model: str | None) -> dict[str, Any]:
    """Ask `target`'s promotion function to promote `version` of `model` from `source`; its answer, or an error."""
    name = function_name(target)
    request = {"version": version, "sourceEnvironment": source, **({"model": model} if model else {})}
    client = target.session.client("lambda", config=_INVOKE)
    try:
        response = client.invoke(FunctionName=name, InvocationType="RequestResponse", Payload=json.dumps(request).encode())
    except ClientError as error:
        if error.response["Error"].get("Code") == "ResourceNotFoundException":
            raise MlopsError(
                f"environment {target.name} has no promotion function {name}: is {target.name} deployed to promote from {source}?"
            ) from None
        raise
    answer = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        failure = answer if isinstance(answer, dict) else {}
        if failure.get("errorType") == REFUSED:
            raise MlopsError(f"not promoted: {failure.get('errorMessage')}")
        raise MlopsError(
            f"the promotion failed: {failure.get('errorType', 'error')}: {failure.get('errorMessage', answer)} "
            f"(its log: log group /aws/lambda/{name} in {target.name}); running the command again is safe"
        )
    return answer
