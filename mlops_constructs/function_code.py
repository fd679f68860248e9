"""The code asset of a Lambda function folder under functions/."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
# Bytecode that running the tests leaves next to a handler would otherwise be zipped into the function and
# change its asset hash, so a checkout that has run the tests would deploy different code than a fresh clone.
_NOT_CODE = ["__pycache__", "*.pyc"]


def function_code(name: str) -> lambda_.Code:
    """functions/<name>/ as a Lambda code asset, without bytecode caches."""
    return lambda_.Code.from_asset(str(FUNCTIONS_DIR / name), exclude=_NOT_CODE)
