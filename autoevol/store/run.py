"""The run directory: everything one `autoevol` run knows, in one place.

    RUN/manifest.json   what the run is (store/manifest.py): configuration, its hash, status (no secrets)
    RUN/state.db        finished work units keyed by content, plus small key/value state (SQLite, WAL)
    RUN/events.jsonl    the event stream for machines (one JSON object per line)
    RUN/output/         final files, written atomically from state.db

A unit's key names what determines its result (phase, method id, seed id, round...), so a resumed
run skips finished units and a changed method never reuses a stale one. Final outputs are always
rebuilt from state.db in input order, which is why an interrupted-then-resumed run writes the same
bytes as an uninterrupted one. A changed configuration refuses to resume: the manifest's hash must
match, unless the directory holds nothing computed yet (then the new configuration starts over).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from autoevol.errors import ConfigError, ResumeMismatchError
from autoevol.files import atomic_write_text
from autoevol.sqlite_util import GroupCommit, connect, migrate, transaction
from autoevol.store.lock import RunLock
from autoevol.store.manifest import SCHEMA_VERSION as SCHEMA_VERSION
from autoevol.store.manifest import Manifest

#: Bound parameters per `IN (...)` query: under SQLite's historical limit of 999.
_KEYS_PER_QUERY = 500


def _m001_units(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE units (
            key TEXT PRIMARY KEY,
            phase TEXT NOT NULL,
            round INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            payload TEXT NOT NULL,
            created_at REAL NOT NULL)"""
    )
    db.execute("CREATE INDEX units_order ON units (phase, round, seq)")
    db.execute("CREATE TABLE kv (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


MIGRATIONS = [_m001_units]


class StateDB:
    """Finished units and key/value state. Unit writes are grouped (`GroupCommit`): every unit
    stored within one commit window (`COMMIT_WINDOW_S`) goes into one transaction; every read
    commits what is pending first, so reads see all writes."""

    #: A unit a kill -9 loses is redone from the response cache without a call, so its commit can
    #: wait for company: at concurrency 64 an event-loop iteration holds one or two units.
    COMMIT_WINDOW_S = 0.02

    def __init__(self, path: Path) -> None:
        try:
            db = connect(path)
            migrate(db, MIGRATIONS)
        except sqlite3.DatabaseError as error:
            raise ResumeMismatchError(
                f"{path} is not a readable autoevol state database ({error}); the run cannot be resumed: "
                "use a new --out, or --overwrite to start this one afresh"
            ) from None
        self._attach(db, path, writable=True)

    @classmethod
    def read_only(cls, path: Path) -> StateDB:
        """The state of a run for readers (the report): no migration, no WAL switch, no write, so it
        opens beside a run that is still writing, and a copy on a read-only disk. The file must
        exist; a damaged one raises `sqlite3.DatabaseError` (at the latest, at the first read)."""
        # A URI, because only a URI can say mode=ro; as_uri quotes a path holding "?", "#" or "%".
        uri = path.resolve().as_uri()
        db = _connect_read_only(f"{uri}?mode=ro")
        try:
            db.execute("PRAGMA schema_version").fetchone()
        except sqlite3.OperationalError:
            db.close()
            if os.access(path.parent, os.W_OK):
                raise
            # Even to read, a WAL database needs its index file (-shm), which SQLite cannot create on a
            # read-only disk. Nothing can write there either, so the file is read as it stands.
            db = _connect_read_only(f"{uri}?mode=ro&immutable=1")
        state = cls.__new__(cls)
        state._attach(db, path, writable=False)
        return state

    def _attach(self, db: sqlite3.Connection, path: Path, *, writable: bool) -> None:
        self._db, self._path, self._writable = db, path, writable
        self._pending: list[tuple[str, str, int, int, str, float]] = []
        self._commit = GroupCommit(self.flush, self.COMMIT_WINDOW_S)

    def _check_writable(self) -> None:
        if not self._writable:
            raise PermissionError(f"{self._path} was opened read-only (StateDB.read_only)")

    def put(self, key: str, *, phase: str, round: int, seq: int, payload: dict[str, Any]) -> None:
        self._check_writable()
        self._commit.raise_pending()
        self._pending.append((key, phase, round, seq, json.dumps(payload, ensure_ascii=False), time.time()))
        self._commit.request()

    def flush(self) -> None:
        """Commit the units stored so far (the event loop does this by itself once the window ends)."""
        self._commit.raise_pending()
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        # Explicitly one transaction: the connection autocommits, which would be one per row.
        with transaction(self._db):
            self._db.executemany("INSERT OR REPLACE INTO units VALUES (?, ?, ?, ?, ?, ?)", rows)

    def get(self, key: str) -> dict[str, Any] | None:
        self.flush()
        row = self._db.execute("SELECT payload FROM units WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def done_among(self, keys: Sequence[str], *, skip_flagged: str | None = None) -> set[str]:
        """Which of `keys` are stored; with `skip_flagged`, leave out units whose payload sets that
        flag true. Asked per batch through the primary key, so the caller never holds every key of a
        ten-million-row phase in memory."""
        self.flush()  # pending group-committed units count as stored
        found: set[str] = set()
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = keys[start : start + _KEYS_PER_QUERY]
            sql = f"SELECT key FROM units WHERE key IN ({', '.join('?' * len(chunk))})"
            args: list[object] = list(chunk)
            if skip_flagged is not None:
                sql += " AND NOT coalesce(json_extract(payload, ?), 0)"
                args.append(f"$.{skip_flagged}")
            found.update(row[0] for row in self._db.execute(sql, args))
        return found

    def is_empty(self) -> bool:
        """Nothing computed yet: no unit and no key/value state."""
        self.flush()
        return self._db.execute("SELECT EXISTS (SELECT 1 FROM units) OR EXISTS (SELECT 1 FROM kv)").fetchone()[0] == 0

    def iter_phase(self, phase: str, round: int | None = None) -> Iterator[dict[str, Any]]:
        """Payloads in (round, seq) order: the deterministic output order."""
        for _, payload in self.iter_keyed(phase, round):
            yield payload

    def iter_keyed(self, phase: str, round: int | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(key, payload) in (round, seq) order, for readers whose unit names its subject only in its key."""
        self.flush()
        sql = "SELECT key, payload FROM units WHERE phase = ?"
        args: list[object] = [phase]
        if round is not None:
            sql += " AND round = ?"
            args.append(round)
        for key, payload in self._db.execute(sql + " ORDER BY round, seq", args):
            yield key, json.loads(payload)

    def count(self, phase: str, round: int | None = None, *, statuses: tuple[str, ...] | None = None) -> int:
        """Units of a phase (and round); with `statuses`, only rows whose status is one of them."""
        self.flush()
        sql = "SELECT COUNT(*) FROM units WHERE phase = ?"
        args: list[object] = [phase]
        if round is not None:
            sql += " AND round = ?"
            args.append(round)
        if statuses is not None:
            sql += f" AND json_extract(payload, '$.row.status') IN ({', '.join('?' * len(statuses))})"
            args.extend(statuses)
        return int(self._db.execute(sql, args).fetchone()[0])

    def set(self, name: str, value: Any) -> None:
        self._check_writable()
        self.flush()
        with transaction(self._db):
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (name, json.dumps(value, ensure_ascii=False)))

    def read(self, name: str, default: Any = None) -> Any:
        self.flush()
        row = self._db.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else default

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()


def _connect_read_only(uri: str) -> sqlite3.Connection:
    return sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False, isolation_level=None)


class EventLog:
    """Append-only JSONL; every line carries a timestamp and an event name."""

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "a", encoding="utf-8")

    def emit(self, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        self._handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


class RunDir:
    def __init__(self, path: Path, manifest: Manifest, lock: RunLock | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self._lock = lock
        self.state = StateDB(path / "state.db")
        self.events = EventLog(path / "events.jsonl")
        self.output = path / "output"
        self.output.mkdir(exist_ok=True)

    @classmethod
    def open(cls, path: Path, manifest: Manifest, *, overwrite: bool = False) -> RunDir:
        """Create a run directory, or reopen it for resume if its configuration matches.

        The manifest's operational half (endpoint concurrency, timeouts, exports...) is recorded for
        `autoevol resume` but not hashed: it may change between a run and its resume. `overwrite`
        starts afresh, removing only files autoevol writes; a directory that is not a run directory
        is never written into over the user's own files.
        """
        _check_out(path, overwrite)
        path.mkdir(parents=True, exist_ok=True)
        lock = RunLock.acquire(path)
        try:
            if overwrite:
                _remove_run_files(path)
            return cls._open_locked(path, lock, manifest)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(cls, path: Path, lock: RunLock, manifest: Manifest) -> RunDir:
        if (path / "manifest.json").exists() and not _nothing_computed(path):
            before = Manifest.load(path)
            _check_resumable(path, before, manifest)
            # Same configuration: the run keeps its birth date and last reason, takes the new operational half.
            manifest = replace(manifest, created_at=before.created_at, reason=before.reason)
        # New, or an attempt that stopped before computing anything (a typo, an empty file): a changed
        # configuration has nothing to invalidate, so it simply starts over.
        run = cls(path, manifest, lock)
        run.set_status("running")
        return run

    def set_status(self, status: str, reason: str | None = None) -> None:
        """Record how the run stands, rewriting manifest.json atomically."""
        self.manifest = self.manifest.with_status(status, reason)
        atomic_write_text(self.path / "manifest.json", self.manifest.to_json())

    def close(self) -> None:
        self.state.close()
        self.events.close()
        if self._lock is not None:
            self._lock.release()


#: Everything autoevol writes into a run directory; `--overwrite` removes these and nothing else.
RUN_FILES = ("manifest.json", "state.db", "state.db-wal", "state.db-shm", "events.jsonl")
OUTPUT_FILES = ("evolved.jsonl", "evolved.parquet", "rejected.jsonl", "summary.json", "best_method.json",
                "optimization.json", "report.html", "evolved.clean.jsonl")


def _check_out(path: Path, overwrite: bool) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} is a file; give a directory for the run")
    if not path.is_dir() or (path / "manifest.json").exists():
        return
    ours = [name for name in RUN_FILES if (path / name).exists()]
    ours += [f"output/{name}" for name in OUTPUT_FILES if (path / "output" / name).exists()]
    if ours:
        # Files with our names that we did not write (no manifest): never overwrite them.
        raise ConfigError(
            f"--out {path} is not an autoevol run directory but holds {', '.join(ours[:3])}; "
            "choose a new or empty directory"
        )
    leftovers = [p for p in path.iterdir() if p.name != ".lock" and not (p.name == "output" and _empty_dir(p))]
    if leftovers and not overwrite:
        raise ConfigError(
            f"--out {path} is a non-empty directory that is not an autoevol run; choose a new or empty "
            "directory, or pass --overwrite to write the run beside its files"
        )


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _remove_run_files(path: Path) -> None:
    for name in RUN_FILES:
        (path / name).unlink(missing_ok=True)
    for name in OUTPUT_FILES:
        (path / "output" / name).unlink(missing_ok=True)


def _nothing_computed(path: Path) -> bool:
    state = StateDB(path / "state.db")
    try:
        return state.is_empty()
    finally:
        state.close()


def _check_resumable(path: Path, before: Manifest, after: Manifest) -> None:
    if before.command != after.command:
        raise ResumeMismatchError(f"{path} holds an `autoevol {before.command}` run, not `{after.command}`")
    if before.config_hash == after.config_hash:
        return
    old, new = before.data.sha256, after.data.sha256
    if old != new:
        raise ResumeMismatchError(
            f"{path} cannot resume: the content of {after.data.path} changed since the run started (sha256 "
            f"{old[:12]}… -> {new[:12]}…); restore the original data to resume, or use a new --out directory"
        )
    was, now = _flatten(before.config()), _flatten(after.config())
    names = sorted(name for name in was.keys() | now.keys() if was.get(name) != now.get(name))
    changes = [_describe_change(name, was.get(name), now.get(name)) for name in names]
    raise ResumeMismatchError(
        f"{path} was started with a different configuration (changed: {', '.join(changes) or 'unknown'}); "
        "use the original settings to resume, or a new --out directory"
    )


def _describe_change(name: str, before: str | None, after: str | None) -> str:
    """`name old -> new` when both values are short enough to read in one line, else just `name`."""
    if before is None or after is None or len(before) + len(after) > 60:
        return name
    return f"{name} {before} -> {after}"


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out |= _flatten(item, f"{prefix}{key}.")
        return out
    return {prefix.rstrip("."): json.dumps(value, sort_keys=True, default=str)}
