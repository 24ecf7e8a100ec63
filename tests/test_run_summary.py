"""summary.json accounts for the whole run: usage and wall time add up over every invocation that
worked on the run directory (a stop, a resume, a rerun), and each invocation is listed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoevol.api import Roles, evolve_async
from autoevol.config import EvolveSettings, ExecSettings
from autoevol.data.source import DataSource
from autoevol.errors import BudgetExhausted
from autoevol.llm.fake import ScriptedBackend
from autoevol.methods import load_method
from autoevol.store.invocations import merge_usage
from tests.test_evolve_pipeline import EVOL, Script, write_jsonl

SEEDS = [{"id": f"r{i}", "instruction": f"Add {i} and {2 * i}", "output": str(3 * i)} for i in range(8)]


def paid(summary: dict[str, Any]) -> int:
    return sum(entry["paid_calls"] for entry in summary["usage"])


async def test_usage_and_wall_time_add_up_over_invocations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_jsonl(tmp_path / "seeds.jsonl", SEEDS)
    out = tmp_path / "run"
    one_at_a_time = Roles(evol=EVOL.model_copy(update={"concurrency": 1}))

    async def invoke(backend: ScriptedBackend, max_calls: int | None = None) -> dict[str, Any]:
        await evolve_async(DataSource(data), methods=(load_method("initial"),), roles=one_at_a_time, out=out,
                           settings=EvolveSettings(rounds=1), exec_settings=ExecSettings(quiet=True,
                                                                                         max_calls=max_calls),
                           backends={"evol": backend})
        return dict(json.loads((out / "output" / "summary.json").read_text(encoding="utf-8")))

    # Each invocation gets a fresh response cache, so every call it makes is paid.
    monkeypatch.setenv("AUTOEVOL_HOME", str(tmp_path / "home-1"))
    first = ScriptedBackend(Script())
    with pytest.raises(BudgetExhausted):
        await invoke(first, max_calls=5)
    stopped = json.loads((out / "output" / "summary.json").read_text(encoding="utf-8"))
    assert paid(stopped) == first.calls == 5
    assert [i["status"] for i in stopped["invocations"]] == ["stopped"]

    monkeypatch.setenv("AUTOEVOL_HOME", str(tmp_path / "home-2"))
    second = ScriptedBackend(Script())
    finished = await invoke(second)
    assert second.calls > 0
    # The run's cost, not the last process's: what the stopped invocation paid is still counted.
    assert paid(finished) == first.calls + second.calls >= 2 * len(SEEDS)
    listed = finished["invocations"]
    assert [(i["command"], i["status"], i["paid_calls"]) for i in listed] == [
        ("evolve", "stopped", first.calls), ("evolve", "finished", second.calls)]
    assert finished["seconds"] == pytest.approx(sum(i["seconds"] for i in listed), abs=0.02)
    assert finished["seconds"] >= stopped["seconds"]

    third = ScriptedBackend(Script())
    rerun = await invoke(third)  # nothing left to do
    assert third.calls == 0 and paid(rerun) == paid(finished)
    assert [i["status"] for i in rerun["invocations"]] == ["stopped", "finished", "finished"]


def test_merge_usage_sums_every_counter_per_model_and_phase() -> None:
    a = [{"model": "m", "phase": "evolve", "calls": 2, "errors": 1, "retries": 3},
         {"model": "m", "phase": "respond", "calls": 1}]
    b = [{"model": "m", "phase": "evolve", "calls": 5, "errors": 0, "retries": 2}]
    assert merge_usage([a, b, []]) == [{"model": "m", "phase": "evolve", "calls": 7, "errors": 1, "retries": 5},
                                       {"model": "m", "phase": "respond", "calls": 1}]
