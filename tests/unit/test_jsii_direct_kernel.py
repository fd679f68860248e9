"""app.py's aws-cdk-lib node process answers Python directly (without jsii's relay process) and changes nothing
a synth writes or prints.

The three runs of a small app (through the relay, through the direct kernel, and through it again from the
code it cached) take three processes that each load aws-cdk-lib, about three seconds of CPU. What they show
depends only on the installed toolchain, node, the direct kernel's two files and this module, so their results
are kept in `.cache/jsii-direct-kernel/` under a digest of exactly those (and of the environment's jsii and node
settings), and run again when any of them changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stacks import jsii_direct_kernel
from stacks.jsii_direct_kernel import direct_kernel, installed_entry
from tests import installed
from tests.kept_results import digest_files, folder_for, write_atomically
from tests.synth import ROOT

KEPT = ROOT / ".cache" / "jsii-direct-kernel"
RUNS = "runs.json"

# A small app in a fresh process (jsii's kernel starts once per process): a few resources across modules, a
# call that makes aws-cdk-lib print (a deprecation warning) and what started the kernel.
_APP = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from stacks.jsii_direct_kernel import direct_kernel

    outdir, cache, direct = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "direct"
    if direct:
        with direct_kernel(cache):
            import aws_cdk as cdk
    else:
        import aws_cdk as cdk
    import jsii
    from aws_cdk import aws_iam as iam, aws_s3 as s3, aws_sqs as sqs

    # As app.py's App: aws-cdk-lib's built-in validation would add seconds to each of the three runs.
    app = cdk.App(outdir=outdir, builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "Small")
    bucket = s3.Bucket(stack, "Bucket", enforce_ssl=True)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    bucket.grant_read(role)
    sqs.Queue(stack, "Queue", visibility_timeout=cdk.Duration.minutes(2))
    cdk.CfnOutput(stack, "Secret", value=cdk.SecretValue.plain_text("not a secret").unsafe_unwrap())
    app.synth()
    print(json.dumps({"kernel": jsii.kernel.provider._process._process.args}))
    """
)


