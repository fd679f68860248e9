"""The contract between each handler in functions/ and the function the templates deploy it as.

A handler that reads an environment variable its function does not set crashes on AWS at its first event
(a KeyError before it does anything), and only a snapshot shows the template lost the variable. The reads
are found in the handlers' source with `ast` (``os.environ[...]``, ``os.environ.get(...)``,
``os.getenv(...)``); each deployed function is matched to its folder by the code asset cdk.out holds.
"""

from __future__ import annotations

import ast

import pytest

from config import ENVIRONMENTS
from tests.synth import ROOT, Synthesized
from tests.templates import resources

FUNCTIONS_DIR = ROOT / "functions"
# What the Lambda runtime sets in every function's environment (AWS Lambda's "reserved environment variables").
RUNTIME_VARIABLES = frozenset(
    {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "TZ",
        "_HANDLER",
    }
)


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"


def environment_reads(source: str) -> set[str]:
    """Every environment variable `source` reads by a literal name; ValueError for a read by a computed name,
    which no test could check."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        key = None
        if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            key = node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and (
            (node.func.attr == "get" and _is_os_environ(node.func.value))
            or (node.func.attr == "getenv" and isinstance(node.func.value, ast.Name) and node.func.value.id == "os")
        ):
            key = node.args[0]
        if key is None:
            continue
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            raise ValueError(f"an environment variable read by a computed name at line {node.lineno}: {ast.unparse(node)}")
        found.add(key.value)
    return found


def handler_folders() -> list[str]:
    return sorted(path.parent.name for path in FUNCTIONS_DIR.glob("*/handler.py"))


def _folder_reads(folder: str) -> set[str]:
    return {name for path in sorted((FUNCTIONS_DIR / folder).glob("*.py")) for name in environment_reads(path.read_text())}


def deployed_functions(synthesized: Synthesized, environment: str, folder: str) -> list[tuple[str, str, dict]]:
    """(stack, logical ID, properties) of every function of the environment whose code is functions/<folder>/."""
    handler = (FUNCTIONS_DIR / folder / "handler.py").read_text()
    found = []
    for stack in synthesized.stacks(environment):
        template = synthesized.template(environment, stack.removeprefix(f"{environment}-"))
        for logical_id, function in resources(template, "AWS::Lambda::Function").items():
            key = function["Properties"].get("Code", {}).get("S3Key")
            if not isinstance(key, str):
                continue
            asset = synthesized.outdir / f"asset.{key.removesuffix('.zip')}" / "handler.py"
            if asset.exists() and asset.read_text() == handler:
                found.append((stack, logical_id, function["Properties"]))
    return found


def test_a_read_by_a_computed_name_is_refused():
    with pytest.raises(ValueError, match="computed name"):
        environment_reads("import os\nname = 'X'\nos.environ[name]\n")


def test_every_literal_form_of_a_read_is_found():
    source = "import os\nos.environ['A']\nos.environ.get('B')\nos.environ.get('C', '5')\nos.getenv('D')\nos.environ.copy()\n"

    assert environment_reads(source) == {"A", "B", "C", "D"}


@pytest.mark.parametrize("folder", handler_folders())
def test_every_variable_a_handler_reads_is_set_on_each_function_that_runs_it(synthesized: Synthesized, environment: str, folder: str):
    deployed = deployed_functions(synthesized, environment, folder)
    if not deployed:
        pytest.skip(f"{environment} deploys no function with functions/{folder}/")
    needed = _folder_reads(folder) - RUNTIME_VARIABLES

    missing = {
        f"{stack}/{logical_id}": sorted(needed - set(properties.get("Environment", {}).get("Variables", {})))
        for stack, logical_id, properties in deployed
    }

    assert {function: names for function, names in missing.items() if names} == {}


@pytest.mark.parametrize("folder", handler_folders())
def test_every_handler_folder_is_deployed_by_some_environment(synthesized: Synthesized, folder: str):
    environments = [environment for environment in ENVIRONMENTS if deployed_functions(synthesized, environment, folder)]

    assert environments, f"no environment deploys functions/{folder}/"
