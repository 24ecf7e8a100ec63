"""Writers: OutputRow's stable dict, reading an output JSONL back, Parquet conversion and atomic writes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autoevol.data import (
    OUTPUT_FIELDS,
    OutputRow,
    Turn,
    iter_output_rows,
    output_schema,
    write_parquet,
)
from autoevol.errors import DataError
from autoevol.files import atomic_write_text


def make_row(i: int = 0, **changes: object) -> OutputRow:
    row = OutputRow(
        id=f"out-{i}",
        seed_id=f"gsm:{i + 1}",
        round=1,
        parent_id=None,
        method_id="m" * 16,
        evol_model="fake:evol",
        responder_model="fake:evol",
        status="accepted",
        failure_category=None,
        failure_rule=None,
        error=None,
        instruction=f"Harder question {i} — ünïcode ✓",
        response=f"The answer is: {i}",
        messages=(Turn("user", f"Harder question {i} — ünïcode ✓"), Turn("assistant", f"The answer is: {i}")),
        parent_instruction=f"Question {i}",
        prompt_tokens=10 + i,
        completion_tokens=5,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def test_to_dict_has_exact_keys_in_order_and_round_trips() -> None:
    row = make_row(3, status="failed", failure_category="stagnant", failure_rule="unchanged", error="x")
    data = row.to_dict()
    assert tuple(data) == OUTPUT_FIELDS
    assert data["messages"] == [
        {"role": "user", "content": row.instruction},
        {"role": "assistant", "content": row.response},
    ]
    assert OutputRow.from_dict(data) == row
    assert OutputRow.from_dict(json.loads(json.dumps(data))) == row
    assert tuple(output_schema().names) == OUTPUT_FIELDS


def test_output_row_validates() -> None:
    with pytest.raises(ValueError, match="status"):
        make_row(status="done")
    with pytest.raises(ValueError, match="round"):
        make_row(round=-1)
    with pytest.raises(ValueError, match="token"):
        make_row(prompt_tokens=-1)
    data = make_row().to_dict()
    del data["response"]
    data["extra"] = 1
    with pytest.raises(ValueError, match=r"missing \['response'\], unknown \['extra'\]"):
        OutputRow.from_dict(data)


def write_rows(path: Path, rows: list[OutputRow]) -> Path:
    path.write_text("".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_iter_output_rows_reads_utf8_lines_and_skips_blank_ones(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "out.jsonl", [make_row(0), make_row(1)])
    with path.open("a", encoding="utf-8") as f:
        f.write("\n")
    assert "ünïcode ✓" in path.read_text(encoding="utf-8")
    assert list(iter_output_rows(path)) == [make_row(0), make_row(1)]


def test_write_parquet_equals_jsonl(tmp_path: Path) -> None:
    jsonl = tmp_path / "out.jsonl"
    rows = [make_row(i) for i in range(7)] + [make_row(7, parent_id="out-0", status="rejected", round=2)]
    write_rows(jsonl, rows)
    parquet = tmp_path / "final" / "out.parquet"
    assert write_parquet(jsonl, parquet, batch_size=3) == len(rows)
    table = pq.read_table(parquet)
    assert table.schema.equals(output_schema())
    assert table.schema.field("messages").type == pa.list_(
        pa.struct([("role", pa.string()), ("content", pa.string())])
    )
    from_jsonl = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert table.to_pylist() == from_jsonl
    assert not (tmp_path / "final" / "out.parquet.tmp").exists()


def test_write_parquet_of_empty_jsonl_keeps_schema(tmp_path: Path) -> None:
    jsonl = tmp_path / "empty.jsonl"
    jsonl.write_text("", encoding="utf-8")
    assert write_parquet(jsonl, tmp_path / "empty.parquet") == 0
    assert pq.read_table(tmp_path / "empty.parquet").schema.equals(output_schema())


def test_write_parquet_rejects_bad_jsonl_and_leaves_no_file(tmp_path: Path) -> None:
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text(json.dumps(make_row().to_dict()) + "\n" + '{"id": "x"}\n', encoding="utf-8")
    out = tmp_path / "bad.parquet"
    with pytest.raises(DataError, match="not an output row") as info:
        write_parquet(jsonl, out)
    assert "bad.jsonl:2" in str(info.value)
    assert not out.exists() and not (tmp_path / "bad.parquet.tmp").exists()


def test_a_valid_file_goes_through_arrows_reader_without_python_rows(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import autoevol.data.writers as writers

    def no_row_path(*args: object) -> int:
        raise AssertionError("the row-by-row path ran on a valid file")

    monkeypatch.setattr(writers, "_parquet_by_rows", no_row_path)
    jsonl = write_rows(tmp_path / "out.jsonl", [make_row(i) for i in range(5)] + [make_row(5, meta='{"a": 1}')])
    assert write_parquet(jsonl, tmp_path / "out.parquet") == 6
    from_jsonl = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == from_jsonl


@pytest.mark.parametrize(("change", "line"), [
    ({"status": "maybe"}, 3), ({"round": -1}, 2), ({"completion_tokens": -5}, 3), ({"response": None}, 2),
    ({"instruction": 7}, 3), ({"messages": [{"role": "user"}]}, 2), ({"surprise": 1}, 3),
])
def test_rows_arrow_would_take_but_an_output_row_would_not_are_refused_by_line(
        tmp_path: Path, change: dict[str, object], line: int) -> None:
    rows = [make_row(i).to_dict() for i in range(3)]
    rows[line - 1] |= change
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError, match="not an output row") as info:
        write_parquet(jsonl, tmp_path / "bad.parquet")
    assert f"bad.jsonl:{line}" in str(info.value)
    assert not (tmp_path / "bad.parquet").exists()


def test_a_row_longer_than_arrows_block_still_converts(tmp_path: Path) -> None:
    long = "word " * 600_000  # 3 MB: more than one block of Arrow's JSON reader
    rows = [make_row(0), make_row(1, response=long, messages=(Turn("user", "q"), Turn("assistant", long))), make_row(2)]
    jsonl = write_rows(tmp_path / "out.jsonl", rows)
    assert write_parquet(jsonl, tmp_path / "out.parquet") == 3
    assert pq.read_table(tmp_path / "out.parquet").column("response").to_pylist()[1] == long


def test_atomic_write_text(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "manifest.json"
    atomic_write_text(path, "first ✓")
    atomic_write_text(path, "second")
    assert path.read_text(encoding="utf-8") == "second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["manifest.json"]
