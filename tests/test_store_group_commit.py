"""Grouped writes: state.db units one transaction per 20 ms window, cache answers one per
event-loop iteration (a lost answer is paid again); visible to this process at once and to others
once committed, and a failed commit is raised by the next call instead of vanishing in the event
loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from autoevol.llm.cache import ResponseCache
from autoevol.store.run import StateDB
from autoevol.types import Completion, Usage


def _units_elsewhere(path: Path) -> int:
    with sqlite3.connect(path) as other:
        return int(other.execute("SELECT COUNT(*) FROM units").fetchone()[0])


async def test_units_stored_within_one_window_share_one_transaction(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    commits: list[str] = []
    state._db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip() == "COMMIT" else None)
    for i in range(50):
        state.put(f"k{i}", phase="p", round=1, seq=i, payload={"i": i})
    assert _units_elsewhere(tmp_path / "state.db") == 0  # not yet: the window is still open
    assert state.count("p") == 50  # ...but this process reads its own writes (which commits them)
    assert len(commits) == 1
    for i in range(50, 60):  # one unit per event-loop iteration, as finished requests arrive at 64
        state.put(f"k{i}", phase="p", round=1, seq=i, payload={"i": i})
        await asyncio.sleep(0)
    assert _units_elsewhere(tmp_path / "state.db") == 50 and len(commits) == 1
    await asyncio.sleep(3 * StateDB.COMMIT_WINDOW_S)  # the window ends: its ten units in one transaction
    assert _units_elsewhere(tmp_path / "state.db") == 60 and len(commits) == 2
    state.close()


def test_outside_an_event_loop_a_unit_is_committed_at_once(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    state.put("k", phase="p", round=1, seq=0, payload={})
    assert _units_elsewhere(tmp_path / "state.db") == 1
    state.close()


def test_a_commit_scheduled_on_a_finished_loop_does_not_block_the_next(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")

    async def put(key: str) -> None:
        state.put(key, phase="p", round=1, seq=0, payload={})

    asyncio.run(put("a"))  # the loop may end before its scheduled commit runs
    state.put("b", phase="p", round=1, seq=1, payload={})  # no loop: committed now, with "a"
    assert _units_elsewhere(tmp_path / "state.db") == 2
    asyncio.run(put("c"))
    state.close()
    assert _units_elsewhere(tmp_path / "state.db") == 3


async def test_cache_answers_are_grouped_and_seen_before_they_are_committed(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.db")
    answer = Completion(text="t", finish_reason="stop", usage=Usage(3, 4), model="m")
    for i in range(20):
        cache.put(f"k{i}", "b", answer)
    hit = cache.get("k7")
    assert hit is not None and hit.text == "t" and hit.cached and hit.usage == Usage(3, 4)
    await asyncio.sleep(0)  # the end of this iteration commits the answers
    with sqlite3.connect(tmp_path / "cache.db") as other:
        assert other.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 20
    cache.put("k7", "b", Completion(text="second", finish_reason="stop", usage=Usage(1, 1), model="m"))
    assert cache.get("k7").text == "t"  # type: ignore[union-attr]  # the first answer wins
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.tokens_saved) == (20, 2, 14)
    cache.close()


async def test_a_failed_grouped_commit_is_raised_by_the_next_call(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    state.put("k", phase="p", round=1, seq=0, payload={})
    state._db.execute("DROP TABLE units")  # the commit at the end of this window will fail
    await asyncio.sleep(3 * StateDB.COMMIT_WINDOW_S)
    with pytest.raises(sqlite3.OperationalError, match="units"):
        state.put("k2", phase="p", round=1, seq=1, payload={})
    state._db.close()
