"""Bounded memory at scale: duplicate-id detection that spills to disk, "already done" asked of
state.db per batch instead of a set of every key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoevol.data import readers
from autoevol.data.readers import SeenIds, iter_seeds
from autoevol.data.records import BadRow, Seed
from autoevol.errors import DataError
from autoevol.store.run import StateDB


def test_seen_ids_find_repeats_across_the_spill() -> None:
    seen = SeenIds(in_memory=3)
    for i in range(10):
        assert f"x{i}" not in seen
        seen.add(f"x{i}")
    assert all(f"x{i}" in seen for i in range(10))
    assert "x10" not in seen
    seen.close()


def test_a_duplicate_long_after_the_spill_is_the_same_bad_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers.SeenIds.__init__, "__defaults__", (4,))
    rows = [{"id": f"r{i}", "instruction": f"q{i}"} for i in range(20)] + [{"id": "r2", "instruction": "again"}]
    data = tmp_path / "seeds.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    items = list(iter_seeds(data, on_bad_row="skip"))
    assert [type(i) for i in items] == [Seed] * 20 + [BadRow]
    assert isinstance(items[-1], BadRow) and "duplicate seed id 'r2'" in items[-1].error
    with pytest.raises(DataError, match=r"21.*duplicate seed id .r2."):
        list(iter_seeds(data))


def test_done_among_asks_in_batches_and_honours_the_retry_flag(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    for i in range(1200):
        db.put(f"k{i}", phase="evolve", round=1, seq=i, payload={"retry": i % 3 == 0})
    asked = [f"k{i}" for i in range(0, 2400, 2)]
    assert db.done_among(asked) == {f"k{i}" for i in range(0, 1200, 2)}
    assert db.done_among(asked, skip_flagged="retry") == {f"k{i}" for i in range(0, 1200, 2) if i % 3}
    db.close()
