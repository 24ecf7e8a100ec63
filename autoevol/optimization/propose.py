"""One step's proposals: the evol trajectory of a minibatch, then m independent samples of
trajectory analysis (free-text feedback) + method rewrite, in one two-turn optimizer chat each.

With evaluator feedback the optimizer reads, beside every stage, what the checks that decide λ
found in it (`detect.wording.in_plain_words`), and a few of the current method's failed dev items
with their verdicts; without it (the paper) it reads the plain JSON trajectory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from autoevol.data.records import Seed
from autoevol.detect.rules import Category, Verdict
from autoevol.detect.wording import in_plain_words, loop_start
from autoevol.errors import REQUEST_ERRORS
from autoevol.evolution.attempt import RewritePolicy, rewrite
from autoevol.llm.client import LLM
from autoevol.methods.hygiene import check_method_hygiene
from autoevol.methods.method import SLOT, EvolvingMethod
from autoevol.optimization.fanout import all_of
from autoevol.optimization.score import ItemVerdict
from autoevol.prompts import (
    analysis_messages,
    feedback_analysis_messages,
    feedback_optimization_messages,
    optimization_messages,
    parse_optimized_method,
)
from autoevol.types import Message


@dataclass(frozen=True, slots=True)
class Candidate:
    index: int
    feedback: str
    method: EvolvingMethod | None
    rejected: str | None  # why hygiene discarded it, when it did
    repaired: str | None = None
    #: The optimizer's raw replies (None: not asked, or stored before they were kept), so a
    #: discarded candidate can be debugged from the run.
    analysis_reply: str | None = None
    rewrite_reply: str | None = None

    def to_dict(self) -> dict[str, Any]:
        replies = {name: text for name in ("analysis_reply", "rewrite_reply")
                   if (text := getattr(self, name)) is not None}
        return {"index": self.index, "feedback": self.feedback, "rejected": self.rejected,
                "repaired": self.repaired, "method": self.method.to_dict() if self.method else None, **replies}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        method = EvolvingMethod.from_dict(data["method"]) if data.get("method") else None
        return cls(data["index"], data["feedback"], method, data.get("rejected"), data.get("repaired"),
                   data.get("analysis_reply"), data.get("rewrite_reply"))


@dataclass(frozen=True, slots=True)
class StageVerdict:
    """What the checks found in one evolved stage: `words` says it in plain words for the optimizer."""

    failed: bool
    category: str | None
    rule: str | None
    words: str

    def to_dict(self) -> dict[str, Any]:
        return {"failed": self.failed, "category": self.category, "rule": self.rule, "words": self.words}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageVerdict:
        return cls(bool(data["failed"]), data.get("category"), data.get("rule"), str(data["words"]))


USABLE = StageVerdict(False, None, None, "usable")


@dataclass(frozen=True, slots=True)
class Case:
    """One minibatch item's evolution as the optimizer reads it: stage 0 is the original
    instruction, each later stage what one round of the method made of the stage before.
    `verdicts` holds one per later stage (None in trajectories stored before verdicts were)."""

    id: int
    stages: tuple[str, ...]
    verdicts: tuple[StageVerdict, ...] | None = None

    def stage_dict(self) -> dict[str, Any]:
        """{"id": k, "stage0": ..., "stage1": ...}: the reference code's shape, which the paper's prompt
        shows as JSON, so its keys and their order are part of every cached optimizer request."""
        return {"id": self.id, **{f"stage{k}": text for k, text in enumerate(self.stages)}}

    def to_dict(self) -> dict[str, Any]:
        """The stored form: the stage dict, plus the verdicts when there are any."""
        if self.verdicts is None:
            return self.stage_dict()
        return self.stage_dict() | {"verdicts": [v.to_dict() for v in self.verdicts]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Case:
        stages: list[str] = []
        while f"stage{len(stages)}" in data:
            stages.append(data[f"stage{len(stages)}"])
        stored = data.get("verdicts")
        if len(data) != len(stages) + 1 + ("verdicts" in data) or "id" not in data:
            raise ValueError(f"a trajectory case is an id and stage0..stageN, got keys {list(data)}")
        verdicts = None if stored is None else tuple(StageVerdict.from_dict(v) for v in stored)
        return cls(data["id"], tuple(stages), verdicts)


@dataclass(frozen=True, slots=True)
class Trajectory:
    """The text a method is judged on: the minibatch evolved `rounds` times with it, in batch order.
    Stored as `to_dict()` (a JSON list) under `opt/<t>/trajectory` and inside each step record."""

    cases: tuple[Case, ...]

    def to_dict(self) -> list[dict[str, Any]]:
        """The stored form (with the verdicts)."""
        return [case.to_dict() for case in self.cases]

    def plain(self) -> list[dict[str, Any]]:
        """What the paper's prompt (`prompts.analysis_messages`) renders: stages only."""
        return [case.stage_dict() for case in self.cases]

    @classmethod
    def from_dict(cls, data: Sequence[Mapping[str, Any]]) -> Trajectory:
        return cls(tuple(Case.from_dict(case) for case in data))


