"""One step's proposals: the evol trajectory of a minibatch, then m independent samples of
trajectory analysis (free-text feedback) + method rewrite, in one two-turn optimizer chat each.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from autoevol.data.records import Seed
from autoevol.errors import REQUEST_ERRORS
from autoevol.evolution.attempt import RewritePolicy, rewrite
from autoevol.llm.client import LLM
from autoevol.methods.hygiene import check_method_hygiene
from autoevol.methods.method import SLOT, EvolvingMethod
from autoevol.prompts import analysis_messages, optimization_messages, parse_optimized_method


@dataclass(frozen=True, slots=True)
class Candidate:
    index: int
    feedback: str
    method: EvolvingMethod | None
    rejected: str | None  # why hygiene discarded it, when it did
    repaired: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "feedback": self.feedback, "rejected": self.rejected,
                "repaired": self.repaired, "method": self.method.to_dict() if self.method else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        method = EvolvingMethod.from_dict(data["method"]) if data.get("method") else None
        return cls(data["index"], data["feedback"], method, data.get("rejected"), data.get("repaired"))


async def trajectory(
    evol: LLM, method: EvolvingMethod, batch: tuple[Seed, ...], rounds: int, policy: RewritePolicy
) -> list[dict[str, Any]]:
    """[{"id": k, "stage0": original, "stage1": ..., ...}]; a stage whose rewrite was unusable shows
    the raw output, because the optimizer must see what went wrong (e.g. an answer instead of a
    rewrite), and the next stage evolves the last usable instruction rather than that transcript."""

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


@dataclass(frozen=True, slots=True)
class Proposer:
    optimizer: LLM
    temperature: float
    top_p: float
    max_tokens: int
    hygiene: bool

    async def candidate(
        self, index: int, steps_trajectory: list[dict[str, Any]], method: EvolvingMethod, step: int
    ) -> Candidate:
        try:
            return await self._candidate(index, steps_trajectory, method, step)
        except REQUEST_ERRORS as error:
            return self._no_proposal(index, "", method, f"optimizer_error:{type(error).__name__}")

    async def _candidate(
        self, index: int, steps_trajectory: list[dict[str, Any]], method: EvolvingMethod, step: int
    ) -> Candidate:
        params = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                  "sample_index": index}
        analysis = await self.optimizer.chat(analysis_messages(steps_trajectory), phase="optimize.analyze", **params)
        feedback = analysis.text.strip()
        if not feedback:
            return self._no_proposal(index, "", method, "empty_feedback")
        reply = await self.optimizer.chat(optimization_messages(steps_trajectory, feedback, method),
                                          phase="optimize.rewrite", **params)
        template = parse_optimized_method(reply.text)
        if template is None:
            return self._no_proposal(index, feedback, method, "no_optimized_method_block")
        repaired = None
        if self.hygiene:
            fixed, reason = check_method_hygiene(template, method)
            if fixed is None:
                return Candidate(index, feedback, None, reason)
            template, repaired = fixed, reason
        elif SLOT not in template:
            # The paper's code appends the instruction to the method text; without hygiene we do the
            # same instead of failing the whole run when a rewrite drops the slot.
            template, repaired = f"{template}\n{SLOT}", "appended_slot"
        child = method.derive(template, step=step, candidate=index, feedback=feedback)
        return Candidate(index, feedback, child, None, repaired)

    def _no_proposal(self, index: int, feedback: str, method: EvolvingMethod, reason: str) -> Candidate:
        """No usable rewrite: discarded with hygiene; without it the paper keeps the current method."""
        if self.hygiene:
            return Candidate(index, feedback, None, reason)
        return Candidate(index, feedback, method, None, f"kept_parent:{reason}")

    async def propose(
        self, m: int, steps_trajectory: list[dict[str, Any]], method: EvolvingMethod, step: int
    ) -> list[Candidate]:
        return list(await asyncio.gather(
            *(self.candidate(j, steps_trajectory, method, step) for j in range(m))
        ))
