"""The request cache: one SQLite file (WAL) mapping a request's content hash to its completion.

Key contract (`request_key`): "v1:" + sha256 of the canonical JSON of the backend identity (kind
and base URL or model file) and every field of the `CompletionRequest`, the sample index included,
so k samples of one prompt stay k entries. Secrets and operational knobs (API keys, timeouts,
concurrency) are never part of the key or the row. Bumping the version prefix orphans old rows
instead of serving them under a changed meaning.

Only its own file is ever touched: a new cache is stamped with `APPLICATION_ID` in its SQLite
header, and an existing `cache.db` that is not SQLite, or is someone else's database, is a one-line
CacheError before anything is written to it (no WAL switch, no tables added).

Safe under concurrent writers: every process opens its own connection, WAL lets readers run
beside one writer, and `INSERT OR IGNORE` makes a racing duplicate harmless (both answers are
equally valid for a deterministic key; the first one wins).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from autoevol.errors import CacheError
from autoevol.sqlite_util import SQLITE_HEADER, GroupCommit, connect, migrate, read_application_id, transaction
from autoevol.types import Completion, CompletionRequest, Usage

KEY_VERSION = "v1"


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(backend_identity: str, request: CompletionRequest) -> str:
    payload = canonical_json({"backend": backend_identity, "request": request.canonical()})
    return f"{KEY_VERSION}:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _m001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE responses (
            key TEXT PRIMARY KEY,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            text TEXT NOT NULL,
            finish_reason TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            created_at REAL NOT NULL)"""
    )
    db.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_initial]
#: The SQLite header's application_id of an autoevol cache ("aevc").
APPLICATION_ID = 0x61657663
_OWN_TABLES = {"responses", "counters", "_migrations"}
#: The files SQLite keeps beside the database (WAL, shared memory, rollback journal).
_SIDE_FILES = ("-wal", "-shm", "-journal")
_WHAT_TO_DO = "move it away (or set AUTOEVOL_HOME to another directory) and run the command again"


def check_cache_file(path: Path) -> None:
    """CacheError unless `path` is absent, empty or an autoevol cache. Only reads: a foreign file is left as it was."""
    if not path.exists():
        return
    if not path.is_file():
        raise CacheError(f"{path} is not a file, so it cannot be autoevol's request cache; {_WHAT_TO_DO}")
    with path.open("rb") as handle:
        header = handle.read(100)
    if not header:
        return  # an empty file is an empty SQLite database: ours to create
    if not header.startswith(SQLITE_HEADER):
        raise CacheError(f"{path} is not a SQLite database, so not autoevol's request cache; {_WHAT_TO_DO}")
    app_id = read_application_id(header)
    if app_id == APPLICATION_ID:
        return
    tables: set[str] = set()
    migrations: set[str] = set()
    if app_id == 0:  # caches written before the stamp existed: recognised by their tables
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "_migrations" in tables:
                migrations = {row[0] for row in db.execute("SELECT name FROM _migrations")}
        except sqlite3.DatabaseError as error:
            raise CacheError(f"{path} cannot be read ({error}); {_WHAT_TO_DO}") from None
        finally:
            db.close()
        if not tables or (tables <= _OWN_TABLES and "responses" in tables and _m001_initial.__name__ in migrations):
            return
    shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    raise CacheError(
        f"{path} is another program's SQLite database"
        + (f" (tables: {shown})" if shown else "") + f", not autoevol's request cache; {_WHAT_TO_DO}"
    )


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """SQLite failures of a damaged cache file as one CacheError with what to do."""
    try:
        yield
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
            raise  # contention, not damage
        raise CacheError(
            f"the request cache {path} is damaged ({error}); it holds only cached answers: delete it "
            "(with its -wal/-shm files) or set AUTOEVOL_HOME to another directory, and run the command again"
        ) from None


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    hits: int
    misses: int
    prompt_tokens: int
    completion_tokens: int
    tokens_saved: int
    size_bytes: int
    path: str

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


