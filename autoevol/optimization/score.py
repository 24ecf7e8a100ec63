"""Scoring a method on the dev set: evolve each dev item, let the evol LLM answer, apply the
failure rules. λ = failures / |dev|, reported with a 95 % Wilson interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autoevol.data.records import Seed
from autoevol.errors import REQUEST_ERRORS
from autoevol.evolution.attempt import AnswerPolicy, RewritePolicy, evolve_conversation
from autoevol.llm.client import LLM
from autoevol.methods.method import EvolvingMethod
from autoevol.types import user


@dataclass(frozen=True, slots=True)
class ItemVerdict:
    seed_id: str
    failed: bool
    category: str | None
    rule: str | None
    instruction: str
    response: str

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemVerdict:
        """Inverse of `to_dict` (a stored dev verdict); a missing key raises KeyError."""
        return cls(data["seed_id"], data["failed"], data["category"], data["rule"], data["instruction"],
                   data["response"])


@dataclass(frozen=True, slots=True)
class Score:
    method_id: str
    failures: int
    n: int
    low: float
    high: float
    length_ratio: float

    @property
    def rate(self) -> float:
        return self.failures / self.n if self.n else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"method_id": self.method_id, "lambda": round(self.rate, 4), "failures": self.failures, "n": self.n,
                "ci95": [round(self.low, 4), round(self.high, 4)], "length_ratio": round(self.length_ratio, 4)}


def wilson(failures: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = failures / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(method_id: str, verdicts: list[ItemVerdict]) -> Score:
    failures = sum(v.failed for v in verdicts)
    low, high = wilson(failures, len(verdicts))
    ok = [v for v in verdicts if not v.failed]
    # C's complexity proxy, used only to order equal λ: long answers to short instructions.
    ratio = 0.0
    if ok:
        mean_resp = sum(len(v.response) for v in ok) / len(ok)
        mean_instr = sum(len(v.instruction) for v in ok) / len(ok) or 1.0
        ratio = (1 - failures / len(verdicts)) * mean_resp / mean_instr
    return Score(method_id, failures, len(verdicts), low, high, ratio)


@dataclass(frozen=True, slots=True)
class DevScorer:
    """Scores a method on one dev item with the same evolve-and-judge path as the final pass; the
    evol LLM answers (the paper), with the policies' own temperatures, retries and rules."""

    evol: LLM
    rewrite: RewritePolicy
    answer: AnswerPolicy

    async def verdict(self, method: EvolvingMethod, item: Seed) -> ItemVerdict:
        try:
            done = await evolve_conversation(self.evol, self.evol, method, (user(item.instruction),),
                                             self.rewrite, self.answer)
        except REQUEST_ERRORS as error:
            # e.g. a method whose prompt no longer fits the context: a failure of that method.
            return ItemVerdict(item.seed_id, True, "model_error", type(error).__name__, "", str(error))
        verdict = done.verdict
        return ItemVerdict(item.seed_id, verdict.failed, verdict.category, verdict.rule,
                           done.instruction or done.raw, done.response)
