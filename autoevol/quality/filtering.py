"""Reading any data file as rows, measuring it (`autoevol stats`) and dropping flagged rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from autoevol.data.records import OUTPUT_FIELDS
from autoevol.quality.contamination import Benchmark
from autoevol.quality.figures import contaminated, duplicates, set_stats


def read_rows(path: Path, *, field: str | None = None) -> list[dict[str, Any]]:
    """autoevol output rows as they are (lineage kept); any other data file as seed rows."""
    from autoevol.data.formats import iter_rows
    from autoevol.data.readers import iter_seeds
    from autoevol.data.records import Seed

    first = next((row for _, row in iter_rows(path) if isinstance(row, dict)), None)
    if isinstance(first, dict) and {"id", "round", "instruction", "parent_instruction"} <= first.keys():
        return [dict(r) for _, r in iter_rows(path) if isinstance(r, dict) and set(r) >= set(OUTPUT_FIELDS[:3])]
    seeds = iter_seeds(path, schema="instruction" if field else "auto", field=field, on_bad_row="skip")
    return [{"id": s.seed_id, "seed_id": s.seed_id, "round": 0, "instruction": s.instruction,
             "response": s.reference or ""} for s in seeds if isinstance(s, Seed)]


def file_stats(rows: Sequence[Mapping[str, Any]], seeds: Mapping[str, str] | None = None,
               benchmarks: Sequence[Benchmark] | None = None) -> dict[str, Any]:
    """Text statistics, near-duplicates and contamination of a file's rows (seed rows count as evolved
    rows for the duplicate check here: a plain data file is checked against itself)."""
    as_evolved = [dict(r, round=max(int(r.get("round") or 0), 1)) for r in rows]
    return {"rows": len(rows), "text": set_stats(rows), "duplicates": duplicates(as_evolved, seeds or {}),
            "contamination": contaminated(rows, benchmarks)}


def drop_ids(stats: Mapping[str, Any], *, near_duplicates: bool, contamination: bool) -> set[str]:
    out: set[str] = set()
    if near_duplicates:
        out |= {str(i) for i in stats["duplicates"]["drop_ids"]}
    if contamination:
        out |= {str(i) for i in stats["contamination"]["drop_ids"]}
    return out


def write_kept(rows: Iterable[Mapping[str, Any]], drop: set[str], path: Path) -> tuple[int, int]:
    """Rows whose id is not in `drop`, as JSONL; returns (kept, dropped)."""
    kept = dropped = 0
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            if str(row.get("id")) in drop:
                dropped += 1
                continue
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            kept += 1
    return kept, dropped
