"""Folders built once per test session and read by every process of it.

Each xdist worker is a process of its own, so a session-scoped fixture runs once per worker: every worker
synthesized every environment itself. A folder built here is built by the first process of the session
that asks for it, under a file lock; the others wait for the lock and read what it left. The folders live
in a temporary folder of the session, so parallel sessions never share one and nothing outlives pytest's
own clean-up of old temporary folders.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Callable
from pathlib import Path


class SharedBuilds:
    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, name: str, build: Callable[[Path], object]) -> Path:
        """The folder `build` fills, built now unless a process of this session has built it already.

        A build that raised is not kept: the next process that asks builds again, and meets the same error.
        """
        folder, built = self.root / name, self.root / f"{name}.built"
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not built.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                build(folder)
                built.touch()
        return folder
