"""Where a run's seeds come from: the file, how to read it and what to do with bad rows.

`DataSource` owns reading: `rows()` / `seeds()` stream the records with `limit` applied (one rule:
the first `limit` rows, bad rows included), `count()` says how many rows a phase will see.

`identity()` is what goes into a run's configuration hash: the bytes of the data (sha256) and
the options that decide how they are read, not the path or the file's timestamps. A `touch`, a
`git checkout` or a copy to another machine resumes; an edited file refuses to resume instead of
silently mixing two datasets. `describe()` adds the path, for the manifest and reports.

Hashing reads the whole file once per process (1 MiB at a time; for JSON lines the same pass counts
the rows). Results are remembered per file state (size, mtime, inode), so the estimate, the
manifest and every phase of one `autoevol run` share a single pass.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoevol.config import DataOptions, OnBadRow
from autoevol.data.formats import count_rows, is_json_lines, iter_rows
from autoevol.data.readers import iter_seeds
from autoevol.data.records import BadRow, Seed
from autoevol.data.schemas import detected_schema
from autoevol.errors import ConfigError, DataError

_CHUNK = 1 << 20  # bytes hashed per read


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The content identity of a data file or directory."""

    sha256: str
    size: int
    #: Non-blank lines of a JSON-lines file, counted in the hashing pass; None for other formats.
    lines: int | None = None


# Per process, keyed by (resolved path, file state): one hash and one count per file version.
_FINGERPRINTS: dict[tuple[str, tuple[Any, ...]], Fingerprint] = {}
_COUNTS: dict[tuple[str, tuple[Any, ...], str | None], int] = {}
_DETECTED: dict[tuple[Any, ...], dict[str, Any]] = {}


@dataclass(frozen=True, slots=True)
class DataSource:
    path: Path
    schema: str = "auto"
    field: str | None = None
    id_field: str | None = None
    on_bad_row: OnBadRow = "fail"
    limit: int | None = None
    #: Text encoding of a JSON or CSV file; None reads UTF-8 (with or without a BOM).
    encoding: str | None = None
    #: The split of a saved Hugging Face DatasetDict; None reads "train" (or the only split).
    split: str | None = None

    def __post_init__(self) -> None:
        if self.on_bad_row not in ("fail", "skip"):
            raise ConfigError(f"on_bad_row must be 'fail' or 'skip', got {self.on_bad_row!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}")

    def rows(self) -> Iterator[Seed | BadRow]:
        """The first `limit` rows as Seeds, or BadRows under on_bad_row="skip" ("fail" raises DataError)."""
        # The limit is applied inside iter_seeds, so its "every row was bad" check sees the same rows.
        return iter_seeds(self.path, schema=self.schema, field=self.field, id_field=self.id_field,
                          on_bad_row=self.on_bad_row, limit=self.limit, encoding=self.encoding, split=self.split)

    def seeds(self) -> Iterator[Seed]:
        """The readable seeds among `rows()` (so `limit` counts bad rows too, as in every phase)."""
        return (item for item in self.rows() if isinstance(item, Seed))

    def count(self) -> int:
        """How many rows `rows()` yields, bad rows included; read from metadata where the format has it."""
        key = (*_state_key(self.path), self.split)  # a DatasetDict's splits differ in length
        total = _COUNTS.get(key)
        if total is None:
            # The hashing pass counts LF bytes, which is a row count only for the default UTF-8.
            plain = is_json_lines(self.path) and self.encoding is None
            lines = self.fingerprint().lines if plain else None
            total = lines if lines is not None else count_rows(self.path, encoding=self.encoding, split=self.split)
            _COUNTS[key] = total
        return min(total, self.limit) if self.limit is not None else total

    def detected(self) -> dict[str, Any]:
        """The schema and instruction field the rows are read with (from the first readable row),
        and whether they were detected ("auto") or given; printed before and recorded in every run."""
        key = (*_state_key(self.path), self.split, self.encoding, self.schema, self.field)
        found = _DETECTED.get(key)
        if found is None:  # the header and the manifest of one run share a single look at the first row
            schema, field = "", None
            for _, row in iter_rows(self.path, split=self.split, encoding=self.encoding):
                if isinstance(row, dict):
                    schema, field = detected_schema(self.schema, row, self.field)
                    break
            how = "detected" if self.schema == "auto" and self.field is None else "given"
            found = _DETECTED[key] = {"schema": schema or None, "field": field, "how": how}
        return dict(found)

    def fingerprint(self) -> Fingerprint:
        """sha256 and size of the data's bytes (for a directory: of its files' relative paths and bytes)."""
        key = _state_key(self.path)
        found = _FINGERPRINTS.get(key)
        if found is None:
            found = _hash_dir(self.path) if self.path.is_dir() else _hash_file(self.path)
            _FINGERPRINTS[key] = found
        return found

    def identity(self) -> dict[str, Any]:
        """What a run's configuration hash covers: the content and how it is read, never where it lies."""
        found = self.fingerprint()
        identity = {"schema": self.schema, "field": self.field, "id_field": self.id_field,
                    "on_bad_row": self.on_bad_row, "limit": self.limit, "size": found.size, "sha256": found.sha256}
        # Only when given: runs started before --encoding existed keep their configuration hash.
        # Row numbers of arrays, Parquet and HF datasets became 1-based (as file lines are): a run
        # whose unnamed rows got 0-based ids must not resume under shifted ids.
        rows_from = None if is_json_lines(self.path) or self.path.suffix == ".csv" else 1
        optional = {"encoding": self.encoding, "split": self.split, "rows_from": rows_from}
        return identity | {name: value for name, value in optional.items() if value is not None}

    def describe(self) -> dict[str, Any]:
        """The manifest form: `identity()` plus the absolute path (`autoevol resume` reopens it)."""
        return {"path": str(self.path.resolve()), **self.identity()}


