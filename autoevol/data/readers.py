"""Stream the seeds of a data file (`data.formats` reads its rows) under a bad-row policy.

A position ("line") is the one `data.formats` gives a row: it is the line of every error and of
`Seed.source` and, when the row has no id, part of the seed id (`f"{stem}:{position}"`).

A bad row (malformed JSON line, wrong field type, a repeated seed id...) is recoverable:
`iter_seeds(on_bad_row="skip")` yields a `BadRow` for it. A broken file always raises `DataError`,
and so does a file whose rows are all bad: skipping every row would "succeed" with nothing to work
on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from autoevol.config import OnBadRow
from autoevol.data.formats import file_stem, iter_rows
from autoevol.data.records import BadRow, Seed
from autoevol.data.schemas import SeedParser, resolve_schema
from autoevol.errors import DataError


def _bad_row(error: Exception, path: str, line: int) -> BadRow:
    if isinstance(error, DataError):
        return BadRow(str(error), error.path or path, error.line, error.field, error.detail)
    return BadRow(f"{path}:{line}: {error}", path, line, None, str(error))


class SeenIds:
    """The seed ids read so far, for duplicate detection in bounded memory.

    The newest ids sit in a set; every `in_memory` ids they move to a private temporary SQLite
    database (on disk in SQLite's temp directory, deleted when the connection closes), indexed by
    id. Ten million ids then cost a few hundred MB of temporary disk instead of about a GB of RAM,
    and a file small enough to never spill costs nothing extra.
    """

    def __init__(self, in_memory: int = 100_000) -> None:
        self._recent: set[str] = set()
        self._limit = in_memory
        self._db: sqlite3.Connection | None = None

    def __contains__(self, seed_id: str) -> bool:
        if seed_id in self._recent:
            return True
        if self._db is None:
            return False
        return self._db.execute("SELECT 1 FROM seen WHERE id = ?", (seed_id,)).fetchone() is not None

    def add(self, seed_id: str) -> None:
        self._recent.add(seed_id)
        if len(self._recent) >= self._limit:
            self._spill()

    def _spill(self) -> None:
        if self._db is None:
            # "" opens a private on-disk temporary database; it is never shared, so no journal or
            # sync is worth paying for, and one never-committed transaction holds every insert.
            self._db = sqlite3.connect("", check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute("CREATE TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.executemany("INSERT INTO seen VALUES (?)", ((i,) for i in self._recent))
        self._recent.clear()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        self._recent.clear()


def iter_seeds(
    path: str | Path,
    *,
    schema: str = "auto",
    field: str | None = None,
    id_field: str | None = None,
    response_field: str | None = None,
    on_bad_row: OnBadRow = "fail",
    split: str | None = None,
    limit: int | None = None,
    encoding: str | None = None,
) -> Iterator[Seed | BadRow]:
    """Stream the seeds of the first `limit` rows of a data file. With on_bad_row="fail" the first bad
    row raises DataError; with "skip" it is yielded as a `BadRow`, and if every row was bad a
    DataError follows the last one (saying why, with a hint when they all fail alike). Seed ids
    must be unique; a repeat is a bad row."""
    if on_bad_row not in ("fail", "skip"):
        raise ValueError(f"on_bad_row must be 'fail' or 'skip', got {on_bad_row!r}")
    p, path_s = Path(path), str(path)
    stem = file_stem(p, split) if p.exists() else p.stem
    resolve = partial(resolve_schema, schema, field=field, id_field=id_field, response_field=response_field,
                      path=path_s, stem=stem)
    parser: SeedParser | None = None
    seen = SeenIds()
    count = 0
    bad: list[BadRow] = []  # the first bad row, kept for the "no usable rows" message
    kinds: set[str] = set()  # how the bad rows failed, for a hint when they all failed alike
    usable = False
    for line, row in islice(iter_rows(p, split=split, encoding=encoding), limit):
        count += 1
        if isinstance(row, Exception):
            outcome: Seed | Exception = row
        else:
            if parser is None:
                # Resolving is outside the bad-row policy: a wrong --schema/--field is a usage error.
                parser = resolve(row, line=line)
            outcome = _parse(parser, row, line, seen, path_s, id_field)
        if isinstance(outcome, Seed):
            seen.add(outcome.seed_id)
            usable = True
            yield outcome
            continue
        if on_bad_row == "fail":
            raise outcome
        item = _bad_row(outcome, path_s, line)
        if not usable:
            bad = bad or [item]
            kinds.add(_failure_kind(item))
        yield item
    seen.close()  # (a generator closed early drops the set and its connection with its frame)
    if count == 0:
        raise DataError("no rows", path=path_s)
    if not usable:
        raise _no_usable_rows(path_s, count, bad[0], kinds)


def _parse(
    parser: SeedParser, row: Mapping[str, Any], line: int, seen: SeenIds, path: str, id_field: str | None
) -> Seed | DataError:
    """The row's seed, or the DataError that makes it a bad row (a repeated seed id is one)."""
    try:
        seed = parser(row, line)
    except DataError as error:
        return error
    if seed.seed_id in seen:
        return DataError(f"duplicate seed id {seed.seed_id!r}", path=path, line=line, field=id_field or "id")
    return seed


def _failure_kind(bad: BadRow) -> str:
    if bad.error.startswith("not UTF-8 text"):
        return "encoding"
    if bad.error.startswith("missing field") and bad.field:
        return f"missing {bad.field}"
    return "other"


def _no_usable_rows(path: str, count: int, first: BadRow, kinds: set[str]) -> DataError:
    where = f"field {first.field!r}: " if first.field else ""
    message = f"no usable rows (all {count} rows are bad; the first, line {first.line}: {where}{first.error})"
    kind = kinds.pop() if len(kinds) == 1 else "other"
    if kind.startswith("missing "):  # (a not-UTF-8 row's own error already hints at --encoding)
        message += f"; no row has the field {first.field!r}: check --field (or --schema)"
    return DataError(message, path=path)
