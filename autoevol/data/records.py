"""Frozen records for data in (`Seed`, `BadRow`) and data out (`OutputRow`).

`OutputRow.to_dict()` is the on-disk contract of the evolved dataset (JSONL and Parquet): its keys
and their order are fixed by `OUTPUT_FIELDS`. Renaming, reordering or retyping a key breaks every
reader of earlier runs, so change it only together with a schema version bump.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from autoevol.types import Message

# One chat-turn type across the package: a seed's turns go straight into completion requests.
Turn = Message

Status = Literal["accepted", "rejected", "failed"]
STATUSES: frozenset[str] = frozenset(get_args(Status))
_ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})


def first_user_text(turns: Iterable[Turn]) -> str:
    """The content of the first user turn: the instruction a conversation is evolved from (Auto
    Evol-Instruct evolves the first user turn). "" when there is none, which only a conversation
    not read through a schema can be: a `Seed` refuses to exist without one."""
    return next((t.content for t in turns if t.role == "user"), "")


@dataclass(frozen=True, slots=True)
class Seed:
    """One seed conversation; `seed_id` is stable across runs, `source` is "path:line"."""

    seed_id: str
    turns: tuple[Turn, ...]
    source: str
    #: The input columns the schema did not read, as a JSON object text (None: there were none).
    meta: str | None = None
    #: The answer stopped at its token cap and was kept (the paper's final pass keeps it).
    answer_cut: bool = False
    #: The equal/not-equal judge said nothing usable or was cut off: the row passed that check.
    judge_unparsable: bool = False

    def __post_init__(self) -> None:
        if not self.seed_id:
            raise ValueError(f"a Seed needs a non-empty seed_id (source {self.source!r})")
        bad = [t.role for t in self.turns if t.role not in _ROLES]
        if bad:
            raise ValueError(f"unknown turn roles {bad} in seed {self.seed_id!r}")
        if not any(t.role == "user" for t in self.turns):
            raise ValueError(f"seed {self.seed_id!r} has no user turn")

    @property
    def instruction(self) -> str:
        """Content of the first user turn."""
        return first_user_text(self.turns)

    @property
    def reference(self) -> str | None:
        """Content of the first assistant turn, if the seed has one."""
        return next((t.content for t in self.turns if t.role == "assistant"), None)


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be read; kept so the pipeline can account for it as failed."""

    source: str
    path: str
    line: int | None
    field: str | None
    error: str


OUTPUT_FIELDS: tuple[str, ...] = (
    "id",
    "seed_id",
    "round",
    "parent_id",
    "method_id",
    "evol_model",
    "responder_model",
    "optimizer_model",
    "judge_model",
    "status",
    "failure_category",
    "failure_rule",
    "error",
    "instruction",
    "response",
    "messages",
    "parent_instruction",
    "prompt_tokens",
    "completion_tokens",
    "meta",
    "answer_cut",
    "judge_unparsable",
)
#: Fields added after rows were first stored: a stored row without one reads as its default.
_LATE_OUTPUT_FIELDS: frozenset[str] = frozenset({"meta", "answer_cut", "judge_unparsable"})


#: What `OutputRow.from_dict` accepts per field; fields not named here are optional text.
_OUTPUT_TYPES: dict[str, type | tuple[type, ...]] = {
    **{k: str for k in ("id", "seed_id", "evol_model", "responder_model", "status", "instruction", "response",
                        "parent_instruction")},
    **{k: int for k in ("round", "prompt_tokens", "completion_tokens")},
    **{k: bool for k in ("answer_cut", "judge_unparsable")},
}
#: The fields of an OutputRow that always hold a value (never None).
NON_NULL_OUTPUT_FIELDS: frozenset[str] = frozenset(_OUTPUT_TYPES) | {"messages"}


@dataclass(frozen=True, slots=True)
class OutputRow:
    """One row of the evolved dataset with its lineage (see `OUTPUT_FIELDS` for the key order)."""

    id: str
    seed_id: str
    round: int
    parent_id: str | None
    method_id: str | None
    evol_model: str
    responder_model: str
    status: Status
    failure_category: str | None
    failure_rule: str | None
    error: str | None
    instruction: str
    response: str
    messages: tuple[Turn, ...]
    parent_instruction: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    optimizer_model: str | None = None  # the model that chose `method_id`; None for a given method
    judge_model: str | None = None  # the model behind Evol-Instruct's equal/not-equal check, if it ran
    #: The seed's other input columns as a JSON object text (a string in JSONL and Parquet alike).
    meta: str | None = None
    #: The answer stopped at its token cap and was kept (the paper's final pass keeps it).
    answer_cut: bool = False
    #: The equal/not-equal judge said nothing usable or was cut off: the row passed that check.
    judge_unparsable: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, got {self.status!r}")
        if self.round < 0:
            raise ValueError(f"round must be >= 0, got {self.round}")
        if self.prompt_tokens < 0 or self.completion_tokens < 0:
            raise ValueError(
                f"token counts must be >= 0, got {self.prompt_tokens} / {self.completion_tokens}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Flat, Parquet-friendly dict with exactly `OUTPUT_FIELDS`, in that order."""
        out: dict[str, Any] = {name: getattr(self, name) for name in OUTPUT_FIELDS}
        out["messages"] = [m.to_dict() for m in self.messages]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputRow:
        """Inverse of `to_dict`; raises ValueError on missing or unknown keys."""
        # Rows stored before the late fields existed resume without them.
        missing = [k for k in OUTPUT_FIELDS if k not in data and k not in _LATE_OUTPUT_FIELDS]
        unknown = [k for k in data if k not in OUTPUT_FIELDS]
        if missing or unknown:
            raise ValueError(f"OutputRow keys do not match: missing {missing}, unknown {unknown}")
        wrong = [k for k in OUTPUT_FIELDS if k != "messages" and k in data
                 and not isinstance(data[k], _OUTPUT_TYPES.get(k, (str, type(None))))]
        if wrong or not isinstance(data["messages"], list):
            raise TypeError(f"OutputRow values of the wrong type: {wrong or ['messages']}")
        values = dict(data)
        values["messages"] = tuple(Turn(m["role"], m["content"]) for m in data["messages"])
        return cls(**values)
