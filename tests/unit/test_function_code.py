"""The Lambda code assets of functions/: the same code in every checkout."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

from mlops_constructs import function_code as function_code_module
from stacks.environment import new_app


def _asset_hash(outdir, functions_dir, monkeypatch) -> str:
    monkeypatch.setattr(function_code_module, "FUNCTIONS_DIR", functions_dir)
    app = new_app(outdir=str(outdir))
    stack = cdk.Stack(app, "Functions")
    lambda_.Function(
        stack, "Handler", runtime=lambda_.Runtime.PYTHON_3_14, handler="handler.handler", code=function_code_module.function_code("example")
    )
    template = app.synth().get_stack_by_name("Functions").template
    (function,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    return function["Properties"]["Code"]["S3Key"]


def test_bytecode_left_next_to_a_handler_by_the_tests_leaves_its_asset_unchanged(tmp_path, monkeypatch):
    functions_dir = tmp_path / "functions"
    (functions_dir / "example").mkdir(parents=True)
    (functions_dir / "example" / "handler.py").write_text("def handler(event, context):\n    return event\n")
    fresh_clone = _asset_hash(tmp_path / "fresh", functions_dir, monkeypatch)

    (functions_dir / "example" / "__pycache__").mkdir()
    (functions_dir / "example" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"bytecode")
    (functions_dir / "example" / "stale.pyc").write_bytes(b"bytecode")
    after_tests = _asset_hash(tmp_path / "tested", functions_dir, monkeypatch)

    assert after_tests == fresh_clone
