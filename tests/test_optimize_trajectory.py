"""The trajectory record (`optimization.propose.Trajectory`): the same stored shape and the same
prompt text as the list of f-string-keyed dicts it replaced. The prompt text is part of every
cached optimizer request, so one changed byte would re-pay every call of a resumed run."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from autoevol.data.records import Seed
from autoevol.errors import REQUEST_ERRORS, BadRequestError
from autoevol.evolution.attempt import RewritePolicy, rewrite
from autoevol.llm.client import LLM
from autoevol.llm.endpoint import Endpoint
from autoevol.llm.usage import UsageMeter
from autoevol.methods import load_method
from autoevol.methods.method import EvolvingMethod
from autoevol.optimization.propose import Case, Trajectory, trajectory
from autoevol.prompts import analysis_messages, optimization_messages
from autoevol.types import Completion, CompletionRequest, Usage, user

OLD_RUN = Path(__file__).parent / "data" / "old_runs" / "run" / "run"
INITIAL = load_method("initial")
FINAL = "#Finally Rewritten Instruction#"
POLICY = RewritePolicy(temperature=0.0, max_tokens=1024)


class Scripted:
    """Alpha rewrites to a new harder text each round, Beta answers instead of rewriting (unusable),
    Gamma is rejected by the server: the three kinds of stage a trajectory shows."""

    identity = "trajectory-script"

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    async def complete(self, request: CompletionRequest) -> Completion:
        prompt = request.messages[0].content
        name = next(n for n in ("Alpha", "Beta", "Gamma") if n in prompt)
        self.calls[name] += 1
        if name == "Gamma":
            raise BadRequestError("prompt too long")
        text = f"Step 4 {FINAL}: Alpha task, harder version {self.calls[name]}." if name == "Alpha" else "It is 4."
        return Completion(text=text, finish_reason="stop", usage=Usage(10, 5), model=request.model)

    async def aclose(self) -> None:
        return None


def evol() -> LLM:
    return LLM(Endpoint(Scripted()), model="m", label="openai:m", cache=None, meter=UsageMeter())


BATCH = tuple(Seed(f"s{k}", (user(f"{name} task: add 2 and {k}."),), f"d:{k}")
              for k, name in enumerate(("Alpha", "Beta", "Gamma")))


async def old_trajectory(
    evol: LLM, method: EvolvingMethod, batch: tuple[Seed, ...], rounds: int, policy: RewritePolicy
) -> list[dict[str, Any]]:
    """The code this record replaced, copied unchanged from autoevol/optimization/propose.py at 8055ded."""

    async def one(index: int, item: Seed) -> dict[str, Any]:
        stages: dict[str, Any] = {"id": index, "stage0": item.instruction}
        current = item.instruction
        for stage in range(1, rounds + 1):
            try:
                done = await rewrite(evol, method, current, policy)
            except REQUEST_ERRORS as error:
                stages[f"stage{stage}"] = f"[no rewrite: the evol LLM rejected the request ({error})]"
                break
            if done.instruction is None:
                stages[f"stage{stage}"] = done.raw.strip()
                continue
            current = stages[f"stage{stage}"] = done.instruction
        return stages

    return list(await asyncio.gather(*(one(i, item) for i, item in enumerate(batch))))


async def test_the_record_renders_the_prompts_byte_for_byte_as_the_dicts_did() -> None:
    before = await old_trajectory(evol(), INITIAL, BATCH, 2, POLICY)
    after = await trajectory(evol(), INITIAL, BATCH, 2, POLICY)
    # The scripted world reaches every kind of stage: two usable rewrites, two unusable, one rejected.
    assert [len(case.stages) for case in after.cases] == [3, 3, 2]
    assert after.cases[0].stages[1:] == ("Alpha task, harder version 1.", "Alpha task, harder version 2.")
    assert after.cases[1].stages[1:] == ("It is 4.", "It is 4.")
    assert after.cases[2].stages[1].startswith("[no rewrite: the evol LLM rejected the request (")
    plain = after.plain()
    assert json.dumps(plain) == json.dumps(before)  # same keys, same order, same values
    assert analysis_messages(plain) == analysis_messages(before)
    assert optimization_messages(plain, "feedback", INITIAL) == optimization_messages(before, "feedback", INITIAL)
    # The stored form adds the checks' verdicts after the stages, which the paper's prompt never shows.
    stored = after.to_dict()
    assert [{k: v for k, v in case.items() if k != "verdicts"} for case in stored] == before
    assert [len(case["verdicts"]) for case in stored] == [2, 2, 1]


def test_a_stored_trajectory_from_an_older_run_reads_back_to_the_same_form(tmp_path: Path) -> None:
    shutil.copy(OLD_RUN / "state.db", tmp_path / "state.db")
    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        rows = db.execute("SELECT name, value FROM kv WHERE name LIKE 'opt/%/trajectory'").fetchall()
        records = [json.loads(v) for (v,) in db.execute("SELECT value FROM kv WHERE name LIKE 'opt/%/record'")]
    assert len(rows) == 2 and len(records) == 2
    for _, text in rows:
        read = Trajectory.from_dict(json.loads(text))
        assert json.dumps(read.to_dict(), ensure_ascii=False) == text
        assert all(isinstance(case, Case) and len(case.stages) == 2 for case in read.cases)
    for record in records:
        assert Trajectory.from_dict(record["trajectory"]).to_dict() == record["trajectory"]


@pytest.mark.parametrize("case", [
    {"id": 0, "stage0": "a", "stage2": "c"},  # a gap: stage2 without stage1
    {"id": 0, "stage0": "a", "stage1": "b", "note": "x"},
    {"stage0": "a", "stage1": "b"},
])
def test_a_case_that_is_not_an_id_and_consecutive_stages_is_refused(case: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"an id and stage0\.\.stageN"):
        Trajectory.from_dict([case])


def test_a_well_formed_case_is_read() -> None:
    case = {"id": 3, "stage0": "a", "stage1": "b", "stage2": "c"}
    assert Trajectory.from_dict([case]) == Trajectory((Case(3, ("a", "b", "c")),))
