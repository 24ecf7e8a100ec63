"""Read the rows of a data file one at a time, whatever its format, without loading it whole.

Formats: JSON lines (`.jsonl`, `.ndjson`, or a `.json` holding JSON lines), a JSON array (`.json`),
CSV (`.csv`, header row), Parquet (`.parquet`) and a directory written by Hugging Face
`Dataset.save_to_disk` / `DatasetDict.save_to_disk` (read with pyarrow; `datasets` is not needed).

Positions are 1-based everywhere: file lines for JSONL and CSV (a CSV row's first line), row numbers
(first row = 1) for JSON arrays, Parquet and HF datasets. A row that cannot be read comes out as
`(position, DataError)`, for the caller's bad-row policy; a broken file (missing, not UTF-8, a JSON
array that stops parsing, one pretty-printed JSON object where rows were expected) raises
`DataError`.

Text is UTF-8 (a UTF-8 BOM is ignored) unless `encoding=` names another codec; a file that starts
with a UTF-16/32 byte-order mark is refused with that hint rather than read as garbage rows.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from autoevol.errors import DataError

SUPPORTED_FORMATS = (
    ".jsonl / .ndjson (JSON lines), .json (array or JSON lines), .csv, .parquet, "
    "or a directory saved by Hugging Face datasets (save_to_disk)"
)
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_CHUNK = 1 << 20  # characters read per step of the JSON array parser
_MAX_PENDING = 64 << 20  # an array element larger than this is treated as malformed
_BATCH = 1024  # rows per Arrow batch
_HEAD = 1 << 16  # bytes looked at to describe a file too large to parse whole
_ENCODING_HINT = "if the file uses another encoding, pass it with --encoding (e.g. --encoding latin-1)"
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"),
         (codecs.BOM_UTF16_BE, "UTF-16"))

RowItem = tuple[int, dict[str, Any] | Exception]

# Instructions can be long; the csv module's default 128 KiB cell limit would reject them.
csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))


def _kind(p: Path, split: str | None, encoding: str | None = None) -> str:
    if not p.exists():
        raise DataError("no such file or directory", path=str(p))
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DataError(f"unknown encoding {encoding!r}", path=str(p)) from None
        if p.is_dir() or p.suffix.lower() == ".parquet":
            raise DataError("an encoding applies to JSON and CSV files, not to Parquet or Arrow", path=str(p))
    if p.is_dir():
        return "hf"
    if split is not None:
        raise DataError("split= only applies to a saved Hugging Face dataset directory", path=str(p))
    kind = _SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise DataError(
            f"unsupported format {p.suffix or '(no extension)'!r}; use {SUPPORTED_FORMATS}", path=str(p)
        )
    return kind


def is_json_lines(path: Path) -> bool:
    """A `.jsonl` / `.ndjson` file: one row per non-blank line, so rows can be counted as bytes."""
    return path.is_file() and _SUFFIXES.get(path.suffix.lower()) == "jsonl"


def _as_object(raw: bytes | str, path: str, line: int) -> dict[str, Any] | Exception:
    """One JSON line as a dict, or the DataError describing why it is not one."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text.lstrip("\ufeff"))
    except UnicodeDecodeError as e:
        return DataError(f"not UTF-8 text ({e.reason}); {_ENCODING_HINT}", path=path, line=line)
    except json.JSONDecodeError as e:
        return DataError(f"malformed JSON ({e.msg} at column {e.colno})", path=path, line=line)
    if not isinstance(value, dict):
        return DataError(f"expected a JSON object, got {type(value).__name__}", path=path, line=line)
    return value


def _open_binary(p: Path, encoding: str | None) -> IO[bytes]:
    """The file, opened once, after refusing UTF-16/32 read as UTF-8 (every line would be a bad row
    and nothing would say why)."""
    f = p.open("rb")
    if encoding is None:
        head = f.read(4)
        f.seek(0)
        try:
            _check_bom(p, head)
        except DataError:
            f.close()
            raise
    return f


def _open_text(p: Path, encoding: str | None, newline: str | None = None) -> IO[str]:
    return io.TextIOWrapper(_open_binary(p, encoding), encoding=encoding or "utf-8-sig", newline=newline)


def _check_bom(p: Path, head: bytes) -> None:
    for bom, name in _BOMS:
        if head.startswith(bom):
            raise DataError(
                f"{name} text (it starts with a {name} byte-order mark); save it as UTF-8, "
                f"or pass --encoding {name.lower()}",
                path=str(p),
            )


def _lines(p: Path, encoding: str | None) -> Iterator[tuple[int, bytes | str]]:
    if encoding is None:
        # Bytes, decoded per line: one undecodable line is a bad row, not a broken file.
        with _open_binary(p, encoding) as f:
            yield from enumerate(f, start=1)
        return
    # newline="\n": only LF ends a row, as in the bytes path (a stray CR stays inside its line).
    with _open_text(p, encoding, newline="\n") as t:
        yield from enumerate(t, start=1)


