"""Where a run's seeds come from: the file, how to read it and what to do with bad rows.

`describe()` is what goes into a run's manifest (and its configuration hash): an edited data file
refuses to resume instead of silently mixing two datasets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoevol.config import OnBadRow
from autoevol.errors import ConfigError


@dataclass(frozen=True, slots=True)
class DataSource:
    path: Path
    schema: str = "auto"
    field: str | None = None
    id_field: str | None = None
    on_bad_row: OnBadRow = "fail"
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.on_bad_row not in ("fail", "skip"):
            raise ConfigError(f"on_bad_row must be 'fail' or 'skip', got {self.on_bad_row!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}")

    def describe(self) -> dict[str, Any]:
        stat = self.path.stat() if self.path.is_file() else None
        # Absolute: `autoevol resume RUN` and a rerun from another directory must find the same file.
        return {
            "path": str(self.path.resolve()), "schema": self.schema, "field": self.field, "id_field": self.id_field,
            "on_bad_row": self.on_bad_row, "limit": self.limit,
            "size": stat.st_size if stat else None, "mtime_ns": stat.st_mtime_ns if stat else None,
        }
