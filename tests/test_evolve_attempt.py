"""The one evolve-and-judge path (`autoevol.evolution.attempt`): what counts as a usable rewrite and a
usable answer, for the final pass, dev scoring and the trajectory alike. Unit tests with a scripted
backend that can also say where a completion stopped (`finish_reason`)."""

from __future__ import annotations

from collections.abc import Callable

from autoevol.evolution.attempt import (
    JUDGE_MAX_TOKENS,
    AnswerPolicy,
    RewritePolicy,
    evolve_conversation,
    rewrite,
    rewrite_token_cap,
)
from autoevol.llm.client import LLM
from autoevol.llm.endpoint import Endpoint
from autoevol.llm.usage import UsageMeter
from autoevol.methods import load_method
from autoevol.types import Completion, CompletionRequest, Message, Usage, user

INITIAL, WEAK = load_method("initial"), load_method("weak")
FINAL = "#Finally Rewritten Instruction#"
Script = Callable[[CompletionRequest], tuple[str, str]]  # -> (text, finish_reason)


class Scripted:
    identity = "attempt-script"

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        text, finish = self.script(request)
        return Completion(text=text, finish_reason=finish, usage=Usage(10, 5), model=request.model)

    async def aclose(self) -> None:
        return None


def llm(backend: Scripted) -> LLM:
    return LLM(Endpoint(backend), model="m", label="openai:m", cache=None, meter=UsageMeter())


EVOLVE = RewritePolicy(temperature=0.0, max_tokens=1024, retries=1)
ANSWER = AnswerPolicy(temperature=0.0, max_tokens=256, rule_set="extended")


async def test_a_cut_off_rewrite_is_asked_at_the_ceiling_then_retried_once_sampling() -> None:
    # Issue 15 (H2): a rewrite cut at the method's cap is first asked again, unchanged, at the
    # ceiling; only then does the sampled parse retry run, and it keeps the ceiling.
    def script(request: CompletionRequest) -> tuple[str, str]:
        if request.sample_index == 0:
            return "Step 1 #Methods List#: add, add, add, add", "length"
        return f"Step 4 {FINAL}: Add 2 and 3, then double it.", "stop"

    backend = Scripted(script)
    done = await rewrite(llm(backend), INITIAL, "Add 2 and 3.", EVOLVE)
    assert done.instruction == "Add 2 and 3, then double it."
    first_cap = rewrite_token_cap(INITIAL, "Add 2 and 3.", 1024)
    assert [(r.sample_index, r.temperature, r.max_tokens) for r in backend.requests] == [
        (0, 0.0, first_cap), (0, 0.0, 1024), (1, 0.7, 1024)]


async def test_a_rewrite_cut_off_twice_is_truncated_even_with_the_papers_fallback() -> None:
    backend = Scripted(lambda r: (f"Step 4 {FINAL}: Add 2 and 3 and then", "length"))
    policy = RewritePolicy(temperature=0.0, max_tokens=1024, retries=1, whole_output_fallback=True)
    done = await rewrite(llm(backend), INITIAL, "Add 2 and 3.", policy)
    assert done.instruction is None
    assert (done.verdict.failed, done.verdict.category) == (True, "truncated")
    assert len(backend.requests) == 3  # the method's cap, the ceiling, the sampled retry at the ceiling


async def test_fallback_answers_the_text_after_the_marker_not_the_transcript() -> None:
    # The reference code answers what follows the marker; only with no marker is it the whole output.
    unchanged = Scripted(lambda r: (f"Step 1 #Methods List#: none\nStep 4 {FINAL}: Add 2 and 3.", "stop"))
    policy = RewritePolicy(temperature=0.0, max_tokens=1024, whole_output_fallback=True)
    assert (await rewrite(llm(unchanged), INITIAL, "Add 2 and 3.", policy)).instruction == "Add 2 and 3."
    bare = Scripted(lambda r: ("Add 2 and 3, then square the sum.", "stop"))
    assert (await rewrite(llm(bare), INITIAL, "Add 2 and 3.", policy)).instruction == (
        "Add 2 and 3, then square the sum."
    )
    strict = RewritePolicy(temperature=0.0, max_tokens=1024)
    done = await rewrite(llm(bare), INITIAL, "Add 2 and 3.", strict)
    assert (done.instruction, done.verdict.category) == (None, "parse_failure")


