"""Answering instead of evolving (the paper's Fig. 1) is a failure wherever a rule set filters: the
final pass rejects the row (after its sampled re-ask), λ counts the dev item at once, and the paper's
final pass (`--rule-set none`) keeps it. The detector itself is tested in test_detect_answering.py;
here the worlds are whole rows and dev items, through the same policies the phases build."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autoevol.config import evolve_settings, optimize_settings
from autoevol.data.records import Seed
from autoevol.detect.answering import answered_instead
from autoevol.evolution.attempt import answer_handling
from autoevol.evolution.steps import Job, Models, run_job
from autoevol.llm.client import LLM
from autoevol.llm.endpoint import Endpoint
from autoevol.llm.usage import UsageMeter
from autoevol.methods import load_method
from autoevol.optimization.job import scoring_policies
from autoevol.optimization.score import DevScorer
from autoevol.types import Completion, CompletionRequest, Usage, user

INITIAL = load_method("initial")
FINAL = "#Finally Rewritten Instruction#"
QUESTION = "Natalia sold clips to 48 of her friends in April, and half as many in May. How many did she sell?"
ANSWERS = "The answer is 72."
EVOLVED = ("Natalia sold clips to 48 friends in April, half as many in May and 10 more in June. "
           "How many did she sell in all?")


class Scripted:
    """Rewrites with `rewrites[sample_index]` (the last one for later samples); answers "Seventy-two"."""

    identity = "answered-instead-script"

    def __init__(self, *rewrites: str) -> None:
        self.rewrites = rewrites
        self.asked: list[int] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        if request.messages[0].role == "system":
            text = "She sold 48 + 24 = 72 clips."
        else:
            self.asked.append(request.sample_index)
            final = self.rewrites[min(request.sample_index, len(self.rewrites) - 1)]
            text = f"Step 1 #Methods List#: add a month\nStep 4 {FINAL}: {final}"
        return Completion(text=text, finish_reason="stop", usage=Usage(10, 5), model=request.model)

    async def aclose(self) -> None:
        return None


def llm(backend: Scripted) -> LLM:
    return LLM(Endpoint(backend), model="m", label="openai:m", cache=None, meter=UsageMeter())


JOB = Job(seed_id="s0", seq=0, round=1, turns=(user(QUESTION),), parent_id=None)


async def final_pass(backend: Scripted, **settings: object) -> tuple[str, str | None, str | None]:
    evolve = evolve_settings("default", **settings)
    row = await run_job(JOB, INITIAL, Models(llm(backend), llm(backend)), evolve)
    return row.status, row.failure_category, row.failure_rule


async def test_a_final_pass_row_that_states_the_answer_is_rejected_with_its_own_category() -> None:
    backend = Scripted(ANSWERS)
    assert await final_pass(backend) == ("rejected", "answered_instead", "answer_statement")
    assert backend.asked == [0, 1]  # re-asked once, sampling, as an unparsable rewrite is


async def test_the_final_pass_re_ask_can_still_evolve_the_row() -> None:
    backend = Scripted(ANSWERS, EVOLVED)
    assert await final_pass(backend) == ("accepted", None, None)


async def test_the_papers_final_pass_keeps_the_answer_as_it_keeps_every_row() -> None:
    backend = Scripted(ANSWERS)
    assert await final_pass(backend, rule_set="none") == ("accepted", None, None)
    assert backend.asked == [0]


async def test_every_filtering_rule_set_rejects_it_and_a_legitimate_evolution_passes() -> None:
    for rule_set in ("paper", "extended", "elimination"):
        assert (await final_pass(Scripted("72"), rule_set=rule_set))[1:] == ("answered_instead", "bare_result")
    assert await final_pass(Scripted(EVOLVED)) == ("accepted", None, None)


Scoring = Callable[[Scripted], DevScorer]


def scorer(preset: str) -> Scoring:
    policies = scoring_policies(optimize_settings(preset), evolve_settings(preset))
    return lambda backend: DevScorer(llm(backend), *policies)


async def test_a_dev_item_that_answers_counts_in_lambda_without_a_re_ask() -> None:
    for preset in ("default", "paper"):
        backend = Scripted(ANSWERS, EVOLVED)  # a re-ask would evolve it and hide the failure
        verdict = await scorer(preset)(backend).verdict(INITIAL, Seed("d0", (user(QUESTION),), "d:0"))
        assert (verdict.failed, verdict.category, verdict.rule) == (True, "answered_instead", "answer_statement")
        assert backend.asked == [0]
        assert ANSWERS in verdict.instruction  # the raw rewrite is kept for the optimizer and the report
    backend = Scripted(EVOLVED)
    verdict = await scorer("default")(backend).verdict(INITIAL, Seed("d0", (user(QUESTION),), "d:0"))
    assert not verdict.failed


def test_each_phase_handles_answers_as_its_rule_set_says() -> None:
    assert answer_handling("extended", final_pass=True) == "retry"
    assert answer_handling("none", final_pass=True) == "keep"
    assert answer_handling("paper", final_pass=False) == "reject"
    assert answer_handling("none", final_pass=False) == "keep"


@pytest.mark.parametrize("evolved", [
    # Korean requests: the polite imperative, the formal one, a question by ending or by asking word.
    "나탈리아는 4월에 친구 48명에게 클립을 팔았고, 5월에는 그 절반을 팔았습니다. "
    "두 달 동안 판매한 클립의 총합을 구하세요.",
    "4월에 48개, 5월에 그 절반을 팔았다. 6월에 10개를 더 팔았다면 모두 몇 개인지 계산하시오",
    "4월에 48개, 5월에 그 절반, 6월에 10개를 팔았다면 모두 얼마입니까",
])
def test_a_korean_instruction_with_numbers_of_its_own_is_not_an_answer(evolved: str) -> None:
    assert answered_instead(evolved, QUESTION) is None


def test_a_korean_statement_of_the_result_is_an_answer() -> None:
    assert answered_instead("나탈리아는 두 달 동안 모두 72개의 클립을 팔았습니다.", QUESTION) == "result_of_question"
