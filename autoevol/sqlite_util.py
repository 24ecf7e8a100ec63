"""SQLite plumbing shared by every store: a tuned WAL connection and numbered, idempotent migrations.

It stands on the lowest floor (stdlib only) so that both the response cache (`autoevol.llm.cache`)
and the run state (`autoevol.store.run`) can use it without either layer importing the other.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def read_application_id(header: bytes) -> int:
    """The `PRAGMA application_id` stored in a database header (bytes 68-71, big-endian), read without SQLite."""
    return int.from_bytes(header[68:72], "big") if len(header) >= 72 else 0


@contextmanager
def transaction(db: sqlite3.Connection, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    """One explicit transaction on an autocommit connection (`isolation_level=None`, as `connect`
    opens it): committed when the block ends, rolled back when anything leaves it, a cancellation
    or Ctrl-C included. `immediate` takes the write lock at once, for read-then-write blocks that
    another process must not interleave with."""
    db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite3.Connection, migrations: Sequence[Callable[[sqlite3.Connection], None]]) -> None:
    """Apply numbered migrations once each, recorded in `_migrations`.

    One IMMEDIATE transaction around read-then-apply, so processes opening a fresh file at the same
    moment cannot both run the same migration.
    """
    with transaction(db, immediate=True):
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
        done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
        for fn in migrations:
            if fn.__name__ not in done:
                fn(db)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", (fn.__name__, time.time()))


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating its folder) a SQLite file in WAL mode, autocommit, with a 30 s busy wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
    # Switching a fresh file to WAL needs a moment of exclusive access and ignores busy_timeout.
    for attempt in range(200):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == 199:
                raise
            time.sleep(0.05)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=30000")
    return db


class GroupCommit:
    """Write-behind for one store: `request()` asks for `flush` to run once, at the end of the
    current event-loop iteration (`window_s` 0) or `window_s` after the first write not yet
    committed, so every write made meanwhile shares one transaction instead of one each. Outside an
    event loop the flush runs at once; every read of the store flushes first, so reads see all
    writes.

    What a kill -9 can lose is what was written in the iteration, or the window, it interrupted. For
    the response cache that must be an iteration: a lost answer is paid again. For state.db a window
    is enough: a lost unit is redone from the cache for free, and at concurrency 64 an iteration
    hands over one or two finished requests, so a commit per iteration was a commit per unit. A
    failed flush is kept and raised by the store's next call (`raise_pending`), never lost in the
    event loop's exception handler.
    """

    def __init__(self, flush: Callable[[], None], window_s: float = 0.0) -> None:
        self._flush, self._window_s = flush, window_s
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    def request(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()
            return
        # Compared by loop: a flush scheduled on a loop that ended before running it must not block this one.
        if self._scheduled_on is loop:
            return
        self._scheduled_on = loop
        if self._window_s > 0:
            loop.call_later(self._window_s, self._run)
        else:
            loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled_on = None
        try:
            self._flush()
        except Exception as error:
            self._error = error

    def raise_pending(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error
