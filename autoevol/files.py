"""Durable small files: an atomic text writer and the fsync of a directory after a rename.

Stdlib only, on the ground floor, so every layer that finishes a file (the run store, the phases,
the report, the Hub copy) can use it without importing the dataset writers.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from autoevol.errors import StorageError


def fsync_dir(directory: Path) -> None:
    """Make a rename durable; not every platform lets a directory be opened, so best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` via a temporary file + fsync + os.replace: readers see old or new, never half.

    The temporary name is unique (`.NAME.<random>.tmp` in the same directory, created exclusively), so
    two writers of one file never share, remove or rename each other's temporary file: the last
    replace wins whole. An OS failure is a StorageError naming the file and what to do.
    """
    p = Path(path)
    tmp: Path | None = None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = exclusive_temp(p)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        tmp = None
    except OSError as error:
        raise StorageError(
            f"cannot write {p}: {error.strerror or error}; free some space or fix the permissions, then run the "
            "same command again"
        ) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    fsync_dir(p.parent)


def exclusive_temp(target: Path) -> tuple[int, Path]:
    """A new file beside `target` that nobody else can have opened (O_EXCL); mode follows the umask like open()."""
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue  # 48 random bits collided: draw again
