"""Readers: every format streams GSM8K-like rows into Seeds; bad input gives a precise DataError."""

from __future__ import annotations

import csv
import inspect
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autoevol.data import BadRow, Seed, count_rows, formats, iter_rows, iter_seeds, sample_names, sample_path
from autoevol.errors import DataError

ROWS = [
    {
        "question": f"Tom has {i} apples and buys {i + 2} more. How many now? Ünïcode ✓",
        "answer": f"#### {2 * i + 2}",
    }
    for i in range(5)
]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def seeds(path: Path, **kw: Any) -> list[Seed]:
    out = list(iter_seeds(path, **kw))
    assert all(isinstance(s, Seed) for s in out)
    return out  # type: ignore[return-value]


def check_gsm(got: list[Seed], stem: str, positions: list[int]) -> None:
    assert [s.instruction for s in got] == [r["question"] for r in ROWS]
    assert [s.reference for s in got] == [r["answer"] for r in ROWS]
    assert [s.seed_id for s in got] == [f"{stem}:{p}" for p in positions]


def test_jsonl_and_ndjson(tmp_path: Path) -> None:
    for name in ("gsm.jsonl", "gsm.ndjson"):
        path = write_jsonl(tmp_path / name, ROWS)
        check_gsm(seeds(path), "gsm", [1, 2, 3, 4, 5])
        assert count_rows(path) == 5


def test_blank_lines_keep_real_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "gsm.jsonl"
    path.write_text("\n" + json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1]) + "\n", encoding="utf-8")
    assert [s.seed_id for s in seeds(path)] == ["gsm:2", "gsm:4"]
    assert count_rows(path) == 2


def test_json_array_and_json_lines_in_a_json_file(tmp_path: Path) -> None:
    array = tmp_path / "arr.json"
    array.write_text(json.dumps(ROWS, indent=2, ensure_ascii=False), encoding="utf-8")
    check_gsm(seeds(array), "arr", [1, 2, 3, 4, 5])
    assert count_rows(array) == 5
    lines = write_jsonl(tmp_path / "lines.json", ROWS)
    check_gsm(seeds(lines), "lines", [1, 2, 3, 4, 5])


def test_json_array_parser_across_tiny_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "_CHUNK", 3)  # every value straddles chunk borders
    path = tmp_path / "arr.json"
    path.write_text("\ufeff [ " + " ,\n ".join(json.dumps(r) for r in ROWS) + " ]\n", encoding="utf-8")
    check_gsm(seeds(path), "arr", [1, 2, 3, 4, 5])
    path.write_text("[]", encoding="utf-8")
    assert list(iter_rows(path)) == []


def test_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "gsm.csv", ROWS)
    check_gsm(seeds(path), "gsm", [2, 3, 4, 5, 6])  # line 1 is the header
    assert count_rows(path) == 5


def test_csv_multiline_cell_reports_its_first_line(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "m.csv", [{"question": "a\nb", "answer": "1"}, {"question": "", "answer": "2"}]
    )
    with pytest.raises(DataError) as info:
        list(iter_seeds(path))
    assert (info.value.line, info.value.field) == (4, "question")


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "gsm.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path, row_group_size=2)
    check_gsm(seeds(path), "gsm", [1, 2, 3, 4, 5])
    assert count_rows(path) == 5


def test_hf_saved_dataset_and_dataset_dict(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    single = tmp_path / "gsm_hf"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(single))
    check_gsm(seeds(single), "gsm_hf", [1, 2, 3, 4, 5])
    assert count_rows(single) == 5

    both = tmp_path / "gsm_dd"
    test_rows = [{"question": "Only test?", "answer": "yes"}]
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS), "test": datasets.Dataset.from_list(test_rows)}
    ).save_to_disk(str(both))
    check_gsm(seeds(both), "gsm_dd/train", [1, 2, 3, 4, 5])
    test_seeds = seeds(both, split="test")
    assert [(s.seed_id, s.instruction) for s in test_seeds] == [("gsm_dd/test:1", "Only test?")]
    assert count_rows(both, split="test") == 1
    with pytest.raises(DataError, match="no split 'dev'; available"):
        list(iter_seeds(both, split="dev"))


