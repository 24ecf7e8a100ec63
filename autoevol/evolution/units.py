"""The evolve phase's stored unit: one row of one round, as it is kept in the run's state.db.

`StoredUnit.to_dict()` is an on-disk contract read back by the next round, by the output writer and
by two SQL filters in `store.run` (`$.row.status`, `$.retry`): change its shape only together with
`store.run.SCHEMA_VERSION`, which makes an older run directory refuse to resume with a clear message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autoevol.data.records import OutputRow, Turn, first_user_text

if TYPE_CHECKING:
    from autoevol.store.run import StateDB

PHASE = "evolve"
#: A row whose model call failed on a transient error (server down, deadline, rate limit): the
#: next run of the same command retries it.
MODEL_ERROR = "model_error"
#: A row the server rejected outright (too long, malformed: 400, 413, context length): asking again
#: gives the same answer, so it fails once and is retried only with `--retry-failed`.
REQUEST_ERROR = "request_error"


def unit_key(methods_id: str, seed_id: str, round_: int) -> str:
    """`methods_id` is the "+"-joined ids of the methods the phase picks from."""
    return f"{PHASE}|{methods_id}|{seed_id}|{round_}"


@dataclass(frozen=True, slots=True)
class StoredUnit:
    """A finished unit: its place in the input order, its row, and the turns it was made from
    (a rejected row's parent goes back to the pool from these in Evol-Instruct)."""

    seq: int
    row: OutputRow
    input_turns: tuple[Turn, ...]

    @property
    def retry(self) -> bool:
        """Failed on a transient model error: a rerun of the same command tries it again."""
        return self.row.failure_category == MODEL_ERROR

    @property
    def model_failed(self) -> bool:
        """Failed on any model error, transient or not: `--retry-failed` tries it again."""
        return self.row.failure_category in (MODEL_ERROR, REQUEST_ERROR)

    @property
    def first_user(self) -> str:
        """The first user turn the unit was made from: in round 1, the seed's instruction."""
        return first_user_text(self.input_turns)

    @property
    def last_answer(self) -> str | None:
        """The last assistant turn the unit was made from (in round 1, the seed's response), if any."""
        return next((t.content for t in reversed(self.input_turns) if t.role == "assistant"), None)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "row": self.row.to_dict(), "retry": self.retry, "model_failed": self.model_failed,
                "input_turns": [t.to_dict() for t in self.input_turns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredUnit:
        return cls(seq=data["seq"], row=OutputRow.from_dict(data["row"]),
                   input_turns=tuple(Turn(t["role"], t["content"]) for t in data["input_turns"]))


def stored_units(state: StateDB, round_: int | None = None) -> Iterator[StoredUnit]:
    """The units stored for one round (every round when None), decoded, in output order. Reads
    only, so it serves the writer's own state and a `StateDB.read_only` (the report) alike."""
    for payload in state.iter_phase(PHASE, round_):
        yield StoredUnit.from_dict(payload)
