"""Final files of the evolve phase, rebuilt from the run state in input order.

    output/evolved.jsonl     the training set (rows chosen by the `mix` setting), then .parquet
    output/rejected.jsonl    every rejected and failed row of every round, with its reason
    output/summary.json      per-round counts that reconcile with the inputs, usage, wall time, and the
                             data-quality metrics (text statistics per round, near-duplicates and
                             benchmark overlap of the training set); its paths are relative to the run
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from autoevol.config import EvolveSettings
from autoevol.data.records import OutputRow
from autoevol.data.writers import atomic_write_text, write_parquet
from autoevol.evolve.pipeline import RoundStats
from autoevol.evolve.units import PHASE, StoredUnit
from autoevol.store.run import RunDir

T = TypeVar("T")


def _seed_row(unit: StoredUnit) -> OutputRow | None:
    """Round 0: the seed as it came in; only seeds that carry a response can train anything."""
    turns = unit.input_turns
    answers = [t.content for t in turns if t.role == "assistant"]
    if not answers:
        return None
    first_user = next(t.content for t in turns if t.role == "user")
    seed_id = unit.row.seed_id
    return OutputRow(
        id=f"{seed_id}#r0", seed_id=seed_id, round=0, parent_id=None, method_id=None,
        evol_model="", responder_model="", status="accepted", failure_category=None, failure_rule=None,
        error=None, instruction=first_user, response=answers[-1], messages=turns, parent_instruction=first_user,
        meta=unit.row.meta,
    )


def _units(run: RunDir, round_: int | None = None) -> Iterator[StoredUnit]:
    for payload in run.state.iter_phase(PHASE, round_):
        yield StoredUnit.from_dict(payload)


def _training_rows(run: RunDir, settings: EvolveSettings) -> Iterator[dict[str, Any]]:
    if settings.mix.endswith("+seed"):
        for unit in _units(run, 1):
            seed = _seed_row(unit)
            if seed is not None:
                yield seed.to_dict()
    rounds = range(1, settings.rounds + 1) if settings.mix.startswith("all") else [settings.rounds]
    for round_ in rounds:
        for unit in _units(run, round_):
            if unit.row.status == "accepted":
                yield unit.row.to_dict()


def _problem_rows(run: RunDir) -> Iterator[dict[str, Any]]:
    for unit in _units(run):
        if unit.row.status != "accepted":
            yield unit.row.to_dict()


def _write_jsonl(path: Path, rows: Iterator[dict[str, Any]]) -> int:
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return count


#: Rows per set that the quality metrics look at. MinHash signatures and text statistics cost
#: kilobytes per row, so a million-row run measures an evenly spread sample instead of all of it
#: (and says so in summary.json); `autoevol report` / `stats` still read every row.
METRICS_MAX_ROWS = 10_000


def _spread(rows: Iterable[T], total: int) -> Iterator[T]:
    """Every k-th of `total` rows, at most METRICS_MAX_ROWS of them: deterministic, so a resumed
    run's summary equals an uninterrupted run's."""
    return islice(rows, 0, None, max(1, -(-total // METRICS_MAX_ROWS)))


def _metrics(run: RunDir, evolved: Path, rounds: list[dict[str, Any]], training_rows: int) -> dict[str, Any]:
    """LLM-free quality figures; each round's go into its entry of `rounds` too."""
    from autoevol.report.quality import contaminated, duplicates, set_stats

    seeds: dict[str, str] = {}
    seed_total = run.state.count(PHASE, 1)
    for unit in _spread(_units(run, 1), seed_total):
        seeds[unit.row.seed_id] = next((t.content for t in unit.input_turns if t.role == "user"), "")
    sampled = seed_total > METRICS_MAX_ROWS or training_rows > METRICS_MAX_ROWS
    for entry in rounds:
        total = run.state.count(PHASE, entry["round"], statuses=("accepted",))
        sampled |= total > METRICS_MAX_ROWS
        accepted = (u.row.to_dict() for u in _units(run, entry["round"]) if u.row.status == "accepted")
        entry["metrics"] = set_stats(list(_spread(accepted, total)))
    with open(evolved, encoding="utf-8") as handle:
        training = [json.loads(line) for line in _spread(handle, training_rows)]
    dups, contam = duplicates(training, seeds), contaminated(training)
    return {
        "seeds": set_stats([{"instruction": text} for text in seeds.values()]),
        "training": set_stats(training),
        "near_duplicates": {"threshold": dups["threshold"], "within": dups["within"]["rows"],
                            "seed_copies": dups["seed_copies"]["rows"]},
        "contamination": [{k: o[k] for k in ("benchmark", "n", "rows", "items")} for o in contam["overlaps"]],
        **({"sampled": {"max_rows_per_set": METRICS_MAX_ROWS, "how": "every k-th row in output order"}}
           if sampled else {}),
    }


def _alpaca(row: dict[str, Any]) -> dict[str, Any]:
    """Alpaca / LLaMA-Factory: the instruction, an empty input, the response, and a system prompt if any."""
    out = {"instruction": row["instruction"], "input": "", "output": row["response"]}
    system = next((m["content"] for m in row["messages"] if m["role"] == "system"), None)
    return out | ({"system": system} if system is not None else {})


def _sharegpt(row: dict[str, Any]) -> dict[str, Any]:
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in row["messages"]]}


EXPORTS = {"alpaca": _alpaca, "sharegpt": _sharegpt}


def write_exports(output: Path, formats: tuple[str, ...]) -> dict[str, str]:
    """`evolved.FORMAT.jsonl` beside evolved.jsonl (which stays the full record) for each format;
    returns their paths relative to the run directory, for summary.json."""
    written = {}
    for name in formats:
        convert = EXPORTS[name]

        def rows(convert: Any = convert) -> Iterator[dict[str, Any]]:
            with open(output / "evolved.jsonl", encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line)
                    yield convert(row) | {"id": row["id"]}

        _write_jsonl(output / f"evolved.{name}.jsonl", rows())
        written[name] = f"output/evolved.{name}.jsonl"
    return written


def write_outputs(
    run: RunDir, settings: EvolveSettings, stats: list[RoundStats], extra: dict[str, Any],
    exports: tuple[str, ...] = (),
) -> dict[str, Any]:
    evolved = run.output / "evolved.jsonl"
    training = _write_jsonl(evolved, _training_rows(run, settings))
    parquet = run.output / "evolved.parquet"
    write_parquet(evolved, parquet)
    exported = write_exports(run.output, exports)
    problems = _write_jsonl(run.output / "rejected.jsonl", _problem_rows(run))
    usage = extra.pop("round_usage", {})
    # `rounds` stays the counts that reconcile (identical for a resumed and an uninterrupted run);
    # what depends on how the run went (calls, time) and the text metrics go in `per_round`.
    per_round = [{"round": s.round, **usage.get(s.round, {})} for s in stats]
    summary = {
        "rounds": [s.to_dict() for s in stats],
        "training_rows": training,
        "rejected_or_failed_rows": problems,
        "mix": settings.mix,
        # Relative to the run directory, so a moved or copied run still describes itself.
        "files": {"evolved": "output/evolved.jsonl", "parquet": "output/evolved.parquet",
                  "rejected": "output/rejected.jsonl", "report": "output/report.html",
                  **{f"export_{name}": path for name, path in exported.items()}},
        **extra,
        "metrics": _metrics(run, evolved, per_round, training),
        "per_round": per_round,
    }
    atomic_write_text(run.output / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary
