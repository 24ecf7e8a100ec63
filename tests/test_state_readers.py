"""Reading a run's state.db through the phases that wrote it: `StateDB.read_only`, the evolve
phase's `stored_units`, the optimizer's key scheme and its readers (`stored_steps`,
`stored_verdicts`), and `sqlite_util.transaction` under all of them."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing
from pathlib import Path

import pytest

from autoevol.data.records import Turn, first_user_text
from autoevol.errors import ResumeMismatchError
from autoevol.evolution.units import StoredUnit, stored_units
from autoevol.optimization.records import score_key, step_key, stored_step, stored_steps, stored_verdicts
from autoevol.optimization.score import ItemVerdict
from autoevol.sqlite_util import transaction
from autoevol.store.run import StateDB

OLD_RUN = Path(__file__).parent / "data" / "old_runs" / "run" / "run"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def old_state(tmp_path: Path) -> Path:
    """A copy of a run directory's state.db written by an earlier autoevol (3b49d14)."""
    shutil.copy(OLD_RUN / "state.db", tmp_path / "state.db")
    return tmp_path / "state.db"


def raw(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute(sql, args).fetchall()


# --- the key scheme: the keys an earlier run wrote are the keys the functions make ---------------

def test_the_key_functions_make_the_keys_an_older_run_wrote(old_state: Path) -> None:
    names = {name for (name,) in raw(old_state, "SELECT name FROM kv")}
    assert {step_key(t, part) for t in (1, 2) for part in ("trajectory", "candidates", "record")} <= names
    assert step_key(12, "record") == "opt/12/record"
    keys = raw(old_state, "SELECT key, payload FROM units WHERE phase = 'score'")
    assert len(keys) == 40
    for key, payload in keys:
        seed_id = json.loads(str(payload))["seed_id"]
        method_id = str(key)[len("score|"): -len(seed_id) - 1]
        assert score_key(method_id, seed_id) == key
    assert score_key("m-0123456789ab", "data:7|b") == "score|m-0123456789ab|data:7|b"


# --- the readers -------------------------------------------------------------------------------

def test_stored_steps_read_an_older_run_and_give_back_its_stored_form(old_state: Path) -> None:
    state = StateDB.read_only(old_state)
    steps = stored_steps(state, "runs/old")
    assert [s.step for s in steps] == [1, 2]
    for step in steps:
        (text,) = raw(old_state, "SELECT value FROM kv WHERE name = ?", step_key(step.step, "record"))[0]
        assert step.to_dict() == json.loads(str(text))
    assert stored_step(state, 3, "runs/old") is None
    state.close()


def test_stored_steps_end_at_the_first_missing_step_and_name_a_damaged_one(tmp_path: Path) -> None:
    writer = StateDB(tmp_path / "state.db")
    writer.set(step_key(2, "record"), {"version": 2})  # no step 1: nothing has finished in order
    assert stored_steps(writer, tmp_path) == []
    writer.set(step_key(1, "record"), {"version": 2, "step": 1})  # finished, but damaged
    with pytest.raises(ResumeMismatchError, match=r"opt/1/record is damaged"):
        stored_steps(writer, tmp_path)
    writer.close()


def test_stored_verdicts_are_grouped_by_method_then_seed_in_dev_order(tmp_path: Path) -> None:
    writer = StateDB(tmp_path / "state.db")
    verdicts = {("m-a", "d|1"): ItemVerdict("d|1", True, "too_short", "R1", "x", "y"),
                ("m-a", "d|0"): ItemVerdict("d|0", False, None, None, "evolved", "answer"),
                ("m-b", "d|0"): ItemVerdict("d|0", False, None, None, "other", "answer")}
    for seq, ((method_id, seed_id), verdict) in enumerate(verdicts.items()):
        writer.put(score_key(method_id, seed_id), phase="score", round=0, seq=1 - seq % 2, payload=verdict.to_dict())
    writer.put("evolve|m-a|d|0|1", phase="evolve", round=1, seq=0, payload={"not": "a verdict"})
    writer.close()
    read = stored_verdicts(StateDB.read_only(tmp_path / "state.db"))
    assert list(read) == ["m-a", "m-b"]
    assert list(read["m-a"]) == ["d|0", "d|1"]  # seq order, and a seed id holding "|" kept whole
    assert read["m-a"]["d|1"] == verdicts[("m-a", "d|1")]


def test_a_verdict_reads_back_from_its_stored_form_and_refuses_a_partial_one() -> None:
    verdict = ItemVerdict("s1", True, "model_error", "ContextWindowError", "", "too long")
    assert ItemVerdict.from_dict(verdict.to_dict()) == verdict
    partial = verdict.to_dict()
    del partial["rule"]
    with pytest.raises(KeyError):
        ItemVerdict.from_dict(partial)


def test_stored_units_serve_a_read_only_state(tmp_path: Path) -> None:
    shutil.copy(OLD_RUN.parent.parent / "evolve" / "run" / "state.db", tmp_path / "state.db")
    units = list(stored_units(StateDB.read_only(tmp_path / "state.db")))
    payloads = [json.loads(str(p)) for (p,) in raw(tmp_path / "state.db",
                                                   "SELECT payload FROM units ORDER BY round, seq")]
    assert [u.to_dict() for u in units] == [StoredUnit.from_dict(p).to_dict() for p in payloads]
    assert units and all(u.first_user == first_user_text(u.input_turns) for u in units)


def test_a_unit_names_its_first_user_turn_and_last_answer() -> None:
    base = StoredUnit.from_dict({"seq": 0, "row": _row(), "input_turns": []})
    turns = (Turn("system", "be brief"), Turn("user", "u1"), Turn("assistant", "a1"), Turn("user", "u2"),
             Turn("assistant", "a2"))
    unit = StoredUnit(0, base.row, turns)
    assert (unit.first_user, unit.last_answer) == ("u1", "a2")
    bare = StoredUnit(0, base.row, (Turn("user", "only"),))
    assert (bare.first_user, bare.last_answer) == ("only", None)
    assert first_user_text([Turn("system", "s"), Turn("assistant", "a")]) == ""


def _row() -> dict[str, object]:
    return {"id": "s#r1", "seed_id": "s", "round": 1, "parent_id": None, "method_id": "m", "evol_model": "e",
            "responder_model": "r", "optimizer_model": None, "judge_model": None, "status": "accepted",
            "failure_category": None, "failure_rule": None, "error": None, "instruction": "i", "response": "r",
            "messages": [], "parent_instruction": "p", "prompt_tokens": 0, "completion_tokens": 0, "meta": None}


# --- StateDB.read_only -----------------------------------------------------------------------------

def test_a_read_only_state_reads_beside_a_running_writer_and_never_writes(tmp_path: Path) -> None:
    writer = StateDB(tmp_path / "state.db")
    writer.put("k1", phase="p", round=1, seq=0, payload={"n": 1})
    writer.flush()
    reader = StateDB.read_only(tmp_path / "state.db")
    assert reader.get("k1") == {"n": 1}
    # The writer goes on while the reader is open, and the reader's next read sees what it committed.
    writer.put("k2", phase="p", round=1, seq=1, payload={"n": 2})
    writer.set("name", [1, 2])
    assert [p["n"] for p in reader.iter_phase("p")] == [1, 2] and reader.read("name") == [1, 2]
    with pytest.raises(PermissionError, match="read-only"):
        reader.put("k3", phase="p", round=1, seq=2, payload={})
    with pytest.raises(PermissionError, match="read-only"):
        reader.set("name", 3)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader._db.execute("DELETE FROM units")  # the connection itself is mode=ro
    reader.close()
    writer.close()


def test_a_read_only_state_runs_no_migration_and_keeps_the_journal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    # The tables, but never migrated (the writer's migration would fail here: "units already exists").
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE units (key TEXT PRIMARY KEY, phase TEXT, round INTEGER, seq INTEGER, "
                   "payload TEXT, created_at REAL)")
        db.execute("CREATE TABLE kv (name TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO kv VALUES ('opt/1/record', 'null')")
        db.commit()
    reader = StateDB.read_only(path)
    assert reader.read("opt/1/record", "absent") is None
    reader.close()
    assert raw(path, "SELECT name FROM sqlite_master WHERE name = '_migrations'") == []
    assert raw(path, "PRAGMA journal_mode") == [("delete",)]  # the writer's opener switches to WAL


_READ_ON_READ_ONLY_DISK = """
import sys
from pathlib import Path
from autoevol.store.run import StateDB
from autoevol.optimization.records import stored_steps
state = StateDB.read_only(Path(sys.argv[1]))
print(len(stored_steps(state, "copy")), sum(1 for _ in state.iter_phase("evolve")))
"""


def test_a_read_only_state_opens_a_copy_on_a_read_only_disk() -> None:
    """A closed WAL database on a disk nobody may write to: SQLite cannot create the WAL index."""
    as_other_user: list[str] = []
    if os.geteuid() == 0:  # root writes anywhere: read as an unprivileged user instead
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: no way to make a directory unwritable")
        as_other_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    folder = Path(tempfile.mkdtemp(prefix="autoevol-ro-"))
    try:
        shutil.copy(OLD_RUN / "state.db", folder / "state.db")
        (folder / "state.db").chmod(0o444)
        folder.chmod(0o555)
        done = subprocess.run([*as_other_user, sys.executable, "-c", _READ_ON_READ_ONLY_DISK,
                               str(folder / "state.db")], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["2", "24"]
        assert sorted(p.name for p in folder.iterdir()) == ["state.db"]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


# --- sqlite_util.transaction ---------------------------------------------------------------------

def _db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=0)
    db.execute("PRAGMA journal_mode=WAL")  # (as `connect` opens the stores: a reader never blocks a writer)
    db.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    return db


@pytest.mark.parametrize("error", [ValueError("bad row"), KeyboardInterrupt()])
def test_a_transaction_commits_its_block_or_rolls_all_of_it_back(tmp_path: Path, error: BaseException) -> None:
    db = _db(tmp_path / "t.db")
    with transaction(db):
        db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(type(error)), transaction(db):
        db.execute("INSERT INTO t VALUES (2)")
        raise error
    assert db.execute("SELECT v FROM t").fetchall() == [(1,)]
    assert not db.in_transaction
    db.close()


@pytest.mark.parametrize("immediate", [True, False])
def test_an_immediate_transaction_holds_the_write_lock_from_its_start(tmp_path: Path, immediate: bool) -> None:
    db, other = _db(tmp_path / "t.db"), _db(tmp_path / "t.db")
    with transaction(db, immediate=immediate):
        db.execute("SELECT COUNT(*) FROM t").fetchone()
        if immediate:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        else:  # a deferred one that has only read leaves the lock to another writer
            with transaction(other, immediate=True):
                other.execute("INSERT INTO t VALUES (7)")
    db.close()
    other.close()
