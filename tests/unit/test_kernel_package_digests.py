"""app.py's aws-cdk-lib node process keeps the digests of the package tarballs jsii's kernel loads, instead of
reading and hashing them again in every process (stacks/jsii_direct_kernel.js)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import jsii._embedded.jsii as embedded
import pytest

from stacks import jsii_direct_kernel
from stacks.jsii_direct_kernel import installed_entry

# The smallest package aws-cdk-lib's kernel loads.
PACKAGE = "constructs"


@pytest.fixture(scope="module")
def tarball() -> Path:
    (path,) = resources.files(f"{PACKAGE}._jsii").glob("*.jsii.tgz")
    return Path(path)


@pytest.fixture(scope="module")
def package_cache(tmp_path_factory) -> Path:
    """Where the kernel unpacks what it loads in these tests: a package cache of their own, not the user's."""
    return tmp_path_factory.mktemp("package-cache")


def _load(entry: Path, tarball: Path, package_cache: Path) -> dict:
    """Start the kernel from `entry` as jsii's Python side does and ask it to load `tarball`."""
    version = tarball.name.removeprefix(f"{PACKAGE}@").removesuffix(".jsii.tgz")
    request = json.dumps({"api": "load", "name": PACKAGE, "version": version, "tarball": str(tarball)})
    result = subprocess.run(
        ["node", str(entry)],
        input=f"{request}\n",
        env={
            **{name: value for name, value in os.environ.items() if name != "JSII_RUNTIME_PACKAGE_CACHE"},
            "JSII_RUNTIME_PACKAGE_CACHE_ROOT": str(package_cache),
            "NODE_PRESERVE_SYMLINKS": "1",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    hello, answer = (json.loads(line) for line in result.stdout.splitlines())
    return answer


def _kept(entry: Path) -> dict[str, tuple[int, bytes]]:
    folder = entry.parent.parent / "package-digests"
    return {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in folder.iterdir()} if folder.is_dir() else {}


def test_the_kernel_bundle_has_the_digest_function_the_entry_makes_ask_first():
    # A jsii whose bundle words it otherwise loads packages as before, hashing every tarball again: this says so.
    replaced = re.search(r"^const DIGEST_FUNCTION = '(.+)';$", jsii_direct_kernel.ENTRY.read_text(), re.MULTILINE).group(1)
    (bundle,) = (name for name, path in embedded.EMBEDDED_FILES.items() if path == "lib/program.js")

    assert resources.files(embedded).joinpath(bundle).read_text().count(replaced) == 1


def test_a_loaded_package_keeps_its_digest_and_the_next_process_reads_it(tmp_path, tarball, package_cache):
    entry = installed_entry(tmp_path / "kernel")

    first = _load(entry, tarball, package_cache)
    kept = _kept(entry)
    second = _load(entry, tarball, package_cache)

    assert first == second == {"ok": {"assembly": PACKAGE, "types": first["ok"]["types"]}}
    assert [len(digest) for _, digest in kept.values()] == [32]
    assert _kept(entry) == kept


def test_a_tarball_replaced_by_another_file_has_its_digest_computed_again(tmp_path, tarball, package_cache):
    entry = installed_entry(tmp_path / "kernel")
    copy = tmp_path / tarball.name
    shutil.copyfile(tarball, copy)
    _load(entry, copy, package_cache)
    copy.unlink()
    shutil.copyfile(tarball, copy)

    answer = _load(entry, copy, package_cache)

    assert answer["ok"]["assembly"] == PACKAGE
    # The same bytes, so the same digest, kept once for each file that held them.
    assert len({digest for _, digest in _kept(entry).values()}) == 1
    assert len(_kept(entry)) == 2
