"""Synths kept by what they are made from, so that a synth already made is read instead of made again.

A synth is a function of the repository's code, the config it reads, the environments it builds and the
installed toolchain. A test run synthesizes some twenty variants of the app, and a second run with nothing
changed would make each again for a minute of CPU: a synth made from the same inputs is copied from here.

The key digests:
- every file of the repository a synth may read: everything but the tests, the docs, the top level's
  Markdown and what tools and runs leave (a top-level name starting with a dot, cdk.out, site,
  node_modules, bytecode); of the tests, the synth procedure itself (tests/synth.py) and the conftest that
  makes AWS unreachable during a synth;
- every file of the config folder and of the pipeline package, wherever they are;
- the environments synthesized;
- the installed code of everything requirements.txt and requirements-sdk.txt name, with all they require.

Only what asks for it is kept (`reuse=True` on `tests.synth.synthesize`): the fixtures that synthesize the
code as it is. A test that changes the code under the synth (a monkeypatched function) synthesizes anew.
Only a synth that succeeded is kept; one that failed is made again, and fails again, each time. Kept synths
live in `.cache/synth/<repository and toolchain digest>/<config and environments digest>/`; a run keeps the
folders of the newest KEPT_STATES repository states and removes the others, so edits do not pile up.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
from pathlib import Path

from pipeline_code import render
from tests import installed

ROOT = Path(__file__).resolve().parent.parent
KEPT = ROOT / ".cache" / "synth"
# Repository states kept: the one a run synthesizes and the one before, for a branch switched back and forth.
KEPT_STATES = 2
# The pipeline package is digested on its own (see `key`).
_NOT_READ_BY_SYNTH = {"tests", "docs", "site", "cdk.out", "node_modules", "__pycache__", "pipeline_code"}
_SYNTH_PROCEDURE = ("tests/synth.py", "tests/conftest.py")
_REQUIREMENTS = (ROOT / "requirements.txt", ROOT / "requirements-sdk.txt")
# The folder of a repository state's kept assets (see `_keep_file`); no kept synth's key starts with a dot.
ASSETS = ".assets"


def _digest_files(digest: hashlib._Hash, root: Path, paths: list[Path]) -> None:
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")


def _repository_files() -> list[Path]:
    """Below the top level, everything but bytecode: an asset folder bundles whatever it holds."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        top = Path(folder) == ROOT
        subfolders[:] = [name for name in subfolders if name not in _NOT_READ_BY_SYNTH and not (top and name.startswith("."))]
        found += [Path(folder) / name for name in files if not name.endswith(".pyc") and not (top and (name.startswith(".") or name.endswith(".md")))]
    return found


@functools.cache
def _toolchain() -> str:
    names = [
        re.split(r"[=<>~!\[ ;]", line.strip())[0]
        for requirements in _REQUIREMENTS
        for line in requirements.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    digest = installed.code_digest(*names)
    digest.update(installed.node_identity().encode())
    return digest.hexdigest()


@functools.cache
def repository_state() -> str:
    """The digest of the repository's files a synth reads and of the toolchain: once per test process."""
    digest = hashlib.sha256(_toolchain().encode())
    _digest_files(digest, ROOT, [*_repository_files(), *(ROOT / path for path in _SYNTH_PROCEDURE)])
    return digest.hexdigest()[:32]


def key(config_dir: Path, environments: tuple[str, ...]) -> str:
    """Where the synth of `environments` from `config_dir` is kept (relative to KEPT). The pipeline package
    is digested where rendering reads it now, which a test may point at a copy it edits."""
    digest = hashlib.sha256(" ".join(environments).encode() + b"\0")
    _digest_files(digest, config_dir, _files(config_dir))
    _digest_files(digest, render.PACKAGE_DIR, _files(render.PACKAGE_DIR))
    return f"{repository_state()}/{digest.hexdigest()[:32]}"


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and "__pycache__" not in path.parts]


def restore(kept_as: str, outdir: Path) -> bool:
    """Copy the synth kept as `kept_as` into `outdir`; False when none is kept."""
    kept = KEPT / kept_as
    if not kept.is_dir():
        return False
    shutil.rmtree(outdir, ignore_errors=True)
    shutil.copytree(kept, outdir, copy_function=functools.partial(_link_or_copy, kept))
    # The state in use is the newest, whenever it was made.
    os.utime(kept.parent)
    return True


def keep(kept_as: str, outdir: Path) -> None:
    """Keep the synth in `outdir` as `kept_as`, unless another process kept one first; then remove the folders
    of all but the newest KEPT_STATES repository states."""
    kept = KEPT / kept_as
    kept.parent.mkdir(parents=True, exist_ok=True)
    # Made aside and renamed into place, so that no process ever reads half a synth.
    partial = kept.parent / f".{kept.name}.{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(outdir, partial, copy_function=functools.partial(_keep_file, outdir, kept.parent / ASSETS))
    try:
        partial.rename(kept)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    states = sorted((folder for folder in KEPT.iterdir() if folder.is_dir()), key=lambda folder: folder.stat().st_mtime, reverse=True)
    for stale in states[KEPT_STATES:]:
        if stale != kept.parent:
            shutil.rmtree(stale, ignore_errors=True)


def _keep_file(outdir: Path, assets: Path, source: str, destination: str) -> str:
    """An asset is kept once per repository state, in `assets`, however many synths hold it: each kept synth
    links to that copy (the AWS CLI layer alone is 21 MB)."""
    relative = Path(source).relative_to(outdir)
    if _is_asset(relative):
        shared = assets / relative
        if not shared.exists():
            shared.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.link(source, shared)
        with contextlib.suppress(OSError):
            os.link(shared, destination)
            return destination
    return shutil.copy2(source, destination)


def _link_or_copy(kept: Path, source: str, destination: str) -> str:
    """Assets are named by the digest of their content and never written after a synth: linked, not copied.
    Templates and manifests are copied, since a test may edit its copy."""
    if _is_asset(Path(source).relative_to(kept)):
        with contextlib.suppress(OSError):
            os.link(source, destination)
            return destination
    return shutil.copy2(source, destination)


def _is_asset(relative: Path) -> bool:
    return relative.parts[0].startswith("asset.")
