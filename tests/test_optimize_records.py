"""The typed step record: its stored form round-trips, carries a version, and a record written by
another version stops a resume with a clear error instead of a KeyError."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from autoevol.api import Roles, optimize_async
from autoevol.cli.support import print_step
from autoevol.config import EvolveSettings, ExecSettings, OptimizeSettings
from autoevol.data.source import DataSource
from autoevol.errors import ResumeMismatchError
from autoevol.llm.spec import parse_model_spec
from autoevol.optimization.job import OptimizeOutcome
from autoevol.optimization.records import RECORD_VERSION, StepRecord
from tests.support.optimize_script import Child, scripted_world, write_data

ROLES = Roles(evol=parse_model_spec("openai:evol", base_url="http://127.0.0.1:9/v1"),
              optimizer=parse_model_spec("openai:opt", base_url="http://127.0.0.1:9/v1"))
SETTINGS = OptimizeSettings(dev_size=10, batch_size=3, steps=2, candidates=3)
PLAN = {"e0": [Child("a", 2), Child("b", 8), Child(kind="no_block")], "a": [Child("c", 2), Child("d", 9)]}


def optimize(data: Path, out: Path, seen: list[StepRecord] | None = None) -> OptimizeOutcome:
    return asyncio.run(optimize_async(
        DataSource(data), roles=ROLES, out=out, settings=SETTINGS, evolve_settings=EvolveSettings(),
        exec_settings=ExecSettings(quiet=True), backends=scripted_world(PLAN).backends,
        on_step=None if seen is None else seen.append,
    ))


def stored_record(run: Path, step: int) -> dict[str, Any]:
    with closing(sqlite3.connect(f"file:{run / 'state.db'}?mode=ro", uri=True)) as db:
        return json.loads(db.execute("SELECT value FROM kv WHERE name = ?", (f"opt/{step}/record",)).fetchone()[0])


def rewrite_record(run: Path, step: int, data: dict[str, Any]) -> None:
    with closing(sqlite3.connect(run / "state.db")) as db, db:
        db.execute("UPDATE kv SET value = ? WHERE name = ?", (json.dumps(data), f"opt/{step}/record"))


def test_the_record_round_trips_and_the_report_explains_every_candidate(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.jsonl", 40)
    seen: list[StepRecord] = []
    outcome = optimize(data, tmp_path / "run", seen)
    first, second = outcome.history
    stored = stored_record(tmp_path / "run", 1)
    assert stored["version"] == RECORD_VERSION and seen[0].to_dict() == stored  # on_step gets the typed record
    assert StepRecord.from_dict(stored) == first
    assert first.selected == 0 and second.selected is None and second.selected_label == "kept incumbent"
    report = json.loads((tmp_path / "run" / "output" / "optimization.json").read_text(encoding="utf-8"))
    one, two = report["steps"]
    assert one["selected"] == 0 and two["selected"] == "kept incumbent" and one["decided_by"] == "lambda"
    assert [c["outcome"] for c in one["candidates"]] == ["selected", "higher_lambda", "discarded"]
    assert "no_optimized_method_block" in one["candidates"][2]["why"]
    # c behaves exactly like its parent a (same λ, same length ratio): the incumbent keeps its place.
    assert [c["outcome"] for c in two["candidates"]] == ["lost_tie_break", "higher_lambda", "discarded"]
    assert "same dev λ" in two["candidates"][0]["why"] and "incumbent keeps its place" in two["candidates"][0]["why"]
    assert two["decided_by"] == "index"
    assert report["lambda_history"][1]["selected"] == "kept incumbent"


@pytest.mark.parametrize("damage", ["old_version", "no_version", "missing_field"])
def test_a_record_from_another_version_stops_a_resume_with_a_clear_error(tmp_path: Path, damage: str) -> None:
    data = write_data(tmp_path / "data.jsonl", 40)
    run = tmp_path / "run"
    optimize(data, run)
    record = stored_record(run, 1)
    if damage == "old_version":
        record["version"] = 1
    elif damage == "no_version":
        del record["version"]  # what the dict records of earlier releases look like
    else:
        del record["outcomes"]
    rewrite_record(run, 1, record)
    with pytest.raises(ResumeMismatchError) as info:
        optimize(data, run)
    message = str(info.value)
    assert "opt/1/record" in message and "new --out directory" in message
    if damage != "missing_field":
        assert "another autoevol version" in message


def test_print_step_reads_either_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_data(tmp_path / "data.jsonl", 40)
    outcome = optimize(data, tmp_path / "run")
    print_step(outcome.history[0])
    print_step(outcome.history[1].to_dict())
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("step 1: λ=") and "candidate 0" in first and "discarded: no_optimized_method_block" in first
    assert second.startswith("step 2: λ=") and "kept incumbent" in second
    assert outcome.history[1].method.id in second
