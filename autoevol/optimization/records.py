"""The typed record of one optimisation step, and its stored form.

A finished step is stored once in the run's state.db (`opt/<t>/record`) and replayed from there on
resume, so the stored form is a contract: it carries `version`, and `StepRecord.from_dict` refuses
any other version with a `ResumeMismatchError` instead of guessing. Change the stored shape only
together with `RECORD_VERSION`. Scores are stored with full float precision (not the rounded
report form), so a replayed step compares methods exactly as the live step did.

The keys the loop stores under are named here too (`step_key`, `score_key`), beside the readers that
decode them (`stored_steps`, `stored_verdicts`), so the report reads what the loop wrote without
knowing either the SQL or the key scheme. The keys are part of the contract: a run directory
written before must still resume.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from autoevol.errors import ResumeMismatchError
from autoevol.methods.method import EvolvingMethod
from autoevol.optimization.propose import Candidate, Trajectory
from autoevol.optimization.score import ItemVerdict, Score
from autoevol.optimization.select import Entry, Screened, sort_key

if TYPE_CHECKING:
    from autoevol.data.records import Seed
    from autoevol.store.run import StateDB

RECORD_VERSION = 2
KEPT_INCUMBENT = "kept incumbent"
NOTHING_SCORED = "none: no usable candidate, the current method carries on"

Outcome = Literal["selected", "discarded", "screened_out", "higher_lambda", "lost_tie_break"]

#: The unit phase of dev verdicts, one unit per (method, dev item).
SCORE_PHASE = "score"
#: What a step stores as it goes: its trajectory and candidates as soon as they exist, its record once finished.
StepPart = Literal["trajectory", "candidates", "record"]


def step_key(t: int, part: StepPart) -> str:
    """The key/value name of one part of step `t` (counted from 1)."""
    return f"opt/{t}/{part}"


def score_key(method_id: str, seed_id: str) -> str:
    """The unit key of one dev verdict: the method and the dev item decide it."""
    return f"{SCORE_PHASE}|{method_id}|{seed_id}"


@dataclass(frozen=True, slots=True)
class CandidateOutcome:
    """Why a candidate won or lost its step, in words a user can check against the scores."""

    index: int
    outcome: Outcome
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "outcome": self.outcome, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CandidateOutcome:
        return cls(data["index"], data["outcome"], data["detail"])


@dataclass(frozen=True, slots=True)
class StepRecord:
    step: int
    batch: tuple[str, ...]  # seed ids of the minibatch
    trajectory: Trajectory
    candidates: tuple[Candidate, ...]
    screened_out: tuple[Screened, ...]
    scores: tuple[Entry, ...]  # full-dev scores only; index -1 is the incumbent
    selected: int | None  # candidate index; None: the current method carries on
    method: EvolvingMethod  # the method the next step starts from
    score: Score | None  # its full-dev score; None when nothing was scored
    outcomes: tuple[CandidateOutcome, ...]
    decided_by: str  # "lambda", the tie-break's name, "index", "only one scored" or "nothing scored"

    @property
    def rate(self) -> float | None:
        return self.score.rate if self.score else None

    @property
    def selected_label(self) -> int | str:
        """The candidate index, or an explicit phrase when no candidate was taken."""
        if self.selected is not None:
            return self.selected
        return KEPT_INCUMBENT if self.score is not None else NOTHING_SCORED

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION, "step": self.step, "batch": list(self.batch),
            "trajectory": self.trajectory.to_dict(), "candidates": [c.to_dict() for c in self.candidates],
            "screened_out": [s.to_dict() for s in self.screened_out],
            "scores": {str(e.index): score_to_dict(e.score) for e in self.scores},
            "selected": self.selected, "method": self.method.to_dict(),
            "lambda": self.rate, "score": score_to_dict(self.score) if self.score else None,
            "outcomes": [o.to_dict() for o in self.outcomes], "decided_by": self.decided_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "a step record") -> StepRecord:
        version = data.get("version") if isinstance(data, Mapping) else None
        if version != RECORD_VERSION:
            raise ResumeMismatchError(
                f"{where} was written by another autoevol version (step record version {version!r}, this "
                f"autoevol reads version {RECORD_VERSION}); finish the run with the autoevol that started it, "
                "or start it again in a new --out directory"
            )
        try:
            return cls(
                step=data["step"], batch=tuple(data["batch"]), trajectory=Trajectory.from_dict(data["trajectory"]),
                candidates=tuple(Candidate.from_dict(c) for c in data["candidates"]),
                screened_out=tuple(Screened.from_dict(s) for s in data["screened_out"]),
                scores=tuple(Entry(int(k), score_from_dict(v)) for k, v in data["scores"].items()),
                selected=data["selected"], method=EvolvingMethod.from_dict(data["method"]),
                score=score_from_dict(data["score"]) if data["score"] else None,
                outcomes=tuple(CandidateOutcome.from_dict(o) for o in data["outcomes"]),
                decided_by=data["decided_by"],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ResumeMismatchError(
                f"{where} is damaged ({type(error).__name__}: {error}); start the run again in a new --out directory"
            ) from error


def stored_step(state: StateDB, t: int, origin: object) -> StepRecord | None:
    """Step `t`'s finished record, or None when the step has not finished; `origin` (the run
    directory) names the record in the error a damaged or foreign one raises."""
    key = step_key(t, "record")
    stored = state.read(key)
    return None if stored is None else StepRecord.from_dict(stored, where=f"{origin}: {key}")


def stored_steps(state: StateDB, origin: object) -> list[StepRecord]:
    """Every finished step's record, in step order (steps finish in order, so the first one
    missing ends the list)."""
    steps: list[StepRecord] = []
    while (record := stored_step(state, len(steps) + 1, origin)) is not None:
        steps.append(record)
    return steps


def stored_verdicts(state: StateDB) -> dict[str, dict[str, ItemVerdict]]:
    """Every stored dev verdict: method id -> seed id -> verdict, dev items in dev order."""
    verdicts: dict[str, dict[str, ItemVerdict]] = defaultdict(dict)
    for key, payload in state.iter_keyed(SCORE_PHASE):
        # Split as `score_key` joins: a seed id may hold "|", a method id (a hash) never does.
        _, method_id, seed_id = key.split("|", 2)
        verdicts[method_id][seed_id] = ItemVerdict.from_dict(payload)
    return dict(verdicts)


def method_verdicts(state: StateDB, method_id: str, dev: Sequence[Seed]) -> list[ItemVerdict]:
    """The stored dev verdicts of one method, in dev order (items not scored yet are left out)."""
    stored = (state.get(score_key(method_id, item.seed_id)) for item in dev)
    return [ItemVerdict.from_dict(payload) for payload in stored if payload is not None]


def score_to_dict(score: Score) -> dict[str, Any]:
    """The stored form of a score: exact floats, plus λ for readers of state.db."""
    return {"method_id": score.method_id, "lambda": score.rate, "failures": score.failures, "n": score.n,
            "ci95": [score.low, score.high], "length_ratio": score.length_ratio}


def score_from_dict(data: Mapping[str, Any]) -> Score:
    low, high = data["ci95"]
    return Score(data["method_id"], data["failures"], data["n"], low, high, data["length_ratio"])


def decided_by(entries: Sequence[Entry], winner: Entry | None, tie_break: str) -> str:
    """What separated the winner from the runner-up: λ, the tie-break proxy, or the index."""
    if winner is None:
        return "nothing scored"
    rest = [e for e in entries if e.index != winner.index]
    if not rest:
        return "only one scored"
    runner_up = min(rest, key=lambda e: sort_key(e, tie_break))
    if runner_up.score.failures != winner.score.failures:
        return "lambda"
    if sort_key(runner_up, tie_break)[1] != sort_key(winner, tie_break)[1]:
        return tie_break
    return "index"


def explain(
    candidates: Sequence[Candidate], entries: Sequence[Entry], screened: Sequence[Screened],
    winner: Entry | None, tie_break: str,
) -> tuple[CandidateOutcome, ...]:
    """One outcome per candidate, in candidate order."""
    scored = {e.index: e for e in entries}
    dropped = {s.index: s for s in screened}
    out: list[CandidateOutcome] = []
    for c in candidates:
        if c.method is None:
            out.append(CandidateOutcome(c.index, "discarded", f"discarded by method hygiene: {c.rejected}"))
        elif c.index in dropped:
            s = dropped[c.index]
            out.append(CandidateOutcome(c.index, "screened_out", (
                f"screened out: failed {s.slice_failures} of the first {s.slice_size} dev items, more than the "
                f"{s.bound} full-dev failures of a method already scored; its full count can only be higher")))
        elif winner is not None and c.index in scored:
            out.append(_against_winner(scored[c.index], winner, tie_break))
    return tuple(out)


def _against_winner(entry: Entry, winner: Entry, tie_break: str) -> CandidateOutcome:
    rival = "the incumbent" if winner.index < 0 else f"candidate {winner.index}"
    if entry.index == winner.index:
        return CandidateOutcome(entry.index, "selected", f"lowest dev λ {entry.score.rate:.3f}")
    if entry.score.failures > winner.score.failures:
        return CandidateOutcome(entry.index, "higher_lambda", (
            f"dev λ {entry.score.rate:.3f} is higher than {rival}'s {winner.score.rate:.3f}"))
    if tie_break == "length_ratio" and entry.score.length_ratio != winner.score.length_ratio:
        why = f"its length ratio {entry.score.length_ratio:.3f} is lower than {winner.score.length_ratio:.3f}"
    elif winner.index < 0:
        why = "the incumbent keeps its place on a full tie"
    else:
        why = f"the lower index {winner.index} wins a full tie"
    return CandidateOutcome(entry.index, "lost_tie_break", (
        f"same dev λ {entry.score.rate:.3f} as {rival}; lost the tie-break: {why}"))