def _state_key(path: Path) -> tuple[str, tuple[Any, ...]]:
    """The path plus what changes when its bytes do: a rewritten file gets a new hash and count."""
    state: tuple[Any, ...]
    try:
        if path.is_dir():
            state = tuple((str(p), s.st_size, s.st_mtime_ns, s.st_ino) for p, s in _dir_files(path))
        else:
            s = path.stat()
            state = (s.st_size, s.st_mtime_ns, s.st_ino, s.st_dev)
    except OSError as error:
        raise DataError(f"cannot read ({error.strerror or error})", path=str(path)) from None
    return str(path.resolve()), state


def _dir_files(root: Path) -> list[tuple[str, os.stat_result]]:
    """Every regular file under `root` as (relative POSIX path, stat), in a stable order."""
    found = [(p.relative_to(root).as_posix(), p.stat()) for p in root.rglob("*") if p.is_file()]
    return sorted(found, key=lambda item: item[0])


def _hash_file(path: Path) -> Fingerprint:
    digest = hashlib.sha256()
    lines = _update(digest, path, count_lines=is_json_lines(path))
    return Fingerprint(digest.hexdigest(), path.stat().st_size, lines)


def _hash_dir(root: Path) -> Fingerprint:
    digest = hashlib.sha256()
    size = 0
    for rel, stat in _dir_files(root):
        # Name and length first, so moving bytes from one file to the next changes the hash.
        digest.update(f"{rel}\0{stat.st_size}\0".encode())
        _update(digest, root / rel, count_lines=False)
        size += stat.st_size
    return Fingerprint(digest.hexdigest(), size)


def _update(digest: Any, path: Path, *, count_lines: bool) -> int | None:
    """Feed the file's bytes to `digest`; with count_lines, count its non-blank lines on the way."""
    lines, pending = 0, False  # pending: the line cut by the chunk boundary has content so far
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                if not count_lines:
                    continue
                parts = chunk.split(b"\n")
                for part in parts[:-1]:
                    # Same rule as the JSONL reader: a line of whitespace only is not a row.
                    lines += pending or bool(part.strip())
                    pending = False
                pending = pending or bool(parts[-1].strip())
    except OSError as error:
        raise DataError(f"cannot read ({error.strerror or error})", path=str(path)) from None
    return lines + pending if count_lines else None


def source_from_options(data: str | os.PathLike[str], options: DataOptions) -> DataSource:
    """The `DataSource` every entry reads: `options` as the command line, `--config` or a notebook gave them.

    `hf:NAME` becomes a local copy of its split first: the run hashes, resumes and re-reads a file
    like any other (so the copy's source keeps no split of its own).
    """
    from autoevol.data.hub import is_hub_name, local_copy

    path, split = Path(data), options.split
    if is_hub_name(str(data)):
        path, split = local_copy(str(data), split), None
    return DataSource(path, schema=options.schema_, field=options.field, id_field=options.id_field,
                      on_bad_row=options.on_bad_row, limit=options.limit, encoding=options.encoding, split=split)
