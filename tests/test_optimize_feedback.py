"""The optimizer is told what λ counted (evaluator feedback), end to end: against a scripted evol LLM
that loops in Step 1's #Methods List# for half the questions, the analysis prompt names the loop for
exactly the looping cases, the verdicts are stored in the trajectory, the incumbent's failed dev
items are shown with their verdicts, and the optimizer's raw replies are kept in every candidate.
The paper preset keeps the paper's plain JSON trajectory, byte for byte."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from autoevol.api import Roles, optimize_async
from autoevol.config import EvolveSettings, ExecSettings, evolve_settings, optimize_settings
from autoevol.data.source import DataSource
from autoevol.llm.spec import parse_model_spec
from autoevol.methods import load_method
from autoevol.optimization.propose import Case, Shown, StageVerdict, Trajectory
from autoevol.optimization.records import StepRecord
from autoevol.types import Completion, CompletionRequest, Usage
from tests.support.optimize_script import write_data

INITIAL = load_method("initial")
FINAL = "#Finally Rewritten Instruction#:"
ROLES = Roles(evol=parse_model_spec("openai:evol", base_url="http://127.0.0.1:9/v1"),
              optimizer=parse_model_spec("openai:opt", base_url="http://127.0.0.1:9/v1"))
_QUESTION_RE = re.compile(r"Question (\d+):")
_CASE_RE = re.compile(r"^=== Case (\d+) ===$", re.MULTILINE)
LOOP_WORDS = "stopped at the token cap while repeating '2. Replace a verb with a synonym' from item 2 of #Methods List#"


def loops(text: str) -> bool:
    """The script's rule: even questions make the evol LLM loop in Step 1."""
    found = _QUESTION_RE.search(text)
    return found is not None and int(found.group(1)) % 2 == 0


class Evol:
    """Rewrites odd questions properly; for even ones lists one method over and over until the cap."""

    identity = "feedback-evol"

    async def complete(self, request: CompletionRequest) -> Completion:
        last = request.messages[-1].content
        if request.messages[0].role == "system":
            text, finish = "There are 4 apples left, because 6 - 2 = 4.", "stop"
        else:
            instruction = last.rpartition("#Instruction#:")[2].strip()
            if loops(instruction):
                items = "\n".join(f"{n}. Replace a verb with a synonym" for n in range(2, 80))
                text, finish = f"Step 1 #Methods List#:\n1. Add a constraint\n{items}\n80. Replace a ve", "length"
            else:
                harder = f"{instruction} Then say how many are left if he buys 3 more."
                text, finish = f"Step 1 #Methods List#: add a purchase\nStep 4 {FINAL} {harder}", "stop"
        return Completion(text=text, finish_reason=finish, usage=Usage(10, 5), model=request.model)

    async def aclose(self) -> None:
        return None


class Optimizer:
    """Keeps every request; proposes the initial method with one more line, in a fenced block."""

    identity = "feedback-opt"

    def __init__(self) -> None:
        self.requests: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        if len(request.messages) == 1:
            text = "Cases with a looping #Methods List# failed: list at most five methods."
        else:
            text = f"Here it is.\n```Optimized Method\nList at most five methods.\n{INITIAL.template}\n```"
        return Completion(text=text, finish_reason="stop", usage=Usage(10, 5), model=request.model)

    async def aclose(self) -> None:
        return None


def run(tmp_path: Path, preset: str) -> tuple[Optimizer, Path]:
    data = write_data(tmp_path / "data.jsonl", 40)
    out = tmp_path / preset
    optimizer = Optimizer()
    settings = optimize_settings(preset, dev_size=6, batch_size=6, steps=1, candidates=1)
    evolve = evolve_settings(preset)
    asyncio.run(optimize_async(
        DataSource(data), roles=ROLES, out=out, settings=settings, evolve_settings=evolve,
        exec_settings=ExecSettings(quiet=True), backends={"evol": Evol(), "optimizer": optimizer},
    ))
    return optimizer, out


