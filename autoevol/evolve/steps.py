"""One unit of the evolve phase: evolve a conversation's user turns with a method, answer them,
and decide accepted / rejected / failed. Everything here is per item; systemic errors (auth, a
missing model, a spent budget) propagate, item-level model errors become a `failed` row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from autoevol.config import EvolveSettings
from autoevol.data.records import OutputRow, Turn
from autoevol.detect import OK, Verdict, detect, equal_judge_messages, parse_equal_judgement
from autoevol.errors import AuthError, BackendError, BudgetExhausted, ModelNotFoundError
from autoevol.llm.client import LLM
from autoevol.methods.method import EvolvingMethod
from autoevol.methods.parse import ParseResult, parse_evolved
from autoevol.prompts import respond_messages
from autoevol.types import Completion, Message, user

#: Errors that no other item can escape either: stop the run instead of failing every row.
SYSTEMIC = (AuthError, ModelNotFoundError, BudgetExhausted)
#: The failure category of a row whose model call failed; such units are retried on a rerun.
MODEL_ERROR = "model_error"


@dataclass(frozen=True, slots=True)
class Job:
    """Evolve `turns` (round-1 seed conversation or the previous round's output) once."""

    seed_id: str
    seq: int
    round: int
    turns: tuple[Turn, ...]
    parent_id: str | None


@dataclass(slots=True)
class Tally:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, completion: Completion) -> Completion:
        self.prompt_tokens += completion.usage.prompt_tokens
        self.completion_tokens += completion.usage.completion_tokens
        return completion


@dataclass(frozen=True, slots=True)
class Models:
    evol: LLM
    responder: LLM
    judge: LLM | None = None  # Evol-Instruct's "equal / not equal" judgement; defaults to the evol LLM


def pick_method(methods: tuple[EvolvingMethod, ...], settings: EvolveSettings, job: Job) -> EvolvingMethod:
    """One method per row and round; a seeded choice so resume and reruns pick the same one."""
    if len(methods) == 1:
        return methods[0]
    return random.Random(f"{settings.seed}:{job.seed_id}:{job.round}").choice(methods)


def row_id(seed_id: str, round_: int) -> str:
    return f"{seed_id}#r{round_}"


async def evolve_text(
    evol: LLM, method: EvolvingMethod, instruction: str, settings: EvolveSettings, tally: Tally, phase: str
) -> tuple[ParseResult, str]:
    """Rewrite one instruction; an unparsable rewrite is re-asked `parse_retries` times.

    Returns the parse and the evol LLM's last raw output (kept on rejected rows for diagnosis).
    """
    prompt = [user(method.render(instruction))]
    parsed = ParseResult(ok=False, instruction=None, failure="no_marker", marker=None)
    raw = ""
    for attempt in range(settings.parse_retries + 1):
        # A retry at temperature 0 would repeat itself: later attempts sample, reproducibly.
        temperature = settings.evol_temperature if attempt == 0 else max(settings.evol_temperature, 0.7)
        completion = tally.add(
            await evol.chat(
                prompt, phase=phase, temperature=temperature, max_tokens=settings.evol_max_tokens,
                sample_index=attempt,
            )
        )
        raw = completion.text
        parsed = parse_evolved(raw, original=instruction, method=method)
        if parsed.ok or parsed.failure == "unchanged":
            break
    return parsed, raw


async def answer(
    responder: LLM, history: list[Message], instruction: str, settings: EvolveSettings, tally: Tally, phase: str
) -> str:
    messages = respond_messages(instruction, math=settings.math_answers, history=history)
    completion = await responder.chat(
        messages, phase=phase, temperature=settings.respond_temperature, max_tokens=settings.respond_max_tokens
    )
    return tally.add(completion).text


async def run_job(
    job: Job, method: EvolvingMethod, models: Models, settings: EvolveSettings, *, phase: str = "evolve"
) -> OutputRow:
    tally = Tally()
    base = _row_base(job, method, models)
    try:
        return await _evolve_and_answer(job, method, models, settings, tally, phase, base)
    except SYSTEMIC:
        raise
    except BackendError as error:
        return OutputRow(**base, status="failed", failure_category=MODEL_ERROR, failure_rule=None,
                         error=f"{type(error).__name__}: {error}", instruction="", response="", messages=(),
                         prompt_tokens=tally.prompt_tokens, completion_tokens=tally.completion_tokens)


