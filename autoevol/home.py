"""Where autoevol keeps its state: one directory, movable with AUTOEVOL_HOME."""

from __future__ import annotations

import os
from pathlib import Path


def autoevol_home() -> Path:
    root = os.environ.get("AUTOEVOL_HOME")
    path = Path(root).expanduser() if root else Path.home() / ".autoevol"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_path() -> Path:
    return autoevol_home() / "cache.db"
