"""The notebook API (`autoevol.evolve(rows) -> Dataset`, inside a running event loop) and the data
conventions: other input columns travel as `meta` (a JSON string in JSONL and Parquet alike), and
`hf:PATH --split` reads through `datasets` (a local dataset directory: no network)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import autoevol
from tests.fixtures.evolve_server import fake_server, run_cli

ROWS = [{"question": f"What is {i} plus {i}?", "answer": str(2 * i), "source": f"s{i}"} for i in range(3)]


def test_evolve_rows_in_a_running_loop_returns_a_dataset_with_meta_and_resumes(
    tmp_path: Path, autoevol_home: Path
) -> None:
    pandas = pytest.importorskip("pandas")
    with fake_server() as server:
        async def notebook_cell() -> object:  # a cell in Jupyter runs inside the kernel's loop
            return autoevol.evolve(ROWS, tmp_path / "run", model="openai:fake", base_url=server.url)

        first = asyncio.run(notebook_cell())
        # The same rows as a DataFrame are the same input file: the run resumes, nothing is asked again.
        again = autoevol.evolve(pandas.DataFrame(ROWS), tmp_path / "run", model="openai:fake", base_url=server.url)
    assert server.stats["requests"] == 6  # a rewrite and an answer per row, once
    assert type(first).__name__ == "Dataset" and first.num_rows == 3
    assert first["meta"] == [json.dumps({"source": f"s{i}"}) for i in range(3)]
    assert again["id"] == first["id"]


def test_hf_local_dataset_split_meta_and_parquet_types(tmp_path: Path, autoevol_home: Path) -> None:
    pytest.importorskip("datasets")
    repo = tmp_path / "my_dataset"
    repo.mkdir()
    for split, rows in (("train", ROWS[:1]), ("test", ROWS)):
        (repo / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with fake_server() as server:
        done = run_cli(["evolve", f"hf:{repo}", "--split", "test", "--model", "openai:fake", "--base-url", server.url,
                        "--out", "runs/x", "--quiet"], home=autoevol_home, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "runs" / "x" / "output"
    rows = [json.loads(line) for line in (out / "evolved.jsonl").read_text().splitlines()]
    assert [json.loads(r["meta"]) for r in rows] == [{"source": f"s{i}"} for i in range(3)]  # the test split
    assert rows[0]["seed_id"].endswith(":1")  # unnamed rows are numbered from 1, as file lines are
    table = pq.read_table(out / "evolved.parquet")
    assert table.schema.field("meta").type == pa.string()
    assert table.column("meta").to_pylist() == [r["meta"] for r in rows]
