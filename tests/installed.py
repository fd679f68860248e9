"""What is installed, digested: the key of a cache whose contents depend on installed packages' code.

A distribution's RECORD lists every file it installed with that file's hash, so digesting the RECORDs of a
package and of everything it requires identifies the code that can run when it is used.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
import shutil
import subprocess
import sys

from packaging.requirements import Requirement


def with_requirements(*names: str) -> list[importlib.metadata.Distribution]:
    """The distributions `names` and every distribution they require, directly or not (extras left out),
    each once."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        try:
            distribution = importlib.metadata.distribution(pending.pop())
        except importlib.metadata.PackageNotFoundError:
            continue
        key = distribution.metadata["Name"].lower().replace("_", "-")
        if key in found:
            continue
        found[key] = distribution
        for requirement in map(Requirement, distribution.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return [found[key] for key in sorted(found)]


def code_digest(*names: str) -> hashlib._Hash:
    """A running digest of the Python version and of the installed files of `names` and all they require."""
    digest = hashlib.sha256(f"python {platform.python_version()}\0".encode())
    for distribution in with_requirements(*names):
        digest.update(f"{distribution.metadata['Name']} {distribution.version}\0".encode())
        digest.update((distribution.read_text("RECORD") or "").encode() + b"\0")
    return digest


@functools.cache
def node_identity() -> str:
    """The node that `node` runs here, by its path and the version it reports: what a kept result computed by
    node (the synths, the IAM simulator's decisions, the direct kernel's runs) depends on besides packages."""
    node = shutil.which("node")
    if node is None:
        return "no node"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return f"node {node} {version}"


def one_version_later(monkeypatch, name: str) -> None:
    """Make `with_requirements` report the installed distribution `name` one version later (for tests of what
    a cache keys on): the installed files are the same, only the version read differs."""
    installed = with_requirements

    def with_newer(*names: str) -> list[importlib.metadata.Distribution]:
        found = installed(*names)
        (current,) = [d for d in found if d.metadata["Name"] == name]
        newer = type("Newer", (), {"metadata": current.metadata, "version": current.version + ".1", "read_text": current.read_text})()
        return [newer if d is current else d for d in found]

    monkeypatch.setattr(sys.modules[__name__], "with_requirements", with_newer)
