"""Where autoevol keeps its state: one directory, movable with AUTOEVOL_HOME."""

from __future__ import annotations

import os
from pathlib import Path

from autoevol.errors import ConfigError


def autoevol_home() -> Path:
    root = os.environ.get("AUTOEVOL_HOME")
    path = Path(root).expanduser() if root else Path.home() / ".autoevol"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        where = "AUTOEVOL_HOME" if root else "the default state directory"
        raise ConfigError(
            f"{where} {path} cannot be used as a directory ({error.strerror}); point AUTOEVOL_HOME at a writable "
            "directory"
        ) from None
    return path


def cache_path() -> Path:
    return autoevol_home() / "cache.db"
