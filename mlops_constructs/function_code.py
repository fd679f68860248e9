"""The Lambda functions of functions/: their code assets, and the runtime and architecture they all run on."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
# Bytecode that running the tests leaves next to a handler would otherwise be zipped into the function and
# change its asset hash, so a checkout that has run the tests would deploy different code than a fresh clone.
_NOT_CODE = ["__pycache__", "*.pyc"]


def function_code(name: str) -> lambda_.Code:
    """functions/<name>/ as a Lambda code asset, without bytecode caches."""
    return lambda_.Code.from_asset(str(FUNCTIONS_DIR / name), exclude=_NOT_CODE)


def platform_function(scope: Construct, construct_id: str, *, folder: str, entry: str = "handler", **props) -> lambda_.Function:
    """`handler.<entry>` of functions/<folder>/ as a Lambda function. Every function of the platform runs on
    the same runtime and architecture (the one the handlers are tested with), so an upgrade is one edit."""
    return lambda_.Function(
        scope,
        construct_id,
        runtime=lambda_.Runtime.PYTHON_3_14,
        architecture=lambda_.Architecture.ARM_64,
        code=function_code(folder),
        handler=f"handler.{entry}",
        **props,
    )
