"""The paper's core operation, written once: apply a method to an instruction, answer the result,
judge the answer. The final pass (`evolve.steps`), dev scoring (`optimize.score`) and the
trajectory (`optimize.propose`) all call these functions, so a rule about what counts as a usable
rewrite or answer (parse failures, cut-off outputs, retries, fallbacks) cannot drift between them.

Nothing here decides what a phase does with a failure; each returns a `Verdict` saying why a
rewrite or answer is unusable, and the caller turns that into a rejected row or a λ failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from autoevol.data.records import first_user_text
from autoevol.detect import (
    JUDGE_UNPARSABLE,
    OK,
    RULE_SETS,
    Verdict,
    detect,
    equal_judge_messages,
    parse_equal_judgement,
    truncation_verdict,
)
from autoevol.detect.answering import answered_instead
from autoevol.llm.client import LLM
from autoevol.methods.method import EvolvingMethod
from autoevol.methods.parse import ParseResult, parse_evolved
from autoevol.prompts import respond_messages
from autoevol.types import Completion, Message, Usage, user

#: A retry at temperature 0 would only repeat itself: re-asks sample at least this warm.
RETRY_TEMPERATURE = 0.7
#: Room for each section a method's reply must write (a list, a plan, a revision...), and for the
#: preamble around them. A rewrite's length follows the method's steps, not its input's length.
_TOKENS_PER_STEP = 128
_REWRITE_BASE_TOKENS = 128
#: The copies of the instruction a reply writes (e0: the rewritten and the final instruction).
_INSTRUCTION_COPIES = 3


def rewrite_token_cap(method: EvolvingMethod, instruction: str, ceiling: int) -> int:
    """The first attempt's cap: room for the method's declared steps and the instruction copies it
    writes, at most `ceiling`. A reply cut there is asked again at the ceiling (`rewrite`), so the cap
    only stops a loop early; a long, legitimate method never pays for it with a failure.
    Token count is estimated as UTF-8 bytes / 3, generous for English and about right for CJK.
    """
    estimate = len(instruction.encode("utf-8")) // 3 + 1
    wanted = _REWRITE_BASE_TOKENS + _TOKENS_PER_STEP * method.declared_steps + _INSTRUCTION_COPIES * estimate
    return max(16, min(ceiling, wanted))


#: What a rewrite that answers its parent instead of evolving it (`detect.answering`) becomes:
#: "reject" it at once (λ counts it: a re-ask must not hide what the method does), "retry" it like an
#: unparsable rewrite (the final pass: a sampled re-ask may still evolve the row), or "keep" it (the
#: paper's final pass, rule set `none`, keeps every row).
OnAnswer = Literal["reject", "retry", "keep"]


def answer_handling(rule_set: str, *, final_pass: bool) -> OnAnswer:
    """How a phase judging with `rule_set` treats a rewrite that answers instead of evolving."""
    if not RULE_SETS[rule_set].rejects_answers:
        return "keep"
    return "retry" if final_pass else "reject"


@dataclass(frozen=True, slots=True)
class RewritePolicy:
    """How one instruction is rewritten."""

    temperature: float
    max_tokens: int
    retries: int = 0
    #: The reference code's behaviour: with no usable marker section, the whole output (or the text
    #: after the marker) is the instruction. Off, an unparsable rewrite is a failure.
    whole_output_fallback: bool = False
    #: Added to every sample index, so a row asked again in a later round is a new request.
    sample_base: int = 0
    phase: str = "evolve"
    #: Callers that judge with a rule set pass `answer_handling(rule_set, ...)`.
    on_answer: OnAnswer = "reject"


#: What an answer cut at its cap becomes: "fail" (truncated), "reask" (once more at twice the cap,
#: then truncated) or "keep" (the paper: rules judge the text there is, the row is flagged).
OnCut = Literal["fail", "reask", "keep"]


@dataclass(frozen=True, slots=True)
class AnswerPolicy:
    """How an (evolved) instruction is answered and which rules judge the answer."""

    temperature: float
    max_tokens: int
    rule_set: str
    math: bool = False
    phase: str = "evolve"
    on_cut: OnCut = "fail"


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One rewrite: `instruction` is the usable text, None when `verdict` says why there is none."""

    instruction: str | None
    raw: str
    verdict: Verdict
    usage: Usage


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    verdict: Verdict
    usage: Usage
    cut: bool = False  # kept although it stopped at its cap (`on_cut="keep"`)


