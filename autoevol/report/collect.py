"""Read a run directory into plain data for the report: nothing here computes or writes.

state.db is opened read-only (a report may be made while a run is going on, or of a copy of a
run on a read-only disk), and a missing part (an `evolve` run has no optimisation, an interrupted
one no summary) is simply absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from autoevol.errors import ConfigError, ResumeMismatchError
from autoevol.evolution.units import stored_units
from autoevol.optimization.records import StepRecord, stored_steps, stored_verdicts
from autoevol.store.manifest import Manifest
from autoevol.store.run import StateDB


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


def _read_state(data: RunData, state: StateDB) -> None:
    for unit in stored_units(state):
        row = unit.row.to_dict()
        data.rounds.setdefault(unit.row.round, []).append(row)
        if unit.row.round == 1:
            data.seeds[unit.row.seed_id] = unit.first_user
            if (answer := unit.last_answer) is not None:
                data.seed_responses[unit.row.seed_id] = answer
    data.dev_verdicts = {method_id: {seed_id: verdict.to_dict() for seed_id, verdict in by_seed.items()}
                         for method_id, by_seed in stored_verdicts(state).items()}
    data.steps.extend(stored_steps(state, data.path))


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
        db = StateDB.read_only(state)
        try:
            _read_state(data, db)
        finally:
            db.close()
    if data.steps:
        _seeds_from_data(data)
    return data