async def test_a_cut_off_answer_fails_before_any_rule_and_names_why() -> None:
    def script(request: CompletionRequest) -> tuple[str, str]:
        if request.messages[0].role == "system":
            return "First, 2 + 3 = 5. Then 5 times 2 is", "length"
        return f"Step 4 {FINAL}: Add 2 and 3, then double it.", "stop"

    done = await evolve_conversation(llm(b := Scripted(script)), llm(b), INITIAL, (user("Add 2 and 3."),),
                                     EVOLVE, ANSWER)
    assert done.failed
    assert (done.verdict.category, done.verdict.rule) == ("truncated", "finish_reason_length")
    assert done.instruction == "Add 2 and 3, then double it."


async def test_a_judge_that_explains_itself_has_room_and_a_cut_off_judge_passes() -> None:
    def script(verdict: tuple[str, str]) -> Script:
        def reply(request: CompletionRequest) -> tuple[str, str]:
            if request.messages[0].role == "system":
                return "Ten.", "stop"
            if "Equal or Not Equal" in request.messages[-1].content:
                return verdict
            return f"Step 4 {FINAL}: Add 2 and 3, then double it.", "stop"
        return reply

    agreeing = Scripted(script(("The second adds a doubling step, so they differ: Not Equal", "stop")))
    done = await evolve_conversation(llm(agreeing), llm(agreeing), INITIAL, (user("Add 2 and 3."),), EVOLVE, ANSWER,
                                     judge=llm(agreeing))
    assert not done.failed
    assert agreeing.requests[-1].max_tokens == JUDGE_MAX_TOKENS
    cut = Scripted(script(("Comparing the two instructions carefully, the first one asks", "length")))
    done = await evolve_conversation(llm(cut), llm(cut), INITIAL, (user("Add 2 and 3."),), EVOLVE, ANSWER,
                                     judge=llm(cut))
    # Issue 15 (M3): as docs/failure-rules.md says, a judge cut off before its verdict deletes nothing.
    assert (done.failed, done.verdict.rule, done.judge_unparsable) == (False, "judge_unparsable", True)
    cut_after_verdict = Scripted(script(("Equal\n\nBoth instructions ask for the same sum, and the", "length")))
    done = await evolve_conversation(llm(cut_after_verdict), llm(cut_after_verdict), INITIAL, (user("Add 2 and 3."),),
                                     EVOLVE, ANSWER, judge=llm(cut_after_verdict))
    assert (done.failed, done.verdict.category) == (True, "no_information_gain")  # said on its own line first


async def test_the_seeds_system_turn_is_the_responders_system_prompt() -> None:
    def script(request: CompletionRequest) -> tuple[str, str]:
        if request.messages[0].role == "system":
            return "Voici la réponse : dix.", "stop"
        return f"Step 4 {FINAL}: Additionne 2 et 3, puis double le résultat.", "stop"

    backend = Scripted(script)
    turns = (Message("system", "Réponds toujours en français."), user("Additionne 2 et 3."))
    done = await evolve_conversation(llm(backend), llm(backend), INITIAL, turns, EVOLVE, ANSWER)
    assert not done.failed
    assert done.turns[0] == Message("system", "Réponds toujours en français.")
    answered = [r for r in backend.requests if r.messages[0].role == "system"]
    assert answered[0].messages[0] == Message("system", "Réponds toujours en français.")


async def test_later_rounds_ask_with_new_sample_indexes() -> None:
    backend = Scripted(lambda r: (f"Step 4 {FINAL}: Add 2 and 3, then double it.", "stop"))
    await rewrite(llm(backend), INITIAL, "Add 2 and 3.", RewritePolicy(0.0, 1024, retries=1, sample_base=4))
    assert backend.requests[0].sample_index == 4


def test_rewrite_cap_follows_the_methods_steps_and_never_passes_the_ceiling() -> None:
    # Issue 15 (H2) replaced the input-sized cap (384 + 3 per input token, under 512 for a short
    # input) that cut well-formed rewrites of longer methods: the cap now grows with the sections a
    # method's reply must write, and the instruction's copies come on top.
    four, one = rewrite_token_cap(INITIAL, "Add 2 and 3.", 1536), rewrite_token_cap(WEAK, "Add 2 and 3.", 1536)
    assert (INITIAL.declared_steps, WEAK.declared_steps) == (4, 1)
    assert one < four and four >= 600  # a 4-step reply for a short question fits the first attempt
    assert rewrite_token_cap(INITIAL, "word " * 600, 1536) == 1536
    assert rewrite_token_cap(INITIAL, "Add 2 and 3.", 320) == 320