def add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(a.prompt_tokens + b.prompt_tokens, a.completion_tokens + b.completion_tokens)


def _parse_verdict(parsed: ParseResult) -> Verdict:
    # Whatever the rule set counts for λ, an unusable rewrite always names its rule.
    return detect("", rule_set="paper", parsed=parsed, count_parse_failures=True)


def _fallback_text(parsed: ParseResult, raw: str) -> str:
    """What the reference code answers: the text after the marker if there is one, else everything."""
    if parsed.marker is not None and parsed.instruction is not None:
        return parsed.instruction
    if parsed.marker is not None:
        return ""
    return raw.strip()


def _judge_rewrite(completion: Completion, instruction: str, method: EvolvingMethod,
                   policy: RewritePolicy) -> tuple[str | None, Verdict]:
    cut = truncation_verdict(completion.text, completion.finish_reason)
    if cut.failed:
        return None, cut  # even the fallback never keeps a rewrite that stopped mid-sentence
    parsed = parse_evolved(completion.text, original=instruction, method=method)
    text = parsed.instruction if parsed.ok else None
    if text is None and policy.whole_output_fallback:
        text = _fallback_text(parsed, completion.text) or None
    if text is None:
        return None, _parse_verdict(parsed)
    # Fig. 1's "answering instead of evolution": a result is no harder instruction, whatever parsed.
    answered = answered_instead(text, instruction) if policy.on_answer != "keep" else None
    if answered is not None:
        return None, Verdict(True, "answered_instead", answered)
    return text, OK


def _asked_again(verdict: Verdict, policy: RewritePolicy) -> bool:
    """Is an unusable rewrite re-asked? Not when it came back unchanged (the model understood and
    chose not to change it), and an answer only where the policy says so."""
    if verdict.category == "unchanged_instruction":
        return False
    return verdict.category != "answered_instead" or policy.on_answer == "retry"


async def rewrite(evol: LLM, method: EvolvingMethod, instruction: str, policy: RewritePolicy) -> Rewrite:
    """Rewrite one instruction; an unusable rewrite (unparsable or cut off) is re-asked `retries`
    times, sampling (see `_asked_again` for the verdicts that are not).

    Each attempt starts at the method's cap; one cut off below the ceiling is first asked again,
    unchanged, at the ceiling (`policy.max_tokens`), which later attempts keep.
    """
    prompt = [user(method.render(instruction))]
    max_tokens = rewrite_token_cap(method, instruction, policy.max_tokens)
    usage = Usage()
    raw, text, verdict = "", None, OK
    for attempt in range(policy.retries + 1):
        temperature = policy.temperature if attempt == 0 else max(policy.temperature, RETRY_TEMPERATURE)
        ask: dict[str, object] = {"temperature": temperature, "sample_index": policy.sample_base + attempt}
        completion = await evol.chat(prompt, phase=policy.phase, max_tokens=max_tokens, **ask)
        if completion.finish_reason == "length" and max_tokens < policy.max_tokens:
            usage = add_usage(usage, completion.usage)
            max_tokens = policy.max_tokens
            completion = await evol.chat(prompt, phase=policy.phase, max_tokens=max_tokens, **ask)
        usage = add_usage(usage, completion.usage)
        raw = completion.text
        text, verdict = _judge_rewrite(completion, instruction, method, policy)
        if text is not None or not _asked_again(verdict, policy):
            break
    return Rewrite(text, raw, verdict, usage)


async def answer(
    responder: LLM, history: Sequence[Message], instruction: str, policy: AnswerPolicy, *,
    system_prompt: str | None = None,
) -> Answer:
    """Answer `instruction` after `history`, then judge the answer with the policy's rules.

    An answer cut at its cap is re-asked once at twice the cap (`on_cut="reask"`), kept and judged
    as it is (`"keep"`, the paper's reading: its code never looks at where an answer stopped), or
    fails (`"fail"`). A cut-off answer that is not kept fails before any rule runs.
    """
    messages = respond_messages(instruction, math=policy.math, history=history, system_prompt=system_prompt)
    completion = await responder.chat(messages, phase=policy.phase, temperature=policy.temperature,
                                      max_tokens=policy.max_tokens)
    usage = completion.usage
    if completion.finish_reason == "length" and policy.on_cut == "reask":
        completion = await responder.chat(messages, phase=policy.phase, temperature=policy.temperature,
                                          max_tokens=2 * policy.max_tokens)
        usage = add_usage(usage, completion.usage)
    cut = completion.finish_reason == "length"
    if cut and policy.on_cut != "keep":
        return Answer(completion.text, truncation_verdict(completion.text, completion.finish_reason), usage)
    return Answer(completion.text, detect(completion.text, rule_set=policy.rule_set, parsed=None), usage, cut)