async def trajectory(
    evol: LLM, method: EvolvingMethod, batch: tuple[Seed, ...], rounds: int, policy: RewritePolicy
) -> Trajectory:
    """A stage whose rewrite was unusable shows the raw output, because the optimizer must see what
    went wrong (e.g. an answer instead of a rewrite), and the next stage evolves the last usable
    instruction rather than that transcript. Every later stage records the checks' verdict."""

    async def one(index: int, item: Seed) -> Case:
        stages = [item.instruction]
        verdicts: list[StageVerdict] = []
        current = item.instruction
        for _ in range(rounds):
            try:
                done = await rewrite(evol, method, current, policy)
            except REQUEST_ERRORS as error:
                stages.append(f"[no rewrite: the evol LLM rejected the request ({error})]")
                verdicts.append(StageVerdict(True, "request_error", type(error).__name__,
                                             "the evol LLM rejected the request, so nothing was rewritten"))
                break
            if done.instruction is None:
                stages.append(done.raw.strip())
                v = done.verdict
                verdicts.append(StageVerdict(True, v.category, v.rule, in_plain_words(v, done.raw)))
                continue
            current = done.instruction
            stages.append(current)
            verdicts.append(USABLE)
        return Case(index, tuple(stages), tuple(verdicts))

    return Trajectory(tuple(await all_of(one(i, item) for i, item in enumerate(batch))))


#: How much of a looping stage the optimizer reads: the lines before the loop and this many of it.
_LOOP_LINES_SHOWN = 3
#: Dev texts are shown in excerpts: the verdict says what failed, the excerpt only has to show it.
_EXCERPT_CHARS = 700


def _shown_stage(text: str, verdict: StageVerdict | None) -> str:
    return text if verdict is None else _cut_loop(text, verdict.rule)


def _cut_loop(text: str, rule: str | None) -> str:
    """A text that looped to the cap, cut after a few repeats: the verdict already names the loop."""
    if not (rule or "").endswith("repetition_loop"):
        return text
    lines = text.splitlines()
    start = loop_start(lines)
    if start is None or start + _LOOP_LINES_SHOWN >= len(lines):
        return text
    return "\n".join(lines[: start + _LOOP_LINES_SHOWN]) + "\n[... the same lines repeat until the token cap]"


def _stage_label(k: int, verdict: StageVerdict | None) -> str:
    if k == 0:
        return "Stage 0 (the original)"
    if verdict is None:
        return f"Stage {k}"
    return f"Stage {k} ({'failed: ' + verdict.words if verdict.failed else verdict.words})"


def case_text(case: Case) -> str:
    """One case as readable text, each later stage headed by the checks' verdict in plain words."""
    parts = [f"=== Case {case.id} ==="]
    for k, text in enumerate(case.stages):
        verdict = case.verdicts[k - 1] if case.verdicts and 0 < k <= len(case.verdicts) else None
        parts.append(f"{_stage_label(k, verdict)}:\n{_shown_stage(text, verdict)}")
    return "\n".join(parts)