def test_directory_that_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a saved Hugging Face dataset") as info:
        list(iter_seeds(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_large_jsonl_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    row = json.dumps({"question": "x" * 200, "answer": "y"})
    with path.open("w", encoding="utf-8") as f:
        for _ in range(100_000):
            f.write(row + "\n")
    size = path.stat().st_size
    gen = iter_seeds(path)
    assert inspect.isgenerator(gen)
    tracemalloc.start()
    try:
        first = next(gen)
        assert isinstance(first, Seed) and first.seed_id == "big:1"
        rest = sum(1 for _ in gen)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rest == 99_999
    # The seen-id set grows with the rows, but stays far below the file itself.
    assert peak < size / 2, (peak, size)


def test_reader_yields_before_the_file_is_complete(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "grow.jsonl", ROWS[:1])
    gen = iter_seeds(path)
    assert next(gen).instruction == ROWS[0]["question"]  # type: ignore[union-attr]
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(ROWS[1]) + "\n")
    assert [s.instruction for s in gen] == [ROWS[1]["question"]]  # type: ignore[union-attr]


def test_large_json_array_is_streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "_CHUNK", 1 << 16)  # so a 4.6 MB file is many chunks
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"question": "x" * 200, "answer": "y"}] * 20_000), encoding="utf-8")
    tracemalloc.start()
    try:
        assert sum(1 for _ in iter_rows(path)) == 20_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < path.stat().st_size / 4, peak


def assert_error(exc: DataError, path: Path, line: int | None, field: str | None) -> None:
    assert (exc.path, exc.line, exc.field) == (str(path), line, field)
    text = str(exc)
    assert path.name in text
    if line is not None:
        assert f":{line}" in text
    if field is not None:
        assert f"field {field!r}" in text


def test_malformed_json_line_names_line_without_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n" + json.dumps(ROWS[1]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="malformed JSON") as info:
        list(iter_seeds(path))
    assert_error(info.value, path, 2, None)


@pytest.mark.parametrize(
    ("rows", "line", "field", "words"),
    [
        ([ROWS[0], {"answer": "1"}], 2, "question", "missing field"),
        ([ROWS[0], ROWS[1], {"question": ["a"], "answer": "1"}], 3, "question", "expected a string"),
        ([{"question": "", "answer": "1"}], 1, "question", "empty instruction"),
        ([ROWS[0], [1, 2]], 2, None, "expected a JSON object"),
    ],
)
def test_bad_rows_raise_with_path_line_field(
    tmp_path: Path, rows: list[Any], line: int, field: str | None, words: str
) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=words) as info:
        list(iter_seeds(path))
    assert_error(info.value, path, line, field)


def test_bad_conversation_names_nested_field(tmp_path: Path) -> None:
    good = {"conversations": [{"from": "human", "value": "hi"}]}
    bad = {
        "conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}, {"from": "human"}]
    }
    path = write_jsonl(tmp_path / "chat.jsonl", [good, bad])
    with pytest.raises(DataError) as info:
        list(iter_seeds(path))
    assert_error(info.value, path, 2, "conversations[2].value")
    no_user = write_jsonl(
        tmp_path / "nouser.jsonl", [good, {"conversations": [{"from": "gpt", "value": "b"}]}]
    )
    with pytest.raises(DataError, match="no user turn") as info:
        list(iter_seeds(no_user))
    assert_error(info.value, no_user, 2, "conversations")


