"""No pipeline ships step scripts that no test runs."""

from __future__ import annotations

from pathlib import Path

from pipeline_code import render
from tests.pipeline_code.test_training_scripts import PIPELINES as BUILT_LIKE_TRAINING

HERE = Path(__file__).resolve().parent


def test_every_pipeline_has_its_step_scripts_run_by_a_test():
    untested = [
        name
        for name in render.pipeline_names()
        if name not in BUILT_LIKE_TRAINING and not (HERE / f"test_{name.replace('-', '_')}_scripts.py").is_file()
    ]
    assert not untested, (
        f"pipelines whose step scripts no test runs: {untested}; "
        "add tests/pipeline_code/test_<name>_scripts.py running them on real data"
    )