def _excerpt(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class DevFailure:
    """A dev item the current method failed, as the optimizer reads it: what the method made of the
    instruction (the raw rewrite when nothing usable came out), the answer, and why λ counted it."""

    instruction: str
    answer: str
    words: str
    rule: str | None = None
    original: str = ""

    @classmethod
    def of(cls, verdict: ItemVerdict, original: str = "") -> DevFailure:
        # No answer means the rewrite itself failed: the verdict is about the rewrite's text.
        of, text = ("answer", verdict.response) if verdict.response else ("rewrite", verdict.instruction)
        # A stored category is a plain str; an unknown one ("model_error") is worded by its name.
        judged = Verdict(True, cast(Category, verdict.category), verdict.rule)
        words = in_plain_words(judged, text, of=of)
        return cls(verdict.instruction, verdict.response, words, verdict.rule, original)


def dev_failures_text(failures: Sequence[DevFailure]) -> str:
    """The incumbent's failed dev items, or "" when there are none to show."""
    if not failures:
        return ""
    parts = ["The same method was also scored on held-out instructions. The score counts each of these "
             "as a failed evolution:"]
    for n, f in enumerate(failures, 1):
        lines = [f"=== Held-out item {n} (failed: {f.words}) ==="]
        if f.original:
            lines.append(f"Original instruction:\n{_excerpt(f.original)}")
        if f.answer:
            lines.append(f"Evolved instruction:\n{_excerpt(f.instruction)}")
            lines.append(f"Answer:\n{_excerpt(_cut_loop(f.answer, f.rule))}")
        else:
            reply = _excerpt(_cut_loop(f.instruction, f.rule))
            lines.append(f"The method's reply (unusable, so not answered):\n{reply}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class Shown:
    """What one proposal shows the optimizer: `dev_failures` None is the paper's plain trajectory."""

    trajectory: Trajectory
    dev_failures: tuple[DevFailure, ...] | None = None

    def analysis(self) -> list[Message]:
        if self.dev_failures is None:
            return analysis_messages(self.trajectory.plain())
        return feedback_analysis_messages(self._cases(), dev_failures_text(self.dev_failures))

    def rewrite(self, feedback: str, method: EvolvingMethod) -> list[Message]:
        if self.dev_failures is None:
            return optimization_messages(self.trajectory.plain(), feedback, method)
        return feedback_optimization_messages(self._cases(), dev_failures_text(self.dev_failures), feedback,
                                              method)

    def _cases(self) -> str:
        return "\n\n".join(case_text(case) for case in self.trajectory.cases)


@dataclass(frozen=True, slots=True)
class Proposer:
    optimizer: LLM
    temperature: float
    top_p: float
    max_tokens: int
    hygiene: bool

    async def candidate(self, index: int, shown: Shown, method: EvolvingMethod, step: int) -> Candidate:
        replies: list[str] = []
        try:
            return await self._candidate(index, shown, method, step, replies)
        except REQUEST_ERRORS as error:
            return self._no_proposal(index, "", method, f"optimizer_error:{type(error).__name__}", replies)

    async def _candidate(
        self, index: int, shown: Shown, method: EvolvingMethod, step: int, replies: list[str]
    ) -> Candidate:
        params = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                  "sample_index": index}
        analysis = await self.optimizer.chat(shown.analysis(), phase="optimize.analyze", **params)
        replies.append(analysis.text)
        feedback = analysis.text.strip()
        if not feedback:
            return self._no_proposal(index, "", method, "empty_feedback", replies)
        reply = await self.optimizer.chat(shown.rewrite(feedback, method), phase="optimize.rewrite", **params)
        replies.append(reply.text)
        template = parse_optimized_method(reply.text)
        if template is None:
            return self._no_proposal(index, feedback, method, "no_optimized_method_block", replies)
        repaired = None
        if self.hygiene:
            fixed, reason = check_method_hygiene(template, method)
            if fixed is None:
                return Candidate(index, feedback, None, reason, None, *_pair(replies))
            template, repaired = fixed, reason
        elif SLOT not in template:
            # The paper's code appends the instruction to the method text; without hygiene we do the
            # same instead of failing the whole run when a rewrite drops the slot.
            template, repaired = f"{template}\n{SLOT}", "appended_slot"
        child = method.derive(template, step=step, candidate=index, feedback=feedback)
        return Candidate(index, feedback, child, None, repaired, *_pair(replies))

    def _no_proposal(
        self, index: int, feedback: str, method: EvolvingMethod, reason: str, replies: Sequence[str]
    ) -> Candidate:
        """No usable rewrite: discarded with hygiene; without it the paper keeps the current method."""
        if self.hygiene:
            return Candidate(index, feedback, None, reason, None, *_pair(replies))
        return Candidate(index, feedback, method, None, f"kept_parent:{reason}", *_pair(replies))

    async def propose(
        self, m: int, steps_trajectory: Trajectory, method: EvolvingMethod, step: int,
        dev_failures: tuple[DevFailure, ...] | None = None,
    ) -> list[Candidate]:
        """`dev_failures` None shows the paper's plain trajectory; a tuple (even empty) the verdicts."""
        shown = Shown(steps_trajectory, dev_failures)
        return await all_of(self.candidate(j, shown, method, step) for j in range(m))


def _pair(replies: Sequence[str]) -> tuple[str | None, str | None]:
    """The analysis and rewrite replies received so far (None for a turn never answered)."""
    return (replies[0] if replies else None, replies[1] if len(replies) > 1 else None)