def _run(tmp_path_factory, mode: str, cache) -> dict:
    outdir = tmp_path_factory.mktemp(f"{mode}-out")
    result = subprocess.run(
        [sys.executable, "-c", _APP, str(outdir), str(cache), mode],
        cwd=ROOT,
        # The launcher alone prints a banner about node's end of life, which the Makefile silences.
        env={**{name: value for name, value in os.environ.items() if name != "JSII_RUNTIME"}, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"},
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return {
        "kernel": json.loads(result.stdout.splitlines()[-1])["kernel"],
        "stderr": result.stderr,
        "template": json.loads((outdir / "Small.template.json").read_text()),
    }


def _settings() -> dict[str, str]:
    """The environment the runs inherit that jsii or node read (the runs choose JSII_RUNTIME themselves)."""
    return {name: value for name, value in sorted(os.environ.items()) if name.startswith(("JSII_", "NODE_")) and name != "JSII_RUNTIME"}


def inputs_digest() -> str:
    """A digest of everything the runs' results depend on: the installed aws-cdk-lib and jsii with all they
    require (and the Python version), node's path and version, the direct kernel's two files, this module
    (the app and how it is run) and the settings of `_settings`."""
    digest = installed.code_digest("aws-cdk-lib", "jsii")
    digest.update(f"{installed.node_identity()}\0{json.dumps(_settings())}\0".encode())
    digest_files(digest, [Path(jsii_direct_kernel.__file__), jsii_direct_kernel.ENTRY, Path(__file__)])
    return digest.hexdigest()[:32]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The app through jsii's relay, through the direct kernel, then through it again with the code it cached;
    and the names of the files the kernel kept in its cache. Read from `.cache/` when made before from the
    same inputs."""
    kept = folder_for(KEPT, inputs_digest()) / RUNS
    if kept.is_file():
        return json.loads(kept.read_text())
    kernel_cache = tmp_path_factory.mktemp("kernel-cache")
    made = {
        "relay": _run(tmp_path_factory, "relay", kernel_cache),
        "direct": _run(tmp_path_factory, "direct", kernel_cache),
        "cached": _run(tmp_path_factory, "direct", kernel_cache),
        "kept by the kernel": sorted(str(path.relative_to(kernel_cache)) for path in kernel_cache.rglob("*") if path.is_file()),
    }
    kept.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(kept, json.dumps(made).encode())
    return made


def test_the_kernel_is_started_from_the_direct_entry(runs):
    assert runs["direct"]["kernel"][-1].endswith("/bin/jsii_direct_kernel.js")
    assert runs["cached"]["kernel"] == runs["direct"]["kernel"]
    assert not runs["relay"]["kernel"][-1].endswith("/bin/jsii_direct_kernel.js")


def test_a_synth_through_the_direct_kernel_writes_the_same_template(runs):
    assert runs["direct"]["template"] == runs["relay"]["template"]
    assert runs["cached"]["template"] == runs["relay"]["template"]


def test_the_kernel_keeps_the_code_it_compiled_for_the_next_process(runs):
    kept = [Path(path) for path in runs["kept by the kernel"]]
    (folder,) = {path.parts[0] for path in kept}
    (code_cache,) = {path.parent for path in kept if path.parent.name.startswith("code-cache-")}

    assert code_cache.parent == Path(folder)
    assert len([path for path in kept if path.parent == code_cache and path.suffix == ".bin"]) > 100


def test_what_aws_cdk_lib_prints_reaches_python_as_through_the_relay(runs):
    warning = "[WARNING] aws-cdk-lib.SecretValue#plainText is deprecated"

    assert warning in runs["relay"]["stderr"]
    assert runs["direct"]["stderr"] == runs["relay"]["stderr"]
    assert runs["cached"]["stderr"] == runs["relay"]["stderr"]


def test_the_environment_is_restored_after_the_block(monkeypatch, tmp_path):
    monkeypatch.delenv("JSII_RUNTIME", raising=False)
    monkeypatch.setenv("NODE_PRESERVE_SYMLINKS", "0")

    with direct_kernel(tmp_path):
        inside = {name: os.environ.get(name) for name in ("JSII_RUNTIME", "NODE_PRESERVE_SYMLINKS")}

    assert inside == {"JSII_RUNTIME": str(installed_entry(tmp_path)), "NODE_PRESERVE_SYMLINKS": "1"}
    assert "JSII_RUNTIME" not in os.environ
    assert os.environ["NODE_PRESERVE_SYMLINKS"] == "0"


def test_a_runtime_chosen_outside_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("JSII_RUNTIME", "/elsewhere/jsii-runtime.js")

    with direct_kernel(tmp_path):
        assert os.environ["JSII_RUNTIME"] == "/elsewhere/jsii-runtime.js"

    assert list(tmp_path.iterdir()) == []


def test_the_launcher_switch_leaves_jsii_to_start_its_own_launcher(monkeypatch, tmp_path):
    monkeypatch.delenv("JSII_RUNTIME", raising=False)
    monkeypatch.setenv("MLOPS_JSII_LAUNCHER", "1")

    with direct_kernel(tmp_path):
        assert "JSII_RUNTIME" not in os.environ

    assert list(tmp_path.iterdir()) == []


def test_the_kernel_files_are_written_once_beside_the_entry(tmp_path):
    entry = installed_entry(tmp_path)
    written = entry.stat().st_mtime_ns

    assert installed_entry(tmp_path) == entry
    assert entry.stat().st_mtime_ns == written
    assert entry.read_bytes() == jsii_direct_kernel.ENTRY.read_bytes()
    assert (entry.parent.parent / "lib" / "program.js").is_file()
    assert (entry.parent.parent / "lib" / "runtime-index-worker.js").is_file()
    assert [path.name for path in tmp_path.iterdir()] == [entry.parent.parent.name]


def test_installing_the_entry_removes_what_earlier_versions_left(tmp_path):
    earlier = tmp_path / "1.0.0-earlier"
    (earlier / "code-cache-v1").mkdir(parents=True)

    entry = installed_entry(tmp_path)

    assert [path.name for path in tmp_path.iterdir()] == [entry.parent.parent.name]


def test_the_kept_runs_are_made_again_for_another_jsii(monkeypatch):
    before = inputs_digest()
    installed.one_version_later(monkeypatch, "jsii")

    assert inputs_digest() != before


def test_the_kept_runs_are_made_again_when_the_kernel_entry_changes(monkeypatch, tmp_path):
    before = inputs_digest()
    changed = tmp_path / jsii_direct_kernel.ENTRY.name
    changed.write_bytes(jsii_direct_kernel.ENTRY.read_bytes() + b"\n")
    monkeypatch.setattr(jsii_direct_kernel, "ENTRY", changed)

    assert inputs_digest() != before


def test_the_kept_runs_are_made_again_under_other_node_settings(monkeypatch):
    before = inputs_digest()
    monkeypatch.setenv("NODE_OPTIONS", "--max-semi-space-size=64")

    assert inputs_digest() != before
