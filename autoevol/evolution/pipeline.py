"""The evolve phase over a whole dataset: R rounds of evolve → respond → detect, resumable.

Round 1 streams seeds from the input file; round k streams round k-1's stored rows. Each finished
unit is stored in the run's state under a content key before anything else happens, so a kill
loses at most the units in flight. Final files are rebuilt from the state in input order.

A bad row either becomes a `failed` row (on_bad_row="skip") or stops the intake of new rows
("fail"): the units in flight still finish and are stored before the DataError is raised.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from typing import Any

from autoevol.config import EvolveSettings
from autoevol.data.records import BadRow, OutputRow
from autoevol.data.source import DataSource
from autoevol.errors import ConfigError, DataError, TooManyErrors
from autoevol.evolution.steps import Job, Models, pick_method, row_id, run_job
from autoevol.evolution.units import MODEL_ERROR, PHASE, StoredUnit, stored_units, unit_key
from autoevol.executor import Clients, Executor, Work
from autoevol.methods.method import EvolvingMethod
from autoevol.store.run import RunDir


@dataclass(slots=True)
class RoundStats:
    round: int
    inputs: int = 0
    status: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    #: Rows that passed with a note: the answer was kept at its cap; the judge said nothing usable.
    answer_cut: int = 0
    judge_unparsable: int = 0

    def add(self, row: OutputRow) -> None:
        self.inputs += 1
        self.status[row.status] += 1
        self.answer_cut += row.answer_cut
        self.judge_unparsable += row.judge_unparsable
        if row.status != "accepted":
            self.categories[row.failure_category or "unknown"] += 1

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "inputs": self.inputs, "accepted": self.status["accepted"],
                "rejected": self.status["rejected"], "failed": self.status["failed"],
                "categories": dict(sorted(self.categories.items())),
                "answer_cut": self.answer_cut, "judge_unparsable": self.judge_unparsable}


ProgressHook = Callable[[OutputRow], None]


class _Intake:
    """The round's work items; a data error ends the intake instead of the run, so the units
    already in flight finish and are stored before `error` is raised."""

    def __init__(self, items: Iterator[tuple[Job, BadRow | None]]) -> None:
        self._items = items
        self.error: DataError | None = None

    def __iter__(self) -> Iterator[tuple[Job, BadRow | None]]:
        return self

    def __next__(self) -> tuple[Job, BadRow | None]:
        if self.error is not None:
            raise StopIteration
        try:
            return next(self._items)
        except DataError as error:
            self.error = error
            raise StopIteration from None


def _bad_row_id(bad: BadRow) -> str:
    # "path:line", like `Seed.source`: unique per row and readable, unlike the full error message.
    return f"{bad.path}:{bad.line}" if bad.line is not None else bad.source


def _seed_jobs(source: DataSource) -> Iterator[tuple[Job, BadRow | None]]:
    for seq, item in enumerate(source.rows()):
        if isinstance(item, BadRow):
            yield Job(seed_id=_bad_row_id(item), seq=seq, round=1, turns=(), parent_id=None), item
        else:
            yield Job(seed_id=item.seed_id, seq=seq, round=1, turns=item.turns, parent_id=None, meta=item.meta), None


def _next_round_jobs(run: RunDir, round_: int, settings: EvolveSettings) -> Iterator[tuple[Job, BadRow | None]]:
    """Round k's inputs: round k-1's accepted rows (and, Evol-Instruct style, rejected rows' parents)."""
    statuses = _next_round_statuses(settings)
    for unit in stored_units(run.state, round_ - 1):
        row = unit.row
        if row.status not in statuses:
            continue
        # A rejected row's parent goes back to the pool (Evol-Instruct); an accepted row goes on.
        accepted = row.status == "accepted"
        turns = row.messages if accepted else unit.input_turns
        parent = row.id if accepted else row.parent_id
        yield Job(seed_id=row.seed_id, seq=unit.seq, round=round_, turns=turns, parent_id=parent, meta=row.meta), None


def _bad_row(job: Job, bad: BadRow, models: Models) -> OutputRow:
    """A row that could not be read: no method ran on it; `error` names its file, line and field."""
    return OutputRow(
        id=row_id(job.seed_id, job.round), seed_id=job.seed_id, round=job.round, parent_id=None,
        method_id=None, evol_model=models.evol.label, responder_model=models.responder.label,
        status="failed", failure_category="bad_input", failure_rule=bad.field, error=bad.source,
        instruction="", response="", messages=(), parent_instruction="", prompt_tokens=0, completion_tokens=0,
    )


async def evolve_dataset(
    source: DataSource,
    methods: tuple[EvolvingMethod, ...],
    models: Models,
    settings: EvolveSettings,
    run: RunDir,
    executor: Executor,
    on_row: ProgressHook | None = None,
    on_round: Callable[[int, int, RoundStats], None] | None = None,
    max_consecutive_errors: int | None = None,
    retry_failed: bool = False,
) -> list[RoundStats]:
    """Run (or finish) every round; returns per-round counts that reconcile with the inputs.

    `on_round(round, inputs, kept)` opens each round; `kept` counts the units a resumed run keeps
    (they are skipped, so `on_row` never sees them), so a progress display starts where the run is.

    A unit already stored is skipped, except a `failed` row caused by a transient model error
    (server down, deadline...): running the same command again retries exactly those. Rows the
    server rejected outright are retried only with `retry_failed`.
    """
    _check_methods(methods)
    methods_id = "+".join(m.id for m in methods)
    stats: list[RoundStats] = []
    streak = _ErrorStreak(max_consecutive_errors)
    recipe = EvolveRecipe(methods, settings, models.optimizer_label)
    work = Work(partial(_evolve_item, methods, settings, models), recipe)
    flag = "model_failed" if retry_failed else "retry"
    for round_ in range(1, settings.rounds + 1):
        jobs = _seed_jobs(source) if round_ == 1 else _next_round_jobs(run, round_, settings)
        total = _round_total(source, run, round_, settings)
        if on_round:
            on_round(round_, total, _kept(run, round_, flag))
        run.events.emit("round_started", round=round_, inputs=total)

        def store(item: tuple[Job, BadRow | None], row: OutputRow) -> None:
            job = item[0]
            run.state.put(unit_key(methods_id, job.seed_id, job.round), phase=PHASE, round=job.round, seq=job.seq,
                          payload=StoredUnit(job.seq, row, job.turns).to_dict())
            if on_row:
                on_row(row)
            streak.add(row.failure_category, row.error)

        intake = _Intake(jobs)
        pending = _not_done(run, intake, lambda job: unit_key(methods_id, job.seed_id, job.round), flag)
        started = time.monotonic()
        await executor.run(work, pending, store)
        if intake.error is not None:
            run.events.emit("run_aborted", round=round_, error=str(intake.error))
            raise intake.error
        round_stats = stored_round_stats(run, round_)
        stats.append(round_stats)
        run.events.emit("round_finished", **round_stats.to_dict(), seconds=round(time.monotonic() - started, 3))
    return stats


def _kept(run: RunDir, round_: int, skip_flagged: str) -> RoundStats:
    """Counts of the round's stored units that this run skips (every stored one but those retried),
    streamed from state.db so a resume of a huge round holds no set of keys."""
    kept = RoundStats(round_)
    for payload in run.state.iter_phase(PHASE, round_):
        if not payload.get(skip_flagged):
            kept.add(StoredUnit.from_dict(payload).row)
    return kept


async def _evolve_item(
    methods: tuple[EvolvingMethod, ...], settings: EvolveSettings, models: Models, item: tuple[Job, BadRow | None]
) -> OutputRow:
    job, bad = item
    if bad is not None:
        return _bad_row(job, bad, models)
    return await run_job(job, pick_method(methods, settings, job), models, settings, phase=PHASE)


@dataclass(frozen=True, slots=True)
class EvolveRecipe:
    """The evolve unit as picklable configuration: a remote worker rebuilds `_evolve_item` around
    its own clients for the same roles, so it computes the same row as the local engine."""

    methods: tuple[EvolvingMethod, ...]
    settings: EvolveSettings
    optimizer_label: str | None

    def build(self, clients: Clients) -> Callable[[tuple[Job, BadRow | None]], Awaitable[OutputRow]]:
        models = Models(evol=clients("evol"), responder=clients("responder"), judge=clients("judge"),
                        optimizer_label=self.optimizer_label)
        return partial(_evolve_item, self.methods, self.settings, models)


def _not_done(
    run: RunDir, items: Iterator[tuple[Job, BadRow | None]], key_of: Callable[[Job], str], skip_flagged: str,
    batch: int = 512,
) -> Iterator[tuple[Job, BadRow | None]]:
    """The items whose unit is not stored yet (or must be retried), asked of state.db one batch at a
    time: memory stays flat however many units the phase already holds. Keys are unique within a
    round (seed ids are), so a unit stored while its batch is pending cannot be asked for again."""
    while chunk := list(islice(items, batch)):
        done = run.state.done_among([key_of(job) for job, _ in chunk], skip_flagged=skip_flagged)
        yield from (item for item in chunk if key_of(item[0]) not in done)


def stored_round_stats(run: RunDir, round_: int) -> RoundStats:
    """A round's counts from the units stored for it (all of them once the round has finished)."""
    counts = RoundStats(round_)
    for unit in stored_units(run.state, round_):
        counts.add(unit.row)
    return counts


@dataclass(slots=True)
class _ErrorStreak:
    """The run's error budget: a server that is down should stop the run, not fail every row."""

    limit: int | None
    count: int = 0

    def add(self, category: str | None, error: str | None) -> None:
        # Only transient errors say the server is down; a 400 for one row says it is up.
        self.count = self.count + 1 if category == MODEL_ERROR else 0
        if self.limit is not None and self.count >= self.limit:
            raise TooManyErrors(
                f"{self.count} rows in a row failed on model errors (last: {error}); check the endpoint, "
                "then run the same command again to resume"
            )


def _check_methods(methods: tuple[EvolvingMethod, ...]) -> None:
    # Caught here, before any call is paid for; rule sets are checked by EvolveSettings itself.
    if not methods:
        raise ConfigError("no evolving method given")


def _next_round_statuses(settings: EvolveSettings) -> tuple[str, ...]:
    """Which of round k-1's rows round k takes as input (see `_next_round_jobs`)."""
    return ("accepted", "rejected") if settings.failed_back_to_pool else ("accepted",)


def _round_total(source: DataSource, run: RunDir, round_: int, settings: EvolveSettings) -> int:
    if round_ > 1:
        return run.state.count(PHASE, round_ - 1, statuses=_next_round_statuses(settings))
    return source.count()