def test_bad_rows_in_other_formats(tmp_path: Path) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("question,answer\nq1,a1\nq2,a2,surplus\n", encoding="utf-8")
    with pytest.raises(DataError, match="more cells") as info:
        list(iter_seeds(csv_path))
    assert_error(info.value, csv_path, 3, None)

    pq_path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([ROWS[0], {"question": None, "answer": "x"}]), pq_path)
    with pytest.raises(DataError, match="missing field") as info:
        list(iter_seeds(pq_path))
    assert_error(info.value, pq_path, 2, "question")  # rows count from 1, as file lines do

    arr = tmp_path / "bad.json"
    arr.write_text(json.dumps(ROWS[:2])[:-1] + ", {oops}]", encoding="utf-8")
    with pytest.raises(DataError, match="malformed JSON") as info:
        list(iter_seeds(arr))
    assert_error(info.value, arr, 3, None)
    arr.write_text('"just a string"', encoding="utf-8")
    with pytest.raises(DataError, match="JSON array or JSON lines"):
        list(iter_seeds(arr))


def test_skip_policy_yields_bad_rows_in_order(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = ["{broken", json.dumps(ROWS[0]), json.dumps({"question": 5}), json.dumps(ROWS[1])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = list(iter_seeds(path, on_bad_row="skip"))
    assert [type(x).__name__ for x in out] == ["BadRow", "Seed", "BadRow", "Seed"]
    bad = out[2]
    assert isinstance(bad, BadRow)
    assert (bad.path, bad.line, bad.field) == (str(path), 3, "question")
    assert "expected a string" in bad.error and bad.source.startswith(f"{path}:3")
    assert isinstance(out[0], BadRow) and out[0].line == 1 and out[0].field is None


def test_duplicate_ids_are_bad_rows(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "dup.jsonl", [{"id": "a", **ROWS[0]}, {"id": "a", **ROWS[1]}])
    with pytest.raises(DataError, match="duplicate seed id 'a'") as info:
        list(iter_seeds(path))
    assert_error(info.value, path, 2, "id")
    assert [type(x) for x in iter_seeds(path, on_bad_row="skip")] == [Seed, BadRow]


def test_file_level_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match="no such file") as info:
        list(iter_seeds(missing))
    assert str(missing) in str(info.value)

    odd = tmp_path / "data.xlsx"
    odd.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match=r"unsupported format '\.xlsx'.*\.jsonl.*\.parquet") as info:
        list(iter_seeds(odd))
    assert "data.xlsx" in str(info.value)

    for name, text in [
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n\n"),
        ("empty.json", "[]"),
        ("empty.csv", "q,a\n"),
    ]:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DataError, match="no rows") as info:
            list(iter_seeds(path))
        assert name in str(info.value)

    latin = tmp_path / "latin.csv"
    latin.write_bytes("question,answer\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8") as info:
        list(iter_seeds(latin))
    assert "latin.csv" in str(info.value)

    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read Parquet"):
        list(iter_seeds(junk))


def test_usage_errors(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "gsm.jsonl", ROWS)
    with pytest.raises(ValueError, match="on_bad_row"):
        list(iter_seeds(path, on_bad_row="ignore"))  # type: ignore[arg-type]
    with pytest.raises(DataError, match="split"):
        list(iter_seeds(path, split="train"))
    # A schema that does not fit is a usage error even under the skip policy.
    other = write_jsonl(tmp_path / "other.jsonl", [{"text": "x"}])
    with pytest.raises(DataError, match="cannot detect the schema") as info:
        list(iter_seeds(other, on_bad_row="skip"))
    assert "other.jsonl:1" in str(info.value)


@pytest.mark.parametrize("name", sample_names())
def test_bundled_samples_read_with_auto_schema(name: str) -> None:
    path = sample_path(name)
    got = seeds(path)
    assert len(got) == count_rows(path) and len(got) in (50, 200)
    assert all(s.reference for s in got)


def test_unknown_sample_lists_available() -> None:
    with pytest.raises(DataError, match=r"gsm8k_train_sample\.jsonl"):
        sample_path("nope.jsonl")