def stored(out: Path, name: str) -> Any:
    with closing(sqlite3.connect(f"file:{out / 'state.db'}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()
    return json.loads(row[0]) if row else None


def case_blocks(prompt: str) -> dict[int, str]:
    """Case id -> its block of the analysis prompt (up to the next case or the dev items)."""
    starts = list(_CASE_RE.finditer(prompt))
    ends = [m.start() for m in starts[1:]] + [prompt.find("\n\nThe same method was also scored", starts[-1].end())]
    return {int(m.group(1)): prompt[m.end():end] for m, end in zip(starts, ends, strict=True)}


def test_the_analysis_prompt_names_the_loop_for_exactly_the_looping_cases(tmp_path: Path) -> None:
    optimizer, out = run(tmp_path, "default")
    trajectory = Trajectory.from_dict(stored(out, "opt/1/trajectory"))
    looping = {case.id for case in trajectory.cases if loops(case.stages[0])}
    assert 0 < len(looping) < len(trajectory.cases)  # the world really is half and half
    analysis = optimizer.requests[0].messages[0].content
    blocks = case_blocks(analysis)
    assert set(blocks) == {case.id for case in trajectory.cases}
    for case_id, block in blocks.items():
        assert (LOOP_WORDS in block) == (case_id in looping), block
        assert ("Stage 1 (usable)" in block) == (case_id not in looping)
        # The loop is cut after a few repeats: the optimizer reads the place, not 78 copies of the line.
        if case_id in looping:
            assert block.count("Replace a verb with a synonym") == 4  # the verdict, then three repeats
            assert block.rstrip().endswith("[... the same lines repeat until the token cap]")
    # The verdicts are stored in the trajectory, and so in the step record.
    for case in trajectory.cases:
        assert case.verdicts is not None
        verdict = case.verdicts[0]
        assert verdict.failed == (case.id in looping)
        if case.id in looping:
            assert (verdict.category, verdict.rule) == ("truncated", "repetition_loop")
            assert verdict.words == "the rewrite " + LOOP_WORDS
    record = StepRecord.from_dict(stored(out, "opt/1/record"))
    assert record.trajectory == trajectory


def test_the_incumbents_failed_dev_items_are_shown_with_their_verdicts(tmp_path: Path) -> None:
    optimizer, _ = run(tmp_path, "default")
    analysis = optimizer.requests[0].messages[0].content
    shown = re.findall(r"=== Held-out item (\d+) \(failed: the rewrite " + re.escape(LOOP_WORDS) + r"\) ===", analysis)
    assert 1 <= len(shown) <= 3, analysis
    assert analysis.count("The method's reply (unusable, so not answered):\nStep 1 #Methods List#:") == len(shown)
    assert analysis.count("Original instruction:\nQuestion ") == len(shown)
    # The rewrite turn is the same chat: the analysis, its reply, then our method-rewrite request.
    rewrite = optimizer.requests[1].messages
    assert rewrite[0].content == analysis and rewrite[1].role == "assistant"
    assert "not with the method applied to an instruction" in rewrite[2].content


def test_the_optimizers_raw_replies_are_kept_in_the_candidate(tmp_path: Path) -> None:
    _, out = run(tmp_path, "default")
    candidate = stored(out, "opt/1/candidates")[0]
    assert candidate["analysis_reply"].startswith("Cases with a looping")
    assert candidate["rewrite_reply"].startswith("Here it is.\n```Optimized Method")
    record = StepRecord.from_dict(stored(out, "opt/1/record"))
    assert record.candidates[0].rewrite_reply == candidate["rewrite_reply"]


def test_the_paper_preset_shows_the_papers_plain_trajectory(tmp_path: Path) -> None:
    optimizer, out = run(tmp_path, "paper")
    plain = [{k: v for k, v in case.items() if k != "verdicts"} for case in stored(out, "opt/1/trajectory")]
    expected = ("Below is a list of cases in which an instruction is evolved, stage by stage, into a more complex "
                "version. In every case, stage 0 is the original instruction, and every later stage is required "
                "to be more complex than the stage before it. Find the cases in which the evolution failed, and "
                "for each one give its case ID and the reasons it failed.\n\n"
                + json.dumps(plain, ensure_ascii=False))
    assert optimizer.requests[0].messages[0].content == expected
    assert optimizer.requests[1].messages[2].content.startswith("The method shown below is the one that was used")
    # The verdicts are still stored (for the report), only not shown.
    assert all("verdicts" in case for case in stored(out, "opt/1/trajectory"))


TINY = Trajectory((Case(0, ("Add 3 and 4.", "Add 3, 4 and 5.")), Case(1, ("Café {json}", "It is 7."))))


def test_the_paper_rendering_is_byte_for_byte_what_it_was() -> None:
    # The text the paper's path sent before evaluator feedback existed (prompts at 913c983).
    expected = ("Below is a list of cases in which an instruction is evolved, stage by stage, into a more complex "
                "version. In every case, stage 0 is the original instruction, and every later stage is required "
                "to be more complex than the stage before it. Find the cases in which the evolution failed, and "
                "for each one give its case ID and the reasons it failed.\n\n"
                '[{"id": 0, "stage0": "Add 3 and 4.", "stage1": "Add 3, 4 and 5."}, '
                '{"id": 1, "stage0": "Café {json}", "stage1": "It is 7."}]')
    with_verdicts = Trajectory(tuple(Case(c.id, c.stages, (StageVerdict(True, "parse_failure", "x", "no"),))
                                     for c in TINY.cases))
    for trajectory in (TINY, with_verdicts):
        messages = Shown(trajectory).analysis()
        assert [m.content for m in messages] == [expected]
        rewrite = Shown(trajectory).rewrite("feedback", INITIAL)
        assert rewrite[2].content.endswith(f"```Method\n{INITIAL.template}\n```")


def test_a_verdictless_stored_trajectory_still_reads_and_stores_as_before() -> None:
    old = [{"id": 0, "stage0": "a", "stage1": "b"}]
    read = Trajectory.from_dict(old)
    assert read.cases[0].verdicts is None and read.to_dict() == old
    shown = Shown(read, ()).analysis()[0].content
    assert "=== Case 0 ===\nStage 0 (the original):\na\nStage 1:\nb" in shown
    assert "held-out" not in shown
    new = [{"id": 0, "stage0": "a", "stage1": "b",
            "verdicts": [{"failed": True, "category": "unchanged_instruction", "rule": "unchanged_instruction",
                          "words": "the final instruction is the original, unchanged"}]}]
    assert Trajectory.from_dict(new).to_dict() == new
    with pytest.raises(ValueError):
        Trajectory.from_dict([{**new[0], "note": "x"}])
    assert "Stage 1 (failed: the final instruction is the original, unchanged):\nb" in (
        Shown(Trajectory.from_dict(new), ()).analysis()[0].content)


def test_older_candidates_without_replies_load_and_store_unchanged() -> None:
    from autoevol.optimization.propose import Candidate

    old = {"index": 0, "feedback": "f", "rejected": "lost_slot", "repaired": None, "method": None}
    candidate = Candidate.from_dict(old)
    assert (candidate.analysis_reply, candidate.rewrite_reply) == (None, None)
    assert candidate.to_dict() == old


def test_the_paper_preset_turns_feedback_off_and_the_field_hashes_only_when_set() -> None:
    assert optimize_settings("paper").shows_feedback is False
    assert optimize_settings("default").shows_feedback is True
    assert optimize_settings("default", rule_set="paper").shows_feedback is False
    assert optimize_settings("paper", evaluator_feedback=True).shows_feedback is True
    assert optimize_settings("default", evaluator_feedback=False).shows_feedback is False
    # Unset it is not hashed, in either preset: runs made before the field existed keep their hash.
    for preset in ("default", "paper"):
        assert "evaluator_feedback" not in optimize_settings(preset).hashed()
    assert optimize_settings("paper", evaluator_feedback=True).hashed()["evaluator_feedback"] is True
    dumped = EvolveSettings().model_dump(mode="json")
    assert EvolveSettings().hashed() == {k: v for k, v in dumped.items() if k not in EvolveSettings.LATE_FIELDS}


def test_a_paper_run_recorded_before_the_field_resumes_with_the_papers_prompts() -> None:
    from autoevol.config import OptimizeSettings

    recorded = optimize_settings("paper").model_dump(mode="json")
    for late in OptimizeSettings.LATE_FIELDS:
        recorded.pop(late)  # what a manifest written before the late fields holds
    loaded = OptimizeSettings(**recorded)
    assert loaded.hashed() == recorded and loaded == optimize_settings("paper")
    assert loaded.shows_feedback is False


def test_a_dev_failure_says_whether_the_rewrite_or_the_answer_failed() -> None:
    from autoevol.optimization.propose import DevFailure, dev_failures_text
    from autoevol.optimization.score import ItemVerdict

    asked_back = DevFailure.of(ItemVerdict("d1", True, "loss_of_key_information", "contains_please_provide",
                                           "Sum the list, then sort it.", "Please provide the list."), "Sum a list.")
    answered = DevFailure.of(ItemVerdict("d2", True, "answered_instead", "answer_statement",
                                         f"Step 4 {FINAL} The answer is 72.", ""))
    assert asked_back.words.startswith("the answer says information is missing")
    assert answered.words == "the final instruction states the answer instead of asking a harder question"
    text = dev_failures_text([asked_back, answered])
    assert ("=== Held-out item 1 (failed: the answer says information is missing or the task is not possible "
            "(rule contains_please_provide)) ===\nOriginal instruction:\nSum a list.\nEvolved instruction:\n"
            "Sum the list, then sort it.\nAnswer:\nPlease provide the list.") in text
    assert "=== Held-out item 2 (failed: the final instruction states the answer" in text
    assert "The method's reply (unusable, so not answered):\nStep 4" in text
    assert dev_failures_text([]) == ""
