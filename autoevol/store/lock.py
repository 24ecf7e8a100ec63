"""One writer per run directory: an exclusive OS lock on `RUN/.lock` for the life of the process.

Two processes writing one run directory mix their rows and manifests. `flock` belongs to the open
file, so the kernel drops it when the process dies, even by kill -9: a crash never leaves a stale
lock to clean up by hand. The holder's PID is written into the file only to name it in the refusal.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from autoevol.errors import RunLockedError

LOCK_NAME = ".lock"


class RunLock:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, run_path: Path) -> RunLock:
        fd = os.open(run_path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"{run_path} is in use by another autoevol process (PID {holder}); "
                "wait for it to finish or stop it, then run the command again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the lock
            self._fd = None
