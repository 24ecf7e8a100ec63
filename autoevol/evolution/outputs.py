"""Final files of the evolve phase, rebuilt from the run state in input order.

    output/evolved.jsonl     the training set (rows chosen by the `mix` setting), then .parquet
    output/rejected.jsonl    every rejected and failed row of every round, with its reason
    output/summary.json      per-round counts that reconcile with the inputs, usage, wall time, and the
                             data-quality metrics (text statistics per round, near-duplicates and
                             benchmark overlap of the training set); its paths are relative to the run
"""

from __future__ import annotations

import gc
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from autoevol.config import EvolveSettings
from autoevol.data.records import OutputRow
from autoevol.data.writers import write_parquet
from autoevol.evolution.pipeline import RoundStats
from autoevol.evolution.units import PHASE, StoredUnit, stored_units
from autoevol.files import atomic_write_text
from autoevol.store.run import RunDir

T = TypeVar("T")


def _seed_row(unit: StoredUnit) -> OutputRow | None:
    """Round 0: the seed as it came in; only seeds that carry a response can train anything."""
    answer = unit.last_answer
    if answer is None:
        return None
    first_user, seed_id = unit.first_user, unit.row.seed_id
    return OutputRow(
        id=f"{seed_id}#r0", seed_id=seed_id, round=0, parent_id=None, method_id=None,
        evol_model="", responder_model="", status="accepted", failure_category=None, failure_rule=None,
        error=None, instruction=first_user, response=answer, messages=unit.input_turns, parent_instruction=first_user,
        meta=unit.row.meta,
    )


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector while the outputs and the report are built.

    That work allocates a few hundred thousand small tuples and dicts (n-grams, rows) that live until
    it ends; each allocation burst triggers collections that walk the whole heap of the run, for
    nothing to free. On a 1,500-seed run that was 0.12 s of a 0.43 s output pass. Anything cyclic
    made meanwhile is collected once the block ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: Rows per set that the quality metrics look at. Shingle sets, n-grams and text statistics cost
#: kilobytes per row, so a million-row run measures an evenly spread sample instead of all of it
#: (and says so in summary.json); `autoevol report` / `stats` still read every row.
METRICS_MAX_ROWS = 10_000


def _every(total: int) -> int:
    """The k of "every k-th row" that keeps at most METRICS_MAX_ROWS of `total`: deterministic, so
    a resumed run's summary equals an uninterrupted run's."""
    return max(1, -(-total // METRICS_MAX_ROWS))


def _spread(rows: Iterable[T], total: int) -> Iterator[T]:
    return islice(rows, 0, None, _every(total))


class _JsonlOut:
    """A JSONL file written to a temporary name, then fsynced and moved into place whole."""

    def __init__(self, path: Path, suffix: str = ".tmp") -> None:
        self.path, self.tmp, self.count = path, path.with_name(path.name + suffix), 0
        self.handle = open(self.tmp, "w", encoding="utf-8")  # closed by finish() or abandon()

    def write(self, row: dict[str, Any]) -> None:
        self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.count += 1

    def finish(self, tail: _JsonlOut | None = None) -> int:
        """Close and move into place; `tail`'s rows (a second temporary file) follow ours."""
        if tail is not None:
            tail.handle.close()
            with open(tail.tmp, encoding="utf-8") as rest:
                shutil.copyfileobj(rest, self.handle)
            tail.tmp.unlink()
            self.count += tail.count
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.tmp, self.path)
        return self.count

    def abandon(self) -> None:
        self.handle.close()
        self.tmp.unlink(missing_ok=True)


@dataclass
class _Written:
    training: int
    problems: int
    #: The metrics' samples: seed id -> first user turn; round -> its accepted rows.
    seeds: dict[str, str]
    accepted: dict[int, list[dict[str, Any]]]
    sampled: bool


def _write_rows(run: RunDir, settings: EvolveSettings, rounds: list[int]) -> _Written:
    """evolved.jsonl and rejected.jsonl, and the metrics' samples, in one pass over the run state:
    each pass decodes every stored unit, which at a million rows is most of a minute."""
    output = run.output
    seed_every = _every(run.state.count(PHASE, 1))
    round_every = {r: _every(run.state.count(PHASE, r, statuses=("accepted",))) for r in rounds}
    in_training = set(range(1, settings.rounds + 1)) if settings.mix.startswith("all") else {settings.rounds}
    written = _Written(0, 0, {}, {r: [] for r in rounds}, sampled=max([seed_every, *round_every.values()]) > 1)
    evolved, problems = _JsonlOut(output / "evolved.jsonl"), _JsonlOut(output / "rejected.jsonl")
    # Seed rows come first in the training set, while the store yields them beside round 1's rows.
    after_seeds = _JsonlOut(output / "evolved.jsonl", ".rounds.tmp") if settings.mix.endswith("+seed") else None
    seen: dict[int, int] = {}  # round -> units (round 1: seeds) or accepted rows (others) seen
    try:
        for unit in stored_units(run.state):
            row, round_ = unit.row, unit.row.round
            if round_ == 1:
                if seen.get(0, 0) % seed_every == 0:
                    written.seeds[row.seed_id] = unit.first_user
                seen[0] = seen.get(0, 0) + 1
                seed = _seed_row(unit) if after_seeds is not None else None
                if seed is not None:
                    evolved.write(seed.to_dict())
            if row.status != "accepted":
                problems.write(row.to_dict())
                continue
            data = row.to_dict()
            if round_ in in_training:
                (after_seeds or evolved).write(data)
            if round_ in round_every:
                if seen.get(round_, 0) % round_every[round_] == 0:
                    written.accepted[round_].append(data)
                seen[round_] = seen.get(round_, 0) + 1
        written.training, written.problems = evolved.finish(after_seeds), problems.finish()
    except BaseException:
        for out in (evolved, problems, after_seeds):
            if out is not None:
                out.abandon()
        raise
    return written


def _metrics(evolved: Path, written: _Written, per_round: list[dict[str, Any]]) -> dict[str, Any]:
    """LLM-free quality figures; each round's go into its entry of `per_round` too."""
    from autoevol.quality.figures import contaminated, duplicates, set_stats

    for entry in per_round:
        entry["metrics"] = set_stats(written.accepted.get(entry["round"], []))
    with open(evolved, encoding="utf-8") as handle:
        training = [json.loads(line) for line in _spread(handle, written.training)]
    dups, contam = duplicates(training, written.seeds), contaminated(training)
    sampled = written.sampled or written.training > METRICS_MAX_ROWS
    return {
        "seeds": set_stats([{"instruction": text} for text in written.seeds.values()]),
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

        out = _JsonlOut(output / f"evolved.{name}.jsonl")
        try:
            with open(output / "evolved.jsonl", encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line)
                    out.write(convert(row) | {"id": row["id"]})
            out.finish()
        except BaseException:
            out.abandon()
            raise
        written[name] = f"output/evolved.{name}.jsonl"
    return written


def write_outputs(
    run: RunDir, settings: EvolveSettings, stats: list[RoundStats], extra: dict[str, Any],
    exports: tuple[str, ...] = (),
) -> dict[str, Any]:
    evolved = run.output / "evolved.jsonl"
    written = _write_rows(run, settings, [s.round for s in stats])
    training, problems = written.training, written.problems
    write_parquet(evolved, run.output / "evolved.parquet")
    exported = write_exports(run.output, exports)
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
        "metrics": _metrics(evolved, written, per_round),
        "per_round": per_round,
    }
    atomic_write_text(run.output / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary
