"""Read a run directory into plain data for the report: nothing here computes or writes.

state.db is opened read-only (a report may be made while a run is going on, or of a copy of a
run on a read-only disk), and a missing part (an `evolve` run has no optimisation, an interrupted
one no summary) is simply absent.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from autoevol.errors import ConfigError, ResumeMismatchError
from autoevol.optimization.records import StepRecord
from autoevol.store.manifest import Manifest


@dataclass(slots=True)
class RunData:
    path: Path
    manifest: Manifest
    summary: dict[str, Any] | None = None
    optimization: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    rounds: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # output rows of each round
    seeds: dict[str, str] = field(default_factory=dict)  # seed id -> instruction, input order
    seed_responses: dict[str, str] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    dev_verdicts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # method id -> seed id -> verdict


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    except ValueError:
        return None


def _events(path: Path) -> list[dict[str, Any]]:
    out = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a kill: the rest of the log is still useful
    return out


def _units(db: sqlite3.Connection, phase: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, payload in db.execute("SELECT key, payload FROM units WHERE phase = ? ORDER BY round, seq", (phase,)):
        yield key, json.loads(payload)


def _kv(db: sqlite3.Connection, name: str) -> Any:
    row = db.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()
    return json.loads(row[0]) if row else None


def _read_state(data: RunData, db: sqlite3.Connection) -> None:
    for _, unit in _units(db, "evolve"):
        row = unit["row"]
        data.rounds.setdefault(row["round"], []).append(row)
        if row["round"] == 1:
            turns = unit["input_turns"]
            data.seeds[row["seed_id"]] = next((t["content"] for t in turns if t["role"] == "user"), "")
            answers = [t["content"] for t in turns if t["role"] == "assistant"]
            if answers:
                data.seed_responses[row["seed_id"]] = answers[-1]
    verdicts: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for key, verdict in _units(db, "score"):
        _, method_id, seed_id = key.split("|", 2)
        verdicts[method_id][seed_id] = verdict
    data.dev_verdicts = dict(verdicts)
    t = 1
    while (stored := _kv(db, f"opt/{t}/record")) is not None:
        data.steps.append(StepRecord.from_dict(stored, where=f"{data.path}: opt/{t}/record"))
        t += 1


def _seeds_from_data(data: RunData) -> None:
    """Dev items of an optimise-only run are not in any evolve unit: read them from the data file."""
    try:
        for seed in replace(data.manifest.source(), on_bad_row="skip").seeds():
            data.seeds.setdefault(seed.seed_id, seed.instruction)
    except Exception:  # the report must not fail because the data file moved or changed
        return


def read_run(path: Path) -> RunData:
    try:
        manifest = Manifest.load(path)
    except ResumeMismatchError as error:
        raise ConfigError(f"{path} is not a readable autoevol run directory ({error})") from None
    data = RunData(path=path, manifest=manifest, summary=_json(path / "output" / "summary.json"),
                   optimization=_json(path / "output" / "optimization.json"), events=_events(path / "events.jsonl"))
    state = path / "state.db"
    if state.exists():
        db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
        try:
            _read_state(data, db)
        finally:
            db.close()
    if data.steps:
        _seeds_from_data(data)
    return data
