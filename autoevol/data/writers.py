"""Write the evolved dataset's files: Parquet converted in batches from the finished OutputRow JSONL
(`evolution/outputs.py` writes that JSONL from the run state).

Parquet is written to a temporary file, fsynced and moved into place with `os.replace`, so a reader
or a crash sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoevol.data.records import NON_NULL_OUTPUT_FIELDS, STATUSES, OutputRow
from autoevol.errors import DataError
from autoevol.files import fsync_dir

if TYPE_CHECKING:
    import pyarrow as pa


def output_schema() -> pa.Schema:
    """The explicit Arrow schema of an OutputRow (messages as list<struct<role, content>>)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("seed_id", pa.string()),
            ("round", pa.int64()),
            ("parent_id", pa.string()),
            ("method_id", pa.string()),
            ("evol_model", pa.string()),
            ("responder_model", pa.string()),
            ("optimizer_model", pa.string()),
            ("judge_model", pa.string()),
            ("status", pa.string()),
            ("failure_category", pa.string()),
            ("failure_rule", pa.string()),
            ("error", pa.string()),
            ("instruction", pa.string()),
            ("response", pa.string()),
            ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("parent_instruction", pa.string()),
            ("prompt_tokens", pa.int64()),
            ("completion_tokens", pa.int64()),
            ("meta", pa.string()),  # JSON object text, as in the JSONL: one type whatever the input columns
            ("answer_cut", pa.bool_()),
            ("judge_unparsable", pa.bool_()),
        ]
    )


def iter_output_rows(jsonl_path: str | Path) -> Iterator[OutputRow]:
    """Read back an OutputRow JSONL (e.g. output/evolved.jsonl); a bad line raises DataError with its line number."""
    p = Path(jsonl_path)
    with p.open("r", encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                yield OutputRow.from_dict(json.loads(text))
            except (json.JSONDecodeError, ValueError, TypeError, KeyError) as e:
                raise DataError(f"not an output row ({e})", path=str(p), line=line) from None


def write_parquet(jsonl_path: str | Path, parquet_path: str | Path, *, batch_size: int = 10_000) -> int:
    """Convert a finished OutputRow JSONL to Parquet (atomically); returns the row count.

    Arrow's own JSON reader streams the file in blocks and never builds Python objects, so the end
    of every run does not pay for them (nor for the pandas import that pyarrow's Python-object
    conversion triggers when pandas is installed: 0.17 s). Anything it will not take, a malformed
    row or a line longer than its block, goes through the row-by-row path, which converts what is
    valid in `batch_size`-row batches and names the file and line of what is not.
    """
    import pyarrow as pa

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = Path(parquet_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        try:
            total = _parquet_by_blocks(Path(jsonl_path), tmp)
        except (pa.ArrowInvalid, _NotOutputRows):
            total = _parquet_by_rows(Path(jsonl_path), tmp, batch_size)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    fsync_dir(out.parent)
    return total


class _NotOutputRows(Exception):
    """Arrow parsed the file, but some value breaks an OutputRow rule (status, round, token counts)."""


def _parse_schema(schema: pa.Schema) -> pa.Schema:
    """The output schema with the fields every OutputRow has a value for declared non-null, so
    Arrow refuses a row that lacks one, as `OutputRow.from_dict` would."""
    import pyarrow as pa

    turn = pa.struct([pa.field("role", pa.string(), nullable=False), pa.field("content", pa.string(), nullable=False)])
    return pa.schema([pa.field(f.name, pa.list_(turn) if f.name == "messages" else f.type,
                               nullable=f.name not in NON_NULL_OUTPUT_FIELDS) for f in schema])


def _check_rules(batch: pa.RecordBatch) -> None:
    # Plain Python over four columns: pyarrow.compute would cost 0.17 s to import.
    if not set(batch.column("status").to_pylist()) <= STATUSES:
        raise _NotOutputRows("status")
    for name in ("round", "prompt_tokens", "completion_tokens"):
        if min(batch.column(name).to_pylist(), default=0) < 0:
            raise _NotOutputRows(name)


def _parquet_by_blocks(jsonl: Path, tmp: Path) -> int:
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    schema = output_schema()
    options = pj.ParseOptions(explicit_schema=_parse_schema(schema), unexpected_field_behavior="error")
    total = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        if jsonl.stat().st_size == 0:  # Arrow's reader wants at least one block
            return 0
        for batch in pj.open_json(jsonl, parse_options=options):
            _check_rules(batch)
            # Same columns; only the parse-time non-null flags go.
            writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
            total += batch.num_rows
    return total


def _parquet_by_rows(jsonl: Path, tmp: Path, batch_size: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = output_schema()
    total = 0
    batch: list[dict[str, Any]] = []
    with pq.ParquetWriter(tmp, schema) as writer:
        for row in iter_output_rows(jsonl):
            batch.append(row.to_dict())
            if len(batch) >= batch_size:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                total, batch = total + len(batch), []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            total += len(batch)
    return total
