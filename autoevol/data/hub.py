"""`hf:NAME` inputs, and in-memory rows (lists of dicts, DataFrames, `datasets.Dataset`) as files.

A run reads, hashes and resumes from a file, so anything else is first written to one: a Hub
dataset's split to `$AUTOEVOL_HOME/hub/`, a notebook's rows to a JSONL file the caller chooses.
The same rows give the same bytes, so the same data resumes the same run.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from autoevol.errors import ConfigError, DataError
from autoevol.files import atomic_write_text

PREFIX = "hf:"


def is_hub_name(text: str) -> bool:
    return text.startswith(PREFIX)


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise ConfigError("hf:NAME inputs need the `datasets` package: pip install 'autoevol[hf]'") from None
    datasets.utils.logging.disable_progress_bar()  # the run's own header says what is read
    return datasets


def local_copy(name: str, split: str | None) -> Path:
    """Load `hf:NAME` (a Hub id or a local dataset path) with `datasets` and write the split as JSONL."""
    from autoevol.home import autoevol_home

    repo = name.removeprefix(PREFIX)
    chosen = split or "train"
    try:
        dataset = _datasets().load_dataset(repo, split=chosen)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as error:
        raise DataError(f"cannot load {name} split {chosen!r} ({error})") from None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "--", repo).strip("-.") or "dataset"
    digest = hashlib.sha256(repo.encode()).hexdigest()[:8]  # two paths that sanitise alike stay apart
    target = autoevol_home() / "hub" / f"{safe}-{digest}" / f"{chosen}.jsonl"
    write_jsonl(target, dataset)
    return target


def rows_of(data: Any) -> Iterable[Mapping[str, Any]]:
    """The rows of a list of dicts, a pandas DataFrame or a `datasets.Dataset`, as mappings."""
    if hasattr(data, "to_dict") and hasattr(data, "columns") and hasattr(data, "iloc"):  # pandas, not imported
        records: list[Mapping[str, Any]] = data.to_dict(orient="records")
        return records
    if isinstance(data, Iterable) and not isinstance(data, str | bytes | Mapping):
        return data  # a list of dicts, or a `datasets.Dataset` (iterating yields dicts)
    raise ConfigError(f"expected a list of dicts, a pandas DataFrame or a datasets.Dataset, got {type(data).__name__}")


def jsonl_text(data: Any) -> str:
    """Rows as JSON lines, keys in the order given."""
    lines = []
    for index, row in enumerate(rows_of(data), start=1):
        if not isinstance(row, Mapping):
            raise DataError(f"row {index} is a {type(row).__name__}, not a dict")
        lines.append(json.dumps({str(k): _plain(v) for k, v in row.items()}, ensure_ascii=False, default=str))
    return "".join(line + "\n" for line in lines)


def write_jsonl(target: Path, data: Any) -> None:
    atomic_write_text(target, jsonl_text(data))


def _plain(value: Any) -> Any:
    """JSON-ready values: numpy scalars and arrays (pandas, datasets) as Python ones; NaN as null."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def materialize(data: Any) -> Path:
    """In-memory rows as a JSONL file named by its content under `$AUTOEVOL_HOME/inputs/`: the same
    rows give the same file, so calling again with them resumes the same run directory."""
    from autoevol.home import autoevol_home

    text = jsonl_text(data)
    target = autoevol_home() / "inputs" / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.jsonl"
    if not target.exists():
        atomic_write_text(target, text)
    return target
