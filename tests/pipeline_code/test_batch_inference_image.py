"""The inference image, read from its Dockerfile and pins (no Docker daemon needed): it installs what the
tests score with, so the training pipeline's joblib model loads in it, and runs the code unprivileged."""

from __future__ import annotations

import json
import os
import re
import sys
from importlib.metadata import PackageNotFoundError, requires, version

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlops_constructs.batch_inference_workflow.jobs import DROP_ROOT, STEPS
from pipeline_code import render
from pipeline_code.settings import SKLEARN_VERSION

FOLDER = render.PACKAGE_DIR / "batch_inference"
# What predict.py imports from outside the standard library.
IMPORTED = ("joblib", "numpy", "pandas", "pyarrow", "scikit-learn")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined and comments left out."""
    lines = [line for line in (FOLDER / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def _arguments(instruction: str) -> list[str]:
    return [arguments for name, arguments in _instructions() if name == instruction]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (FOLDER / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def _installed_closure(names: tuple[str, ...]) -> dict[str, str]:
    """The installed versions of `names` and of everything they need on Linux, without extras."""
    found: dict[str, str] = {}
    pending = list(names)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in found:
            continue
        found[name] = version(name)
        for text in requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": "", "sys_platform": "linux", "platform_system": "Linux"}):
                pending.append(requirement.name)
    return found


def test_the_image_pins_what_predict_imports_and_its_dependencies_at_the_tested_versions():
    try:
        tested = _installed_closure(IMPORTED)
    except PackageNotFoundError as missing:
        raise AssertionError(f"a dependency of {IMPORTED} is not installed where the tests run: {missing}") from None

    assert _pins() == tested


def test_the_image_has_the_scikit_learn_of_the_training_container():
    """A joblib model loads reliably only in the scikit-learn release that saved it."""
    assert _pins()["scikit-learn"].rsplit(".", 1)[0] == SKLEARN_VERSION.split("-")[0]


def test_the_image_starts_from_a_slim_python_of_the_tests_version_pinned_by_digest():
    (base,) = _arguments("FROM")

    assert re.fullmatch(rf"python:{sys.version_info.major}\.{sys.version_info.minor}-slim-\w+@sha256:[0-9a-f]{{64}}", base), base


def test_the_image_installs_only_its_pinned_requirements():
    (install,) = [arguments for arguments in _arguments("RUN") if "pip install" in arguments]

    # pip check: the pins are a complete, consistent set, or the build fails.
    assert install == "pip install --no-cache-dir -r /opt/program/requirements.txt && pip check"


def test_the_image_carries_predict_for_docker_run():
    assert "predict.py /opt/program/predict.py" in _arguments("COPY")


def test_every_file_the_image_copies_is_in_its_build_context():
    sources = [arguments.split()[0] for arguments in _arguments("COPY")]

    assert sources
    assert [source for source in sources if not (FOLDER / source).is_file()] == []
    assert _arguments("ADD") == []


def test_the_image_runs_predict_as_its_unprivileged_user():
    (entrypoint,) = _arguments("ENTRYPOINT")
    launcher, *command = json.loads(entrypoint)
    script = (FOLDER / "run-as-inference-user").read_text()

    assert f"run-as-inference-user {launcher}" in _arguments("COPY")
    assert command == ["python3", "/opt/program/predict.py"]
    assert any("useradd" in arguments and arguments.rstrip().endswith(" inference") for arguments in _arguments("RUN"))
    assert script.rstrip().splitlines()[-1] == 'exec setpriv --reuid=inference --regid=inference --init-groups --no-new-privs -- "$@"'
    assert os.access(FOLDER / "run-as-inference-user", os.X_OK)


def test_the_inference_job_starts_predict_through_the_launcher_that_drops_root():
    """A processing job's ContainerEntrypoint replaces the image's ENTRYPOINT, so the job names the launcher
    the image installs, or predict.py would run as root."""
    (entrypoint,) = _arguments("ENTRYPOINT")
    (inference,) = [step for step in STEPS if step.script == "predict.py"]

    assert inference.launcher == (json.loads(entrypoint)[0],) == (DROP_ROOT,)
    assert f"run-as-inference-user {DROP_ROOT}" in _arguments("COPY")


def test_the_launcher_hands_the_outputs_and_the_failure_message_folder_to_the_unprivileged_user():
    script = (FOLDER / "run-as-inference-user").read_text()
    (folders,) = re.findall(r"^for output_dir in (.+); do$", script, flags=re.MULTILINE)

    assert folders.split() == ["/opt/ml/processing/output", "/opt/ml/output"]
    assert 'chown inference:inference "$output_dir"' in script