def _row_base(job: Job, method: EvolvingMethod, models: Models) -> dict[str, Any]:
    first_user = next((t.content for t in job.turns if t.role == "user"), "")
    return {
        "id": row_id(job.seed_id, job.round), "seed_id": job.seed_id, "round": job.round,
        "parent_id": job.parent_id, "method_id": method.id, "evol_model": models.evol.label,
        "responder_model": models.responder.label, "parent_instruction": first_user,
    }


async def _evolve_and_answer(
    job: Job, method: EvolvingMethod, models: Models, settings: EvolveSettings, tally: Tally, phase: str,
    base: dict[str, Any],
) -> OutputRow:
    evolved: list[Turn] = []
    for turn in job.turns:
        if turn.role != "user":
            evolved.append(turn)
            continue
        parsed, raw = await evolve_text(models.evol, method, turn.content, settings, tally, phase)
        if not parsed.ok:
            # Whatever the rule set counts for λ, a rewrite we cannot use is never kept: always name why.
            verdict = detect("", rule_set=settings.rule_set, parsed=parsed, count_parse_failures=True)
            return _rejected(base, tally, verdict.category, verdict.rule, evolved, "", instruction=raw)
        evolved.append(Turn("user", parsed.instruction or ""))
    messages, last_answer, verdict = await _regenerate(evolved, models, settings, tally, phase)
    if not verdict.failed and settings.judge_information_gain:
        verdict = await _judge_gain(models.judge or models.evol, job.turns, evolved, tally, phase)
    if verdict.failed:
        return _rejected(base, tally, verdict.category, verdict.rule, messages, last_answer)
    return OutputRow(**base, status="accepted", failure_category=None, failure_rule=None, error=None,
                     instruction=_first_user(messages), response=last_answer,
                     messages=tuple(messages),
                     prompt_tokens=tally.prompt_tokens, completion_tokens=tally.completion_tokens)


async def _regenerate(
    evolved: list[Turn], models: Models, settings: EvolveSettings, tally: Tally, phase: str
) -> tuple[list[Turn], str, Verdict]:
    """Answer every evolved user turn in order, with the evolved history before it."""
    history: list[Message] = []
    out: list[Turn] = []
    answer_text = ""
    verdict = OK
    for turn in evolved:
        if turn.role == "assistant":
            continue  # old answers belong to the old instructions: regenerated below
        out.append(turn)
        if turn.role != "user":
            # A seed's system turn stays in the row; the responder gets its own system prompt
            # (`respond_messages` refuses a second one in the history).
            continue
        answer_text = await answer(models.responder, history, turn.content, settings, tally, phase)
        verdict = detect(answer_text, rule_set=settings.rule_set, parsed=None)
        history += [Message("user", turn.content), Message("assistant", answer_text)]
        out.append(Turn("assistant", answer_text))
        if verdict.failed:
            break
    return out, answer_text, verdict


async def _judge_gain(
    evol: LLM, before: tuple[Turn, ...], after: list[Turn], tally: Tally, phase: str
) -> Verdict:
    first, second = _first_user(list(before)), _first_user(after)
    completion = await evol.chat(equal_judge_messages(first, second), phase=phase, temperature=0.0, max_tokens=8)
    return parse_equal_judgement(tally.add(completion).text)


def _first_user(turns: list[Turn]) -> str:
    return next((t.content for t in turns if t.role == "user"), "")


def _rejected(
    base: dict[str, Any], tally: Tally, category: str | None, rule: str | None, turns: list[Turn], response: str,
    *, instruction: str | None = None,
) -> OutputRow:
    """`instruction` defaults to the evolved one; an unusable rewrite passes the evol LLM's raw output."""
    return OutputRow(**base, status="rejected", failure_category=category, failure_rule=rule, error=None,
                     instruction=_first_user(turns) if instruction is None else instruction, response=response,
                     messages=tuple(turns),
                     prompt_tokens=tally.prompt_tokens, completion_tokens=tally.completion_tokens)
