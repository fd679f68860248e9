"""What the suite keeps between runs in `.cache/`, under a digest of everything besides its own input that
decides it (a toolchain's installed files, a script, settings): cfn-lint's findings, the IAM simulator's
decisions, moto's parsed state machine programs. The helpers every such cache shares."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path


def digest_files(digest: hashlib._Hash, paths: list[Path]) -> None:
    """Add each file of `paths` to `digest` by its path and bytes; a file that does not exist counts as such."""
    for path in paths:
        digest.update(str(path).encode() + b"\0" + (path.read_bytes() if path.is_file() else b"(none)") + b"\0")


def folder_for(root: Path, digest: str) -> Path:
    """`root/<digest>`, the folder of what is kept for this digest; the folders kept for any other are removed.
    The folder itself is not made here."""
    folder = root / digest
    if not folder.is_dir() and root.is_dir():
        # Never this digest's folder: another process of the session may be filling it already.
        for other in root.iterdir():
            if other.name != folder.name:
                shutil.rmtree(other, ignore_errors=True)
    return folder


def write_atomically(path: Path, data: bytes) -> None:
    """Another process, or thread, reading `path` sees all of `data` or no file."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    partial.write_bytes(data)
    partial.replace(path)
