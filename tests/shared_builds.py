"""Folders built once per test session and read by every process of it.

Each xdist worker is a process of its own, so a session-scoped fixture runs once per worker: every worker
synthesized every environment itself. A folder built here is built by the first process of the session
that asks for it, under a file lock; the others wait for the lock and read what it left. The folders live
in a temporary folder of the session, so parallel sessions never share one and nothing outlives pytest's
own clean-up of old temporary folders.

Waiting for a lock is a worker doing nothing: on two cores, one worker synthesized the app while the other
waited for it, then each waited for the other's next synth. So a process that asks for its first folder
first builds every folder the session's tests will need (`expect()`) that no other process is building, in
the order given, skipping those whose lock another process holds; then it waits only for what is left.
Both workers synthesize from the start, each something different.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Callable
from pathlib import Path


class SharedBuilds:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._expected: list[tuple[str, Callable[[Path], object]]] = []
        self._prebuilt = False

    def expect(self, builds: list[tuple[str, Callable[[Path], object]]]) -> None:
        """The folders (name, build) this process's session will ask for, most wanted first."""
        self._expected = list(builds)

    def folder(self, name: str, build: Callable[[Path], object]) -> Path:
        """The folder `build` fills, built now unless a process of this session has built it already.

        A build that raised is not kept: the next process that asks builds again, and meets the same error.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        if not self._prebuilt:
            self._prebuilt = True
            for expected, expected_build in self._expected:
                # A build that fails here is left unbuilt: the fixture that reads it builds it again and
                # fails with the error, in the test that needs it.
                with contextlib.suppress(Exception):
                    self._build(expected, expected_build, wait=False)
        self._build(name, build, wait=True)
        return self.root / name

    def _build(self, name: str, build: Callable[[Path], object], *, wait: bool) -> None:
        folder, built = self.root / name, self.root / f"{name}.built"
        if built.exists():
            return
        with open(self.root / f"{name}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            if not built.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                build(folder)
                built.touch()
