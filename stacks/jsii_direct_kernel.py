"""aws-cdk-lib's node process without jsii's relay process in between, for the app's synth.

jsii starts its kernel through a launcher (``jsii-runtime.js``) that starts the kernel as a second node process
and relays every request and every response between Python and it. A synth makes thousands of calls into
aws-cdk-lib, each a round trip: the relay adds a process's work and two more pipe hops to every one (about a
tenth of a one-environment synth's CPU time, and more of its wall time on a busy machine). ``jsii_direct_kernel.js``
starts the same kernel, the one installed with jsii, in the first process, answering on its stdin and stdout,
and passes on what the kernel prints as the launcher does: Python sees the same protocol and the same output
(less the launcher's own banner about node versions, which the Makefile silences anyway), and the synth the
same templates. The kernel keeps what it would otherwise redo in every process beside its files: the code V8
compiled, and the digests of the package tarballs it loads.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

ENTRY = Path(__file__).with_name("jsii_direct_kernel.js")
# jsii's Python side starts node with JSII_RUNTIME as the script when it is set, its launcher otherwise.
RUNTIME_VARIABLE = "JSII_RUNTIME"
# Set to 1, the app starts aws-cdk-lib's node process through jsii's own launcher (docs: troubleshooting).
LAUNCHER_VARIABLE = "MLOPS_JSII_LAUNCHER"
# Read by node at start: module resolution keeps the symbolic links the kernel makes (see the entry script).
PRESERVE_SYMLINKS_VARIABLE = "NODE_PRESERVE_SYMLINKS"


@contextlib.contextmanager
def direct_kernel(cache: Path) -> Iterator[None]:
    """Within the block, the kernel jsii starts (at the first import of aws-cdk-lib) answers Python directly.

    A kernel already running stays as it is, as does a JSII_RUNTIME set outside; with MLOPS_JSII_LAUNCHER=1,
    and outside POSIX systems, jsii starts its launcher as usual. The environment is restored at the
    end of the block, so that no later process sees the kernel's settings.
    """
    if os.name != "posix" or RUNTIME_VARIABLE in os.environ or os.environ.get(LAUNCHER_VARIABLE) == "1":
        yield
        return
    settings = {RUNTIME_VARIABLE: str(installed_entry(cache)), PRESERVE_SYMLINKS_VARIABLE: "1"}
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def installed_entry(cache: Path) -> Path:
    """The entry script beside the kernel's own files (as jsii's launcher finds them), under `cache`: written
    once for each jsii version and entry script, then reused. Writing them removes what earlier versions
    left there (with their code caches)."""
    import jsii._embedded.jsii as embedded
    from jsii.__meta__ import __jsii_runtime_version__

    source = ENTRY.read_bytes()
    folder = cache / f"{__jsii_runtime_version__}-{hashlib.sha256(source).hexdigest()[:16]}"
    entry = folder / "bin" / ENTRY.name
    if entry.is_file():
        return entry
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=".staging-"))
    for resource, name in embedded.EMBEDDED_FILES.items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(resources.files(embedded).joinpath(resource).read_bytes())
    (staging / "bin" / ENTRY.name).write_bytes(source)
    try:
        # Whole or not at all: a synth running beside this one may have put the same files there first.
        staging.rename(folder)
    except OSError:
        shutil.rmtree(staging)
        if not entry.is_file():
            raise
    for earlier in cache.iterdir():
        if earlier != folder and not earlier.name.startswith(".staging-"):
            shutil.rmtree(earlier, ignore_errors=True)
    return entry