#: The judge's default cap: room for a judge that explains itself before "Equal" / "Not Equal".
JUDGE_MAX_TOKENS = 64


async def judge_gain(judge: LLM, before: str, after: str, *, phase: str,
                     max_tokens: int = JUDGE_MAX_TOKENS) -> tuple[Verdict, Usage]:
    """Evol-Instruct's W1: does the evolved instruction say anything the original did not?

    A reply cut at its cap counts only by a verdict it stated on a line of its own before the cut;
    otherwise it passes as `judge_unparsable`: a judge that ran out of room must not delete a row.
    """
    completion = await judge.chat(equal_judge_messages(before, after), phase=phase, temperature=0.0,
                                  max_tokens=max_tokens)
    complete = completion.finish_reason != "length"
    return parse_equal_judgement(completion.text, complete=complete), completion.usage


@dataclass(frozen=True, slots=True)
class Evolution:
    """A conversation evolved, answered and judged: what a final-pass row and a dev item are made of.

    `turns` holds the evolved conversation with regenerated answers, up to the turn that failed;
    `raw` is the evol LLM's output for a rewrite that could not be used (kept for diagnosis).
    """

    turns: tuple[Message, ...]
    verdict: Verdict
    instruction: str  # the first evolved user turn ("" when its rewrite failed)
    response: str  # the last answer written
    raw: str
    usage: Usage
    answer_cut: bool = False  # an answer stopped at its cap and was kept (`on_cut="keep"`)

    @property
    def failed(self) -> bool:
        return self.verdict.failed

    @property
    def judge_unparsable(self) -> bool:
        """The judge ran and said nothing usable: the row passed its check by default."""
        return not self.failed and self.verdict.rule == JUDGE_UNPARSABLE


async def evolve_conversation(
    evol: LLM, responder: LLM, method: EvolvingMethod, turns: Sequence[Message],
    rewrite_policy: RewritePolicy, answer_policy: AnswerPolicy, *, judge: LLM | None = None,
    judge_max_tokens: int = JUDGE_MAX_TOKENS,
) -> Evolution:
    """Evolve every user turn with `method`, then answer them in order with the evolved history;
    with a `judge`, Evol-Instruct's equal/not-equal check runs last. The first failure decides.

    A seed's system turn stays in the conversation and is the responder's system prompt, so the
    training row and the context its answers were written in are the same.
    """
    usage = Usage()
    evolved: list[Message] = []
    for turn in turns:
        if turn.role != "user":
            evolved.append(turn)
            continue
        done = await rewrite(evol, method, turn.content, rewrite_policy)
        usage = add_usage(usage, done.usage)
        if done.instruction is None:
            return Evolution(tuple(evolved), done.verdict, "", "", done.raw, usage)
        evolved.append(Message("user", done.instruction))
    system_prompt = next((t.content for t in turns if t.role == "system"), None)
    out: list[Message] = []
    history: list[Message] = []
    reply, cut = Answer("", OK, Usage()), False
    for turn in evolved:
        if turn.role == "assistant":
            continue  # old answers belong to the old instructions: regenerated here
        out.append(turn)
        if turn.role != "user":
            continue
        reply = await answer(responder, history, turn.content, answer_policy, system_prompt=system_prompt)
        usage, cut = add_usage(usage, reply.usage), cut or reply.cut
        out.append(Message("assistant", reply.text))
        history += [turn, Message("assistant", reply.text)]
        if reply.verdict.failed:
            return Evolution(tuple(out), reply.verdict, first_user_text(out), reply.text, "", usage, cut)
    verdict = OK
    if judge is not None:
        before, after = first_user_text(turns), first_user_text(out)
        verdict, judged = await judge_gain(judge, before, after, phase=answer_policy.phase,
                                           max_tokens=judge_max_tokens)
        usage = add_usage(usage, judged)
    return Evolution(tuple(out), verdict, first_user_text(out), reply.text, "", usage, cut)
