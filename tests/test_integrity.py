"""Regression tests for rows that used to go wrong silently (issue: trustworthy rows), through the
public API with scripted backends: the paper's final pass keeps every row, a row sent back to the
Evol-Instruct pool can succeed, `--method` is never silently ignored, rows name every model that
shaped them, and `--math-answers` does not change how λ is measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autoevol.api import Roles, _chosen_by, evolve_async, resolve_methods
from autoevol.config import EvolveSettings, ExecSettings, evolve_settings, optimize_settings
from autoevol.data.source import DataSource
from autoevol.errors import BadRequestError, ConfigError
from autoevol.llm.fake import ScriptedBackend
from autoevol.llm.spec import ModelSpec
from autoevol.methods import load_method
from autoevol.prompts import load_template
from autoevol.types import CompletionRequest
from tests.support.optimize_script import World, evol_reply, scripted_world
from tests.support.optimize_script import write_data as write_questions
from tests.test_evolve_pipeline import Script, assert_reconciles, outputs, run, write_jsonl
from tests.test_optimize_loop import SMALL, optimize

JUDGE = ModelSpec(kind="openai", model="judge", base_url="http://fake.invalid/v1", max_retries=0)
EVOL = ModelSpec(kind="openai", model="fake", base_url="http://fake.invalid/v1", max_retries=0)


def seeds(tmp_path: Path, *instructions: str) -> Path:
    return write_jsonl(tmp_path / "seeds.jsonl", [{"instruction": text} for text in instructions])


async def test_paper_final_pass_keeps_every_row_as_the_reference_code(tmp_path: Path) -> None:
    data = seeds(tmp_path, "Add 2 and 3.", "Plan a trip [stagnant]", "List primes [parse]")
    result = await run(data, tmp_path / "run", Script(), evolve_settings("paper"))
    assert_reconciles(result)
    evolved, problems, _ = outputs(result)
    assert problems == []
    by_parent = {r["parent_instruction"]: r for r in evolved}
    # A Table 5 answer is kept (the paper does not filter its final data) ...
    assert by_parent["Plan a trip [stagnant]"]["response"] == "What would you like me to explain first?"
    # ... and a reply without the marker is answered whole, as the authors' code does.
    whole = "Step 1 #Methods List#: I would rather not rewrite this one."
    assert by_parent["List primes [parse]"]["instruction"] == whole


class FlakyOnce(Script):
    """Evol-Instruct methods: the first request for a `[flaky]` row comes back unchanged."""

    def evolve(self, method: Any, instruction: str) -> str:
        request = self.requests[-1]
        if "[flaky]" in instruction and request.sample_index == 0:
            return instruction
        return super().evolve(method, instruction)


async def test_a_row_sent_back_to_the_pool_is_asked_anew_and_can_be_accepted(tmp_path: Path) -> None:
    settings = evolve_settings("evol-instruct", rounds=2, mix="all")
    methods = resolve_methods(None, settings)
    data = seeds(tmp_path, "Add 2 and 3 [flaky]", "Name three colours.")
    result = await run(data, tmp_path / "run", FlakyOnce(methods), settings, methods=methods)
    assert_reconciles(result)
    rounds = result.summary["rounds"]
    assert (rounds[0]["accepted"], rounds[0]["rejected"]) == (1, 1)
    assert rounds[1]["accepted"] == 2  # the flaky row, back from the pool, is a new request and succeeds
    evolved, _, _ = outputs(result)
    flaky = [r for r in evolved if "[flaky]" in r["parent_instruction"]]
    assert [(r["round"], r["parent_id"]) for r in flaky] == [(2, None)]


def test_evolve_with_the_evol_instruct_preset_refuses_a_method() -> None:
    with pytest.raises(ConfigError, match="--method initial conflicts with the preset's operations"):
        resolve_methods("initial", evolve_settings("evol-instruct"))
    assert [m.name for m in resolve_methods(None, evolve_settings("default"))] == ["initial"]


async def test_rows_name_the_judge_and_the_optimizer_that_shaped_them(tmp_path: Path) -> None:
    data = seeds(tmp_path, "Add 2 and 3.")
    settings = evolve_settings("default", rule_set="elimination")  # W1's judge comes with these rules
    backend = ScriptedBackend(Script(), identity="scripted")
    result = await run(data, tmp_path / "run", backend, settings, roles=Roles(evol=EVOL, judge=JUDGE),
                       backends={"evol": backend, "judge": backend})
    evolved, _, _ = outputs(result)
    assert [(r["judge_model"], r["optimizer_model"]) for r in evolved] == [("openai:judge", None)]
    chosen = load_method("initial").derive("x {instruction}")
    lineage = {"selected_on": {"models": {"optimizer": {"kind": "openai", "model": "openai:gpt-4o"}}}}
    chosen = type(chosen).from_dict(chosen.to_dict() | {"lineage": lineage})
    assert _chosen_by((chosen,)) == "openai:gpt-4o"


def test_math_answers_do_not_change_how_dev_items_are_answered(tmp_path: Path) -> None:
    data = write_questions(tmp_path / "data.jsonl", 40)
    seen: list[CompletionRequest] = []

    def recording(request: CompletionRequest) -> str:
        seen.append(request)
        return evol_reply([m.to_dict() for m in request.messages], 5)

    base = scripted_world({"e0": []})
    world = World(ScriptedBackend(recording, identity="recording-evol"), base.optimizer)
    optimize(data, tmp_path / "run", world, optimize_settings("default", **SMALL),
             evolve=evolve_settings("default", math_answers=True))
    systems = {r.messages[0].content for r in seen if r.messages[0].role == "system"}
    assert systems == {load_template("respond_system")}


class Rejecting(Script):
    """The server refuses every `[toolong]` row outright (a 400: asking again cannot help)."""

    def evolve(self, method: Any, instruction: str) -> str:
        if "[toolong]" in instruction:
            raise BadRequestError("400: this model's maximum context length is 4096 tokens")
        return super().evolve(method, instruction)


async def test_rows_the_server_rejects_fail_once_and_never_stop_the_run(tmp_path: Path) -> None:
    data = seeds(tmp_path, *[f"Summarise document {i} [toolong]" for i in range(30)], "Add 2 and 3.")
    backend = ScriptedBackend(Rejecting(), identity="rejecting")
    # 30 deterministic failures in a row: more than the 25 that mean "the server is down".
    first = await run(data, tmp_path / "run", backend, EvolveSettings())
    assert_reconciles(first)
    assert first.summary["rounds"][0]["failed"] == 30
    _, problems, _ = outputs(first)
    assert {(r["failure_category"], r["error"].split(":")[0]) for r in problems} == {
        ("request_error", "BadRequestError")
    }
    calls = backend.calls
    again = await run(data, tmp_path / "run", backend, EvolveSettings())
    assert backend.calls == calls  # nothing to retry: the same request would fail the same way
    assert again.summary["rounds"][0]["failed"] == 30
    await evolve_async(DataSource(data), methods=(load_method("initial"),), roles=Roles(evol=EVOL),
                       out=tmp_path / "run", settings=EvolveSettings(),
                       exec_settings=ExecSettings(quiet=True, retry_failed=True), backends={"evol": backend})
    assert backend.calls == calls + 30  # asked for: every rejected row is tried once more
