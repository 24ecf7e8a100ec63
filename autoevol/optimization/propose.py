"""One step's proposals: the evol trajectory of a minibatch, then m independent samples of
trajectory analysis (free-text feedback) + method rewrite, in one two-turn optimizer chat each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autoevol.data.records import Seed
from autoevol.errors import REQUEST_ERRORS
from autoevol.evolution.attempt import RewritePolicy, rewrite
from autoevol.llm.client import LLM
from autoevol.methods.hygiene import check_method_hygiene
from autoevol.methods.method import SLOT, EvolvingMethod
from autoevol.optimization.fanout import all_of
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


@dataclass(frozen=True, slots=True)
class Case:
    """One minibatch item's evolution as the optimizer reads it: stage 0 is the original
    instruction, each later stage what one round of the method made of the stage before."""

    id: int
    stages: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """{"id": k, "stage0": ..., "stage1": ...}: the reference code's shape, which the prompt shows
        as JSON, so its keys and their order are part of every cached optimizer request."""
        return {"id": self.id, **{f"stage{k}": text for k, text in enumerate(self.stages)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Case:
        stages: list[str] = []
        while f"stage{len(stages)}" in data:
            stages.append(data[f"stage{len(stages)}"])
        if len(data) != len(stages) + 1 or "id" not in data:
            raise ValueError(f"a trajectory case is an id and stage0..stageN, got keys {list(data)}")
        return cls(data["id"], tuple(stages))


@dataclass(frozen=True, slots=True)
class Trajectory:
    """The text a method is judged on: the minibatch evolved `rounds` times with it, in batch order.
    Stored as `to_dict()` (a JSON list) under `opt/<t>/trajectory` and inside each step record."""

    cases: tuple[Case, ...]

    def to_dict(self) -> list[dict[str, Any]]:
        """The stored form, and what `prompts.analysis_messages` renders."""
        return [case.to_dict() for case in self.cases]

    @classmethod
    def from_dict(cls, data: Sequence[Mapping[str, Any]]) -> Trajectory:
        return cls(tuple(Case.from_dict(case) for case in data))


async def trajectory(
    evol: LLM, method: EvolvingMethod, batch: tuple[Seed, ...], rounds: int, policy: RewritePolicy
) -> Trajectory:
    """A stage whose rewrite was unusable shows the raw output, because the optimizer must see what
    went wrong (e.g. an answer instead of a rewrite), and the next stage evolves the last usable
    instruction rather than that transcript."""

    async def one(index: int, item: Seed) -> Case:
        stages = [item.instruction]
        current = item.instruction
        for _ in range(rounds):
            try:
                done = await rewrite(evol, method, current, policy)
            except REQUEST_ERRORS as error:
                stages.append(f"[no rewrite: the evol LLM rejected the request ({error})]")
                break
            if done.instruction is None:
                stages.append(done.raw.strip())
                continue
            current = done.instruction
            stages.append(current)
        return Case(index, tuple(stages))

    return Trajectory(tuple(await all_of(one(i, item) for i, item in enumerate(batch))))


@dataclass(frozen=True, slots=True)
class Proposer:
    optimizer: LLM
    temperature: float
    top_p: float
    max_tokens: int
    hygiene: bool

    async def candidate(
        self, index: int, steps_trajectory: Trajectory, method: EvolvingMethod, step: int
    ) -> Candidate:
        try:
            return await self._candidate(index, steps_trajectory, method, step)
        except REQUEST_ERRORS as error:
            return self._no_proposal(index, "", method, f"optimizer_error:{type(error).__name__}")

    async def _candidate(
        self, index: int, steps_trajectory: Trajectory, method: EvolvingMethod, step: int
    ) -> Candidate:
        params = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                  "sample_index": index}
        cases = steps_trajectory.to_dict()
        analysis = await self.optimizer.chat(analysis_messages(cases), phase="optimize.analyze", **params)
        feedback = analysis.text.strip()
        if not feedback:
            return self._no_proposal(index, "", method, "empty_feedback")
        reply = await self.optimizer.chat(optimization_messages(cases, feedback, method),
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
        self, m: int, steps_trajectory: Trajectory, method: EvolvingMethod, step: int
    ) -> list[Candidate]:
        return await all_of(self.candidate(j, steps_trajectory, method, step) for j in range(m))