def _iter_jsonl(p: Path, encoding: str | None = None) -> Iterator[RowItem]:
    first = True
    for line, raw in _lines(p, encoding):
        if raw.strip():
            item = _as_object(raw, str(p), line)
            if first and isinstance(item, DataError) and item.detail.startswith("malformed JSON"):
                # A first line that does not parse may be the "{" of one pretty-printed object.
                _check_not_one_object(p, encoding)
            first = False
            yield line, item


def _check_not_one_object(p: Path, encoding: str | None) -> None:
    """Raise a DataError saying what the file is when it holds one JSON object over several lines."""
    value: Any = None
    lines: int | None = None
    if p.stat().st_size <= _MAX_PENDING:
        text = p.read_text(encoding=encoding or "utf-8-sig", errors="replace")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return  # JSON lines with a malformed first line: that row's own error says it
        if not isinstance(value, dict):
            return
        lines = text.count("\n") + (not text.endswith("\n"))
        key = next((k for k, v in value.items() if isinstance(v, list)), None)
    else:
        # Too large to parse for an error message: a first line that is only "{" tells enough.
        with p.open("r", encoding=encoding or "utf-8-sig", errors="replace") as f:
            head = f.read(_HEAD)
        if head.strip().splitlines()[0].strip() != "{":
            return
        found = re.match(r'\s*\{\s*"([^"\\]+)"\s*:\s*\[', head)
        key = found.group(1) if found else None
    span = f"over {lines} lines" if lines else "over several lines"
    message = f"one JSON object {span} (pretty-printed), not JSON lines or a JSON array; "
    if key is None:
        message += "put each row on one line (JSON lines) or in a top-level array"
    else:
        path = f".{key}[]" if key.isidentifier() else f".[{json.dumps(key)}][]"
        message += f"its key {key!r} holds a list: extract it, e.g. jq -c '{path}' {p.name} > {p.stem}.jsonl"
    raise DataError(message, path=str(p))


class _JsonArray:
    """Incremental reader of one top-level JSON array: memory is bounded by the largest element."""

    def __init__(self, f: IO[str], path: str):
        self.f, self.path = f, path
        self.decoder = json.JSONDecoder()
        self.buf, self.pos, self.eof = "", 0, False
        self.lines_dropped = 0  # newlines in text already discarded, for file line numbers

    def _fill(self) -> bool:
        if self.eof:
            return False
        # Read at least as much as is pending, so one huge element costs O(n log n), not O(n^2).
        chunk = self.f.read(max(_CHUNK, len(self.buf) - self.pos))
        if not chunk:
            self.eof = True
            return False
        self.lines_dropped += self.buf.count("\n", 0, self.pos)
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0
        return True

    def peek(self) -> str | None:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return None

    def _error(self, message: str, index: int) -> DataError:
        file_line = self.lines_dropped + self.buf.count("\n", 0, self.pos) + 1
        return DataError(f"{message} (element {index}, file line {file_line})", path=self.path, line=index)

    def _value(self, index: int) -> Any:
        self.peek()  # raw_decode does not skip leading whitespace
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
                # A value ending exactly at the buffer end may be cut short (e.g. a number); read on.
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return value
            except json.JSONDecodeError as e:
                if self.eof:
                    raise self._error(f"malformed JSON ({e.msg})", index) from None
            if len(self.buf) - self.pos > _MAX_PENDING:
                raise self._error("malformed JSON or an element larger than 64 MiB", index)
            self._fill()

    def __iter__(self) -> Iterator[RowItem]:
        self.pos += 1  # the caller has seen "["
        index = 1
        if self.peek() == "]":
            self.pos += 1
        else:
            while True:
                value = self._value(index)
                if isinstance(value, dict):
                    yield index, value
                else:
                    msg = f"expected a JSON object, got {type(value).__name__}"
                    yield index, DataError(msg, path=self.path, line=index)
                index += 1
                sep = self.peek()
                self.pos += 1
                if sep == "]":
                    break
                if sep != ",":
                    raise self._error("expected ',' or ']' after an array element", index - 1)
        if self.peek() is not None:
            raise self._error("unexpected data after the JSON array", index)


def _iter_json(p: Path, encoding: str | None = None) -> Iterator[RowItem]:
    with _open_text(p, encoding) as f:
        array = _JsonArray(f, str(p))
        first = array.peek()
        if first == "[":
            yield from array
            return
    if first == "{":
        yield from _iter_jsonl(p, encoding)
    elif first is not None:
        raise DataError("expected a JSON array or JSON lines", path=str(p), line=1)


