"""SQLite plumbing shared by every store: a tuned WAL connection and numbered, idempotent migrations.

It stands on the lowest floor (stdlib only) so that both the response cache (`autoevol.llm.cache`)
and the run state (`autoevol.store.run`) can use it without either layer importing the other.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def read_application_id(header: bytes) -> int:
    """The `PRAGMA application_id` stored in a database header (bytes 68-71, big-endian), read without SQLite."""
    return int.from_bytes(header[68:72], "big") if len(header) >= 72 else 0


def migrate(db: sqlite3.Connection, migrations: Sequence[Callable[[sqlite3.Connection], None]]) -> None:
    """Apply numbered migrations once each, recorded in `_migrations`.

    One IMMEDIATE transaction around read-then-apply, so processes opening a fresh file at the same
    moment cannot both run the same migration.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
        done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
        for fn in migrations:
            if fn.__name__ not in done:
                fn(db)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", (fn.__name__, time.time()))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


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
