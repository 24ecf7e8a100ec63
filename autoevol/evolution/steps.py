"""One unit of the evolve phase: evolve a conversation's user turns with a method, answer them,
and decide accepted / rejected / failed. Everything here is per item; systemic errors (auth, a
missing model, a spent budget) propagate, item-level model errors become a `failed` row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from autoevol.config import EvolveSettings
from autoevol.data.records import OutputRow, Turn, first_user_text
from autoevol.errors import (
    REQUEST_ERRORS,
    AuthError,
    BackendError,
    BudgetExhausted,
    ModelNotFoundError,
    StalledServerError,
)
from autoevol.evolution.attempt import AnswerPolicy, RewritePolicy, answer_handling, evolve_conversation
from autoevol.evolution.units import MODEL_ERROR, REQUEST_ERROR
from autoevol.llm.client import LLM
from autoevol.methods.method import EvolvingMethod

#: Errors that no other item can escape either: stop the run instead of failing every row.
SYSTEMIC = (AuthError, ModelNotFoundError, BudgetExhausted, StalledServerError)


@dataclass(frozen=True, slots=True)
class Job:
    """Evolve `turns` (round-1 seed conversation or the previous round's output) once."""

    seed_id: str
    seq: int
    round: int
    turns: tuple[Turn, ...]
    parent_id: str | None
    meta: str | None = None  # the seed's other input columns, carried to every row it becomes


@dataclass(frozen=True, slots=True)
class Models:
    evol: LLM
    responder: LLM
    judge: LLM | None = None  # Evol-Instruct's "equal / not equal" judgement; defaults to the evol LLM
    #: Recorded on every row: which optimizer chose the method (None when the method was given).
    optimizer_label: str | None = None

    @property
    def judge_label(self) -> str | None:
        return (self.judge or self.evol).label


def pick_method(methods: tuple[EvolvingMethod, ...], settings: EvolveSettings, job: Job) -> EvolvingMethod:
    """One method per row and round; a seeded choice so resume and reruns pick the same one."""
    if len(methods) == 1:
        return methods[0]
    return random.Random(f"{settings.seed}:{job.seed_id}:{job.round}").choice(methods)


def row_id(seed_id: str, round_: int) -> str:
    return f"{seed_id}#r{round_}"


def rewrite_policy(settings: EvolveSettings, round_: int, phase: str) -> RewritePolicy:
    """The final pass's rewrites. A later round asks with new sample indexes, so a row that went
    back to the pool (Evol-Instruct) is a new request, not a cache hit of its failed attempt."""
    attempts = settings.parse_retries + 1
    return RewritePolicy(
        temperature=settings.evol_temperature, max_tokens=settings.evol_max_tokens, retries=settings.parse_retries,
        whole_output_fallback=settings.rule_set == "none", sample_base=(round_ - 1) * attempts, phase=phase,
        on_answer=answer_handling(settings.rule_set, final_pass=True),
    )


def answer_policy(settings: EvolveSettings, phase: str) -> AnswerPolicy:
    return AnswerPolicy(temperature=settings.respond_temperature, max_tokens=settings.respond_max_tokens,
                        rule_set=settings.rule_set, math=settings.math_answers, phase=phase,
                        on_cut=settings.cut_answers)


async def run_job(
    job: Job, method: EvolvingMethod, models: Models, settings: EvolveSettings, *, phase: str = "evolve"
) -> OutputRow:
    base = _row_base(job, method, models, judged=settings.judges)
    try:
        done = await evolve_conversation(
            models.evol, models.responder, method, job.turns, rewrite_policy(settings, job.round, phase),
            answer_policy(settings, phase), judge=(models.judge or models.evol) if settings.judges else None,
            judge_max_tokens=settings.judge_max_tokens,
        )
    except SYSTEMIC:
        raise
    except BackendError as error:
        # Tokens spent before the error are in the usage meter; the row has no completion to show.
        category = REQUEST_ERROR if isinstance(error, REQUEST_ERRORS) else MODEL_ERROR
        return OutputRow(**base, status="failed", failure_category=category, failure_rule=None,
                         error=f"{type(error).__name__}: {error}", instruction="", response="", messages=())
    base |= {"prompt_tokens": done.usage.prompt_tokens, "completion_tokens": done.usage.completion_tokens,
             "answer_cut": done.answer_cut, "judge_unparsable": done.judge_unparsable}
    if not done.failed:
        return OutputRow(**base, status="accepted", failure_category=None, failure_rule=None, error=None,
                         instruction=done.instruction, response=done.response, messages=done.turns)
    # An unusable rewrite keeps the evol LLM's raw output in `instruction`, for diagnosis.
    return OutputRow(**base, status="rejected", failure_category=done.verdict.category,
                     failure_rule=done.verdict.rule, error=None, instruction=done.raw or done.instruction,
                     response=done.response, messages=done.turns)


def _row_base(job: Job, method: EvolvingMethod, models: Models, *, judged: bool) -> dict[str, Any]:
    first_user = first_user_text(job.turns)
    return {
        "id": row_id(job.seed_id, job.round), "seed_id": job.seed_id, "round": job.round,
        "parent_id": job.parent_id, "method_id": method.id, "evol_model": models.evol.label,
        "responder_model": models.responder.label, "parent_instruction": first_user,
        "optimizer_model": models.optimizer_label, "judge_model": models.judge_label if judged else None,
        "meta": job.meta,
    }