def _iter_csv(p: Path, encoding: str | None = None) -> Iterator[RowItem]:
    with _open_text(p, encoding, newline="") as f:
        reader = csv.DictReader(f)
        try:
            start = 2
            for row in reader:
                if None in row:  # DictReader files surplus cells under the key None
                    msg = f"row has more cells than the header's {len(reader.fieldnames or [])}"
                    yield start, DataError(msg, path=str(p), line=start)
                else:
                    yield start, dict(row)
                start = reader.line_num + 1
        except csv.Error as e:
            raise DataError(f"malformed CSV ({e})", path=str(p), line=reader.line_num) from None


def _iter_parquet(p: Path, encoding: str | None = None) -> Iterator[RowItem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(p) as pf:
            index = 1
            for batch in pf.iter_batches(batch_size=_BATCH):
                for row in batch.to_pylist():
                    yield index, row
                    index += 1
    except pa.ArrowException as e:
        raise DataError(f"cannot read Parquet ({e})", path=str(p)) from None


def _hf_dir(p: Path, split: str | None) -> tuple[Path, str | None]:
    """The directory holding one split's arrow files, and that split's name for a DatasetDict."""
    dict_file = p / "dataset_dict.json"
    if dict_file.is_file():
        splits = list(json.loads(dict_file.read_text(encoding="utf-8")).get("splits", []))
        chosen = split or ("train" if "train" in splits or len(splits) != 1 else splits[0])
        if chosen not in splits:
            raise DataError(f"no split {chosen!r}; available: {', '.join(splits)}", path=str(p))
        return p / chosen, chosen
    if split is not None:
        raise DataError(f"split={split!r} given but this is a single Dataset, not a DatasetDict", path=str(p))
    return p, None


def _arrow_files(d: Path) -> list[Path]:
    state = d / "state.json"
    if not state.is_file() and not (d / "dataset_info.json").is_file():
        raise DataError(
            f"not a saved Hugging Face dataset (no state.json); use {SUPPORTED_FORMATS}", path=str(d)
        )
    if state.is_file():
        # state.json lists the shards in order; a glob would sort "10" before "2" for big datasets.
        files = [d / f["filename"] for f in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
    else:
        files = sorted(d.glob("*.arrow"))
    if not files:
        raise DataError("saved dataset has no .arrow files", path=str(d))
    return files


def _iter_hf(p: Path, split: str | None) -> Iterator[RowItem]:
    import pyarrow as pa

    index = 1
    for file in _arrow_files(_hf_dir(p, split)[0]):
        try:
            with pa.memory_map(str(file)) as source:
                for batch in pa.ipc.open_stream(source):
                    for row in batch.to_pylist():
                        yield index, row
                        index += 1
        except pa.ArrowException as e:
            raise DataError(f"cannot read Arrow file ({e})", path=str(file)) from None


_FILE_READERS = {"jsonl": _iter_jsonl, "json": _iter_json, "csv": _iter_csv, "parquet": _iter_parquet}


def iter_rows(path: str | Path, *, split: str | None = None, encoding: str | None = None) -> Iterator[RowItem]:
    """Stream `(position, row)`; a row that cannot be read comes as `(position, DataError)`."""
    p = Path(path)
    kind = _kind(p, split, encoding)
    try:
        if kind == "hf":
            yield from _iter_hf(p, split)
        else:
            yield from _FILE_READERS[kind](p, encoding)
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror or e})", path=str(p)) from None
    except UnicodeDecodeError as e:
        hint = f"; {_ENCODING_HINT}" if encoding is None else ""
        name = encoding or "UTF-8"
        raise DataError(f"not {name} text ({e.reason} at byte {e.start}){hint}", path=str(p)) from None


def file_stem(p: Path, split: str | None) -> str:
    """The file-name part of positional seed ids: "train" for train.jsonl, "gsm8k/test" for a split."""
    if p.is_dir():
        name = p.resolve().name
        chosen = _hf_dir(p, split)[1]
        return f"{name}/{chosen}" if chosen else name
    return p.stem


def count_rows(path: str | Path, *, split: str | None = None, encoding: str | None = None) -> int:
    """Number of rows, read from metadata where the format has it (Parquet, Arrow batches)."""
    p = Path(path)
    kind = _kind(p, split, encoding)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(p) as pf:
                return int(pf.metadata.num_rows)
        if kind == "hf":
            import pyarrow as pa

            total = 0
            for file in _arrow_files(_hf_dir(p, split)[0]):
                with pa.memory_map(str(file)) as source:
                    total += sum(batch.num_rows for batch in pa.ipc.open_stream(source))
            return total
        if kind == "jsonl" and encoding is None:
            with p.open("rb") as f:
                return sum(1 for raw in f if raw.strip())
    except OSError as e:  # pyarrow's IO errors are OSErrors too
        raise DataError(f"cannot read ({e.strerror or e})", path=str(p)) from None
    return sum(1 for _ in iter_rows(p, encoding=encoding))
