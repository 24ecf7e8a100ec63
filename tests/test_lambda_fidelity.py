"""λ measures what the paper measures (issue 15, item 1; review fidelity-t3 H1, H2, M1, M3, M7, L2, L5).

Every world here has a scripted server that honours `max_tokens` the way a real one does: it writes
its reply up to the cap (four characters a token) and then says `finish_reason: length`. So a cap
that is too small cuts a legitimate reply, and a loop runs into whatever cap it is given.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from autoevol.config import evolve_settings, optimize_settings
from autoevol.data.records import OutputRow, Seed
from autoevol.detect import OK, detect, parse_equal_judgement
from autoevol.evolution.attempt import rewrite
from autoevol.evolution.steps import Job, Models, answer_policy, rewrite_policy, run_job
from autoevol.llm.client import LLM
from autoevol.llm.endpoint import Endpoint
from autoevol.llm.usage import UsageMeter
from autoevol.methods import load_method
from autoevol.methods.method import EvolvingMethod
from autoevol.optimization.job import scoring_policies
from autoevol.optimization.score import DevScorer
from autoevol.report.html import write_report
from autoevol.types import Completion, CompletionRequest, Usage, user
from tests.test_evolve_pipeline import Script, outputs, run, write_jsonl

INITIAL = load_method("initial")
NATALIA = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
           "How many clips did Natalia sell altogether in April and May?")
CHARS_PER_TOKEN = 4
Reply = Callable[[CompletionRequest], str]


class CapHonouring:
    """A server that writes `reply(request)` and cuts it at the request's token cap."""

    identity = "cap-honouring"

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        text = self.reply(request)
        room = (request.max_tokens or 10**9) * CHARS_PER_TOKEN
        cut = len(text) > room
        return Completion(text=text[:room], finish_reason="length" if cut else "stop",
                          usage=Usage(10, min(len(text), room) // CHARS_PER_TOKEN), model=request.model)

    async def aclose(self) -> None:
        return None

    def caps(self, kind: str) -> list[int | None]:
        return [r.max_tokens for r in self.requests if role_of(r) == kind]


def role_of(request: CompletionRequest) -> str:
    if request.messages[0].role == "system":
        return "answer"
    return "judge" if "Equal or Not Equal" in request.messages[-1].content else "rewrite"


def llm(backend: CapHonouring) -> LLM:
    return LLM(Endpoint(backend), model="m", label="openai:m", cache=None, meter=UsageMeter())


def seven_sections(instruction: str) -> str:
    """A reply shaped like the paper's step-12 method (Fig. 13), about 700 tokens, for `instruction`."""
    filler = ("The problem is kept solvable and every quantity stays well defined, so the rewritten "
              "question remains answerable with a single numeric result. ")
    sections = ["#Elements Identification#", "#Complexity Additions#", "#Plan#", "#Rewritten Instruction#",
                "#Revision#", "#Consistency Check#"]
    body = "".join(f"Step {i} {name}:\n{filler * 3}\n\n" for i, name in enumerate(sections, start=1))
    final = instruction + " In June she sold 12 more clips than in May; how many did she sell in all three months?"
    return body + f"Step 7 #Finally Rewritten Instruction#:\n{final}\n"


WORDS = ("clips friends April May June half total sold each month count sum double twice more fewer price "
         "store order pack box week day plan check answer step value number result case rule reason").split()


def long_answer() -> str:
    """A legitimate answer of about 2,000 tokens that never repeats itself (a seeded word salad)."""
    pick = random.Random(15)
    sentences = (" ".join(pick.choice(WORDS) for _ in range(pick.randint(6, 14))).capitalize() + "."
                 for _ in range(150))
    return " ".join(sentences)


def looping(prefix: str) -> str:
    return prefix + "10. Replace a verb with a synonym. " * 400


def final_reply(instruction: str) -> str:
    return f"Step 1 #Methods List#: add a month\nStep 4 #Finally Rewritten Instruction#: {instruction} Add June."


# H1: a cut-off answer under `paper` and under `default` ------------------------------------------------


def answering(answer: Callable[[], str]) -> CapHonouring:
    def reply(request: CompletionRequest) -> str:
        if role_of(request) == "answer":
            return answer()
        return final_reply(NATALIA)
    return CapHonouring(reply)


def job() -> Job:
    return Job(seed_id="s1", seq=0, round=1, turns=(user(NATALIA),), parent_id=None)


async def final_row(preset: str, backend: CapHonouring) -> OutputRow:
    settings = evolve_settings(preset)
    return await run_job(job(), INITIAL, Models(evol=llm(backend), responder=llm(backend)), settings)


async def dev_verdict(preset: str, backend: CapHonouring) -> tuple[bool, str | None, str | None]:
    scorer = DevScorer(llm(backend), *scoring_policies(optimize_settings(preset), evolve_settings(preset)))
    verdict = await scorer.verdict(INITIAL, Seed("d1", (user(NATALIA),), "dev:1"))
    return verdict.failed, verdict.category, verdict.rule


async def test_paper_counts_no_cut_off_answer_in_lambda_and_keeps_the_row_flagged() -> None:
    assert await dev_verdict("paper", answering(long_answer)) == (False, None, None)
    backend = answering(long_answer)
    row = await final_row("paper", backend)
    assert (row.status, row.answer_cut) == ("accepted", True)
    assert backend.caps("answer") == [1500]  # asked once, at the reference code's cap


async def test_default_reasks_a_cut_off_answer_once_at_twice_the_cap() -> None:
    backend = answering(long_answer)
    row = await final_row("default", backend)
    assert (row.status, row.answer_cut) == ("accepted", False)
    assert backend.caps("answer") == [1500, 3000]
    scored = answering(long_answer)
    assert (await dev_verdict("default", scored))[0] is False
    assert scored.caps("answer") == [1500, 3000]


async def test_a_looping_answer_is_still_truncated_in_default() -> None:
    backend = answering(lambda: looping("Let me list the options. "))
    row = await final_row("default", backend)
    assert (row.status, row.failure_category, row.failure_rule) == ("rejected", "truncated", "repetition_loop")
    assert backend.caps("answer") == [1500, 3000]


async def test_an_answer_that_fits_is_asked_once_and_not_flagged() -> None:
    backend = answering(lambda: "She sold 48 + 24 = 72 clips.")
    row = await final_row("default", backend)
    assert (row.status, row.answer_cut, backend.caps("answer")) == ("accepted", False, [1500])


def test_the_default_answer_cap_is_the_reference_codes() -> None:
    assert evolve_settings("default").respond_max_tokens == 1500
    assert evolve_settings("paper").respond_max_tokens == 1500


def test_a_row_stored_before_answer_cut_existed_still_decodes() -> None:
    stored = {k: v for k, v in OutputRow(
        id="s#r1", seed_id="s", round=1, parent_id=None, method_id="m", evol_model="e", responder_model="r",
        status="accepted", failure_category=None, failure_rule=None, error=None, instruction="i", response="a",
        messages=(), parent_instruction="p").to_dict().items() if k not in ("answer_cut", "judge_unparsable")}
    row = OutputRow.from_dict(stored)
    assert (row.answer_cut, row.judge_unparsable) == (False, False)


# H2: the rewrite cap follows the method ---------------------------------------------------------------


def step12_method() -> EvolvingMethod:
    sections = ["#Elements Identification#", "#Complexity Additions#", "#Plan#", "#Rewritten Instruction#",
                "#Revision#", "#Consistency Check#", "#Finally Rewritten Instruction#"]
    lines = "\n".join(f"Step {i} {name}:" for i, name in enumerate(sections, start=1))
    template = ("You are an Instruction Rewriter. Rewrite the #Instruction# into a more complex version.\n"
                f"Please reply strictly in the following format:\n{lines}\n\n#Instruction#:\n{{instruction}}")
    return EvolvingMethod("step-12", template)


def rewriting(reply: Reply) -> CapHonouring:
    def answer_or_rewrite(request: CompletionRequest) -> str:
        return "She sold 72 clips." if role_of(request) == "answer" else reply(request)
    return CapHonouring(answer_or_rewrite)


@pytest.mark.parametrize("preset", ["paper", "default"])
async def test_a_seven_section_rewrite_of_700_tokens_parses(preset: str) -> None:
    method = step12_method()
    assert method.declared_steps == 7
    assert 600 < len(seven_sections(NATALIA)) // CHARS_PER_TOKEN < 800
    backend = rewriting(lambda r: seven_sections(NATALIA))
    scorer = DevScorer(llm(backend), *scoring_policies(optimize_settings(preset), evolve_settings(preset)))
    verdict = await scorer.verdict(method, Seed("d1", (user(NATALIA),), "dev:1"))
    assert (verdict.failed, verdict.category) == (False, None)
    assert "June" in verdict.instruction
    assert len(backend.caps("rewrite")) == 1  # the method's own cap has room: no second request


async def test_a_rewrite_cut_below_the_ceiling_is_asked_again_at_the_ceiling() -> None:
    # The weak method declares one section, so its first cap is small; a long, detailed (and
    # legitimate) instruction outgrows it and must come back whole from the ceiling.
    weak = load_method("weak")
    detailed = NATALIA + " " + long_answer()[:2400]
    backend = rewriting(lambda r: detailed)
    policy = rewrite_policy(evolve_settings("default"), 1, "evolve")
    done = await rewrite(llm(backend), weak, NATALIA, policy)
    first, *rest = backend.caps("rewrite")
    assert first < len(detailed) // CHARS_PER_TOKEN < 1536
    assert rest == [1536]
    assert (done.instruction, done.verdict) == (detailed, OK)


@pytest.mark.parametrize("preset", ["paper", "default"])
async def test_a_looping_rewrite_is_a_repetition_loop_at_the_ceiling(preset: str) -> None:
    backend = rewriting(lambda r: looping("Step 1 #Methods List#:\n"))
    failed, category, rule = await dev_verdict(preset, backend)
    assert (failed, category, rule) == (True, "truncated", "repetition_loop")
    assert backend.caps("rewrite")[-1] == 1536
    assert len(set(backend.caps("rewrite"))) == 2  # the method's cap, then the ceiling


# M1: λ in `default` uses the reference code's substrings; the final filter the narrowed ones ------------

UNSOLVABLE = (
    "Based on the given information, it is not possible to determine how many apples John has.",
    "It is not possible to solve this problem because the conditions contradict each other.",
    "It is not possible to determine the answer with the given data.",
)


@pytest.mark.parametrize("sentence", UNSOLVABLE)
def test_not_possible_fails_default_lambda_and_passes_the_default_filter(sentence: str) -> None:
    scoring = optimize_settings("default").rule_set
    final = evolve_settings("default").rule_set
    assert scoring != final
    assert detect(sentence, rule_set=scoring).failed
    assert not detect(sentence, rule_set=final).failed


async def test_a_not_possible_answer_is_a_dev_failure_in_default() -> None:
    backend = answering(lambda: UNSOLVABLE[0])
    assert await dev_verdict("default", backend) == (True, "loss_of_key_information", "contains_not_possible")


# M3 / L5: the judge ----------------------------------------------------------------------------------


def judged(verdict: str) -> CapHonouring:
    def reply(request: CompletionRequest) -> str:
        kind = role_of(request)
        if kind == "judge":
            return verdict
        return "She sold 72 clips." if kind == "answer" else final_reply(NATALIA)
    return CapHonouring(reply)


async def judged_row(backend: CapHonouring, **overrides: object) -> OutputRow:
    settings = evolve_settings("evol-instruct", operations=(), **overrides)
    models = Models(evol=llm(backend), responder=llm(backend))
    return await run_job(job(), INITIAL, models, settings)


async def test_a_judge_cut_at_its_cap_passes_as_judge_unparsable() -> None:
    backend = judged("Comparing the two instructions carefully, the first one asks about April and May " * 5)
    row = await judged_row(backend)
    assert (row.status, row.judge_unparsable) == ("accepted", True)
    assert backend.caps("judge") == [64]


async def test_the_judges_cap_is_a_setting() -> None:
    backend = judged("Comparing the two instructions: the second adds June. Not Equal")
    row = await judged_row(backend, judge_max_tokens=256)
    assert (row.status, row.judge_unparsable, backend.caps("judge")) == ("accepted", False, [256])


async def test_a_judge_that_says_equal_still_rejects() -> None:
    row = await judged_row(judged("Equal"))
    assert (row.status, row.failure_category, row.judge_unparsable) == ("rejected", "no_information_gain", False)


@pytest.mark.parametrize("reply", ["They are not exactly equal.", "Non-equal", "non-equal", "NOT QUITE EQUAL",
                                   "Verdict: Non-Equal"])
def test_negated_equal_reads_as_not_equal(reply: str) -> None:
    assert parse_equal_judgement(reply).failed is False
    assert parse_equal_judgement(reply).rule is None


@pytest.mark.parametrize("reply", ["Equal", "They are equal.", "**Equal**", "Therefore: Equal",
                                   "Both ask the same thing, so they are exactly equal."])
def test_equal_still_reads_as_equal(reply: str) -> None:
    assert parse_equal_judgement(reply).rule == "judge_equal"


# M7: no sampled parse retry while scoring --------------------------------------------------------------


async def test_an_unparsable_dev_rewrite_fails_after_exactly_one_evol_call() -> None:
    backend = CapHonouring(lambda r: "I would make it harder by adding a month.")
    assert await dev_verdict("default", backend) == (True, "parse_failure", "parse_failure")
    assert len(backend.requests) == 1


def test_scoring_allows_no_parse_retry_in_any_preset_unless_asked() -> None:
    for preset in ("paper", "default", "demo", "evol-instruct"):
        rewrite, _ = scoring_policies(optimize_settings(preset), evolve_settings(preset))
        assert rewrite.retries == 0
    rewrite, _ = scoring_policies(optimize_settings("default", score_parse_retries=2), evolve_settings("default"))
    assert rewrite.retries == 2


def test_the_final_pass_keeps_its_own_retry() -> None:
    assert rewrite_policy(evolve_settings("default"), 1, "evolve").retries == 1
    assert answer_policy(evolve_settings("paper"), "evolve").on_cut == "keep"


# L2: `paper` stops when λ no longer decreases --------------------------------------------------------


def test_paper_has_patience_one() -> None:
    assert optimize_settings("paper").patience == 1
    assert optimize_settings("default").patience is None


# M3: judge_unparsable is counted in summary.json and shown in the report -------------------------------


class VagueJudge(Script):
    """The pipeline's script, with a judge that says nothing usable about `[vague]` rows."""

    def __call__(self, request: CompletionRequest) -> str:
        prompt = request.messages[-1].content
        if "Equal or Not Equal" in prompt and "[vague]" in prompt:
            self.requests.append(request)
            return "Both are instructions about numbers."
        return super().__call__(request)


async def test_judge_unparsable_rows_are_counted_per_round_and_in_the_report(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "seeds.jsonl", [{"instruction": t} for t in
                                                  ("Add 2 and 3 [vague].", "Add 4 and 5.", "Add 6 and 7 [same].")])
    result = await run(data, tmp_path / "run", VagueJudge(), evolve_settings("default", rule_set="elimination"))
    evolved, problems, summary = outputs(result)
    first = summary["rounds"][0]
    assert (first["accepted"], first["rejected"], first["judge_unparsable"], first["answer_cut"]) == (2, 1, 1, 0)
    assert [r["judge_unparsable"] for r in evolved] == [True, False]
    assert problems[0]["failure_category"] == "no_information_gain"
    html = write_report(result.run_dir).read_text(encoding="utf-8")
    assert "judge unparsable, passed" in html
    row = html[html.index("judge unparsable, passed"):].split("<tr>")[1]
    assert row.startswith("<td>1</td>") and '<td class="n">0</td><td class="n">1</td></tr>' in row