class ResponseCache:
    """Answers are written behind (`GroupCommit`): every answer stored during one event-loop
    iteration goes into one transaction, committed before the loop does anything else (an answer
    lost to a kill is paid again, so no longer), and a lookup sees answers not yet committed.
    Hit/miss counters are kept in memory and written every FLUSH_EVERY lookups and on
    stats()/close(): statistics must not cost a write per request."""

    FLUSH_EVERY = 256

    def __init__(self, path: Path) -> None:
        self.path = path
        check_cache_file(path)
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._unwritten: dict[str, tuple[str, str, str, str, str, int, int, float]] = {}
        self._lookups = 0
        self._commit = GroupCommit(self._flush_answers)
        with _readable(path):
            self._db = connect(path)
            migrate(self._db, MIGRATIONS)
            if self._db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def get(self, key: str) -> Completion | None:
        self._commit.raise_pending()
        with self._lock, _readable(self.path):
            row: tuple[str, str, int, int, str] | None = self._db.execute(
                "SELECT text, finish_reason, prompt_tokens, completion_tokens, model FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
            # Not committed yet? (A committed row comes first: like INSERT OR IGNORE, the first answer wins.)
            unwritten = self._unwritten.get(key) if row is None else None
            if unwritten is not None:
                row = (unwritten[3], unwritten[4], unwritten[5], unwritten[6], unwritten[2])
            if row is None:
                self._bump(("misses", 1))
            else:
                self._bump(("hits", 1), ("tokens_saved", row[2] + row[3]))
            self._lookups += 1
            if self._lookups % self.FLUSH_EVERY == 0:
                self._flush()
        if row is None:
            return None
        text, finish, prompt, completion, model = row
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion)
        return Completion(text=text, finish_reason=finish, usage=usage, cached=True, model=model)

    def put(self, key: str, backend: str, completion: Completion) -> None:
        self._commit.raise_pending()
        usage = completion.usage
        with self._lock:
            # The first answer wins, as with INSERT OR IGNORE.
            self._unwritten.setdefault(key, (
                key, backend, completion.model, completion.text, completion.finish_reason,
                usage.prompt_tokens, usage.completion_tokens, time.time()))
        self._commit.request()

    def _flush_answers(self) -> None:
        with self._lock, _readable(self.path):
            self._flush(counters=False)

    def _bump(self, *deltas: tuple[str, int]) -> None:
        for name, delta in deltas:
            self._pending[name] = self._pending.get(name, 0) + delta

    def _write_counters(self) -> None:
        for name, delta in self._pending.items():
            self._db.execute(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                (name, delta, delta),
            )
        self._pending.clear()

    def _flush(self, *, counters: bool = True) -> None:
        """Commit unwritten answers, and the counters unless told not to, in one transaction (the
        caller holds the lock). The grouped answer commit leaves the counters for later: at
        concurrency 64 it runs once or twice per request, and they are only statistics."""
        if not self._unwritten and not (counters and self._pending):
            return
        rows, self._unwritten = list(self._unwritten.values()), {}
        with transaction(self._db):
            self._db.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            if counters:
                self._write_counters()

    def stats(self) -> CacheStats:
        with self._lock, _readable(self.path):
            self._flush()
            entries, prompt, completion = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0)"
                " FROM responses"
            ).fetchone()
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        # Only the database and SQLite's own side files: not `cache.db.bak` or anything else beside it.
        files = [self.path, *(self.path.with_name(self.path.name + side) for side in _SIDE_FILES)]
        size = sum(p.stat().st_size for p in files if p.is_file())
        return CacheStats(
            entries=entries, hits=counters.get("hits", 0), misses=counters.get("misses", 0),
            prompt_tokens=prompt, completion_tokens=completion,
            tokens_saved=counters.get("tokens_saved", 0), size_bytes=size, path=str(self.path),
        )

    def clear(self) -> int:
        with self._lock, _readable(self.path):
            self._pending.clear()
            self._unwritten.clear()
            removed = self._db.execute("DELETE FROM responses").rowcount
            self._db.execute("DELETE FROM counters")
            self._db.execute("VACUUM")
        return removed

    def close(self) -> None:
        with self._lock:
            try:
                self._commit.raise_pending()
                with _readable(self.path):
                    self._flush()
            finally:
                self._db.close()
