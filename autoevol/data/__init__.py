"""Data in and out: read seed datasets into `Seed`s, write evolved `OutputRow`s as JSONL/Parquet."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from autoevol.data.formats import SUPPORTED_FORMATS, count_rows, iter_rows
from autoevol.data.readers import iter_seeds
from autoevol.data.records import OUTPUT_FIELDS, BadRow, OutputRow, Seed, Turn
from autoevol.data.schemas import SCHEMAS, detect_schema, resolve_schema
from autoevol.data.writers import (
    iter_output_rows,
    output_schema,
    write_parquet,
)
from autoevol.errors import DataError

__all__ = [
    "OUTPUT_FIELDS",
    "SCHEMAS",
    "SUPPORTED_FORMATS",
    "BadRow",
    "OutputRow",
    "Seed",
    "Turn",
    "count_rows",
    "detect_schema",
    "iter_output_rows",
    "iter_rows",
    "iter_seeds",
    "output_schema",
    "resolve_schema",
    "sample_names",
    "sample_path",
    "write_parquet",
]


def sample_names() -> list[str]:
    """Names of the bundled sample datasets (data files only, not licences or README)."""
    root = files("autoevol.data").joinpath("samples")
    return sorted(e.name for e in root.iterdir() if e.name.endswith(".jsonl"))


def sample_path(name: str) -> Path:
    """Filesystem path of a bundled sample, e.g. `sample_path("gsm8k_train_sample.jsonl")`."""
    if name not in sample_names():
        raise DataError(f"no bundled sample {name!r}; available: {', '.join(sample_names())}", path=name)
    # The package is installed as plain files (setuptools package-data), so this is a real path.
    return Path(str(files("autoevol.data").joinpath("samples", name)))
