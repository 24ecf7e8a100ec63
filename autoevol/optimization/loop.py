"""The Auto Evol-Instruct loop: T steps of trajectory → m proposals → dev scoring → selection.

Persistence (in the run's state.db): each step's trajectory and candidates are stored as soon as
they exist (`opt/<t>/...`), every dev verdict is a unit keyed by (method id, dev item), and a
finished step is stored as one record. A resumed run replays finished steps from the records and
re-pays only calls that were in flight (and the response cache usually has those too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from autoevol.config import OptimizeSettings
from autoevol.data.records import Seed
from autoevol.evolution.attempt import AnswerPolicy, RewritePolicy
from autoevol.executor import Clients, Executor, LocalExecutor, Work
from autoevol.methods.method import EvolvingMethod
from autoevol.optimization.fanout import all_of
from autoevol.optimization.propose import Candidate, DevFailure, Proposer, Trajectory, trajectory
from autoevol.optimization.records import (
    SCORE_PHASE,
    StepRecord,
    decided_by,
    explain,
    method_verdicts,
    score_key,
    score_to_dict,
    step_key,
    stored_step,
)
from autoevol.optimization.score import DevScorer, ItemVerdict, Score, summarise
from autoevol.optimization.select import Entry, Screened, better, screen, select
from autoevol.optimization.split import Split
from autoevol.store.run import RunDir

Phase = Literal["trajectory", "proposing", "scoring", "step_done"]
#: The current method's failed dev items the optimizer is shown with evaluator feedback.
SHOWN_DEV_FAILURES = 3


@dataclass(frozen=True, slots=True)
class LoopEvent:
    """Where the loop is, for a progress display; the loop never depends on who listens.

    `scoring` counts dev verdicts (`done` of `total` known so far: screening adds the full dev set
    later); `step_done` says whether the step was `replayed` from the run's state (no time spent).
    """

    step: int
    steps: int
    phase: Phase
    done: int = 0
    total: int | None = None
    detail: str = ""
    replayed: bool = False


LoopProgress = Callable[[LoopEvent], None]


@dataclass(slots=True)
class LoopState:
    current: EvolvingMethod
    best: EvolvingMethod
    best_score: Score | None = None
    history: list[StepRecord] = field(default_factory=list)
    since_improvement: int = 0
    # The lowest λ selected so far; with return_best=False it is what "λ no longer decreases" means.
    lowest_rate: float | None = None
    dev_set: dict[str, Any] = field(default_factory=dict)  # what every λ was measured on: size and hash


@dataclass(slots=True)
class Optimizer:
    settings: OptimizeSettings
    scorer: DevScorer
    proposer: Proposer
    split: Split
    run: RunDir
    seed: int
    trajectory_policy: RewritePolicy
    on_step: Callable[[StepRecord], None] | None = None
    on_progress: LoopProgress | None = None
    #: Where dev items are scored; None: in this process (`--engine ray` sets a RayExecutor).
    executor: Executor | None = None
    # The step being run and its dev verdicts (done, asked for), for `on_progress` only.
    _at: tuple[int, Phase, str] = (0, "trajectory", "")
    _verdicts: list[int] = field(default_factory=lambda: [0, 0])

    def _report(self, step: int, phase: Phase, detail: str = "", *, replayed: bool = False) -> None:
        if self.on_progress is None:
            return
        self._at = (step, phase, detail)
        done, total = self._verdicts if phase == "scoring" else (0, None)
        self.on_progress(LoopEvent(step, self.settings.steps, phase, done, total, detail, replayed))

    def _count_verdict(self, asked: int = 0) -> None:
        """`asked` verdicts more to wait for, or (by default) one more in."""
        if asked:
            self._verdicts[1] += asked
        else:
            self._verdicts[0] += 1
        if self._at[1] == "scoring":
            self._report(self._at[0], "scoring", self._at[2])

    async def score(self, method: EvolvingMethod, items: int | None = None) -> Score:
        dev = self.split.dev[: items or len(self.split.dev)]
        self._count_verdict(asked=len(dev))
        verdicts: dict[int, ItemVerdict] = {}
        pending: list[tuple[int, Seed]] = []
        for seq, item in enumerate(dev):
            stored = self.run.state.get(score_key(method.id, item.seed_id))
            if stored is not None:
                verdicts[seq] = ItemVerdict.from_dict(stored)
                self._count_verdict()
            else:
                pending.append((seq, item))

        def store(job: tuple[int, Seed], verdict: ItemVerdict) -> None:
            seq, item = job
            self.run.state.put(score_key(method.id, item.seed_id), phase=SCORE_PHASE, round=0, seq=seq,
                               payload=verdict.to_dict())
            verdicts[seq] = verdict
            self._count_verdict()

        recipe = ScoreRecipe(method, self.scorer.rewrite, self.scorer.answer)
        # Locally every dev item is in progress at once (the endpoint's budget is the real limit).
        executor = self.executor or LocalExecutor(max(1, len(pending)))
        await executor.run(Work(partial(_verdict, self.scorer, method), recipe), pending, store)
        return summarise(method.id, [verdicts[seq] for seq in range(len(dev))])

    async def step(self, t: int, state: LoopState) -> StepRecord:
        s = self.settings
        batch = self.split.minibatch(t, s.batch_size, self.seed)
        stored_traj = self.run.state.read(step_key(t, "trajectory"))
        if stored_traj is None:
            self._report(t, "trajectory", f"{len(batch)} minibatch items x {s.trajectory_rounds} round(s)")
            traj = await trajectory(self.scorer.evol, state.current, batch, s.trajectory_rounds,
                                    self.trajectory_policy)
            self.run.state.set(step_key(t, "trajectory"), traj.to_dict())
        else:
            traj = Trajectory.from_dict(stored_traj)
        stored = self.run.state.read(step_key(t, "candidates"))
        if stored is None:
            failures = await self._dev_failures(t, state.current) if s.shows_feedback else None
            self._report(t, "proposing", f"{s.candidates} candidates")
            candidates = await self.proposer.propose(s.candidates, traj, state.current, t, failures)
            self.run.state.set(step_key(t, "candidates"), [c.to_dict() for c in candidates])
        else:
            candidates = [Candidate.from_dict(c) for c in stored]
        self._verdicts[:] = [0, 0]
        usable = sum(c.method is not None for c in candidates)
        incumbent = " + the incumbent" if s.incumbent_competes else ""
        self._report(t, "scoring", f"{usable} of {len(candidates)} candidates{incumbent} on the dev set")
        entries, screened = await self._score_all(state.current, candidates)
        chosen = select(entries, s.tie_break)
        return StepRecord(
            step=t, batch=tuple(item.seed_id for item in batch), trajectory=traj,
            candidates=tuple(candidates), screened_out=tuple(screened), scores=tuple(entries),
            selected=chosen.index if chosen is not None and chosen.index >= 0 else None,
            method=_method_of(chosen.index, state.current, candidates) if chosen else state.current,
            score=chosen.score if chosen else None,
            outcomes=explain(candidates, entries, screened, chosen, s.tie_break),
            decided_by=decided_by(entries, chosen, s.tie_break),
        )

    async def _dev_failures(self, t: int, method: EvolvingMethod) -> tuple[DevFailure, ...]:
        """The current method's first failed dev items, for the optimizer. A competing incumbent is
        scored in this step anyway, so it is scored first (its verdicts are units: never paid twice);
        otherwise its verdicts are known once it was a scored candidate."""
        if self.settings.incumbent_competes:
            self._verdicts[:] = [0, 0]
            self._report(t, "scoring", "the current method, whose dev failures the optimizer is shown")
            await self.score(method)
        failed = [v for v in method_verdicts(self.run.state, method.id, self.split.dev) if v.failed]
        originals = {item.seed_id: item.instruction for item in self.split.dev}
        return tuple(DevFailure.of(v, originals.get(v.seed_id, "")) for v in failed[:SHOWN_DEV_FAILURES])

    async def _score_all(
        self, current: EvolvingMethod, candidates: Sequence[Candidate]
    ) -> tuple[list[Entry], list[Screened]]:
        s = self.settings
        usable = {c.index: c.method for c in candidates if c.method is not None}
        competes = s.incumbent_competes
        if not (s.screen_size and s.screen_size < len(self.split.dev)):
            methods = [*usable.values(), *([current] if competes else [])]
            scores = await all_of(self.score(m) for m in methods)
            entries = [Entry(i, sc) for i, sc in zip(usable, scores[: len(usable)], strict=True)]
            return entries + ([Entry(-1, scores[-1])] if competes else []), []
        # The incumbent's full score (cached after step 1) is the first bound; in `paper` it does not
        # compete, and a method that cannot be selected must not decide who can.
        slices = await all_of([*([self.score(current)] if competes else []),
                               *(self.score(m, s.screen_size) for m in usable.values())])
        incumbent = slices.pop(0) if competes else None

        async def full(indexes: Sequence[int]) -> list[Score]:
            return await all_of(self.score(usable[i]) for i in indexes)

        entries, screened = await screen(dict(zip(usable, slices, strict=True)), full,
                                         incumbent.failures if incumbent else None)
        return entries + ([Entry(-1, incumbent)] if incumbent else []), screened

    async def run_loop(self, initial: EvolvingMethod) -> LoopState:
        state = LoopState(current=initial, best=initial,
                          dev_set={"size": len(self.split.dev), "hash": self.split.dev_hash()})
        for t in range(1, self.settings.steps + 1):
            replayed = stored_step(self.run.state, t, self.run.path)
            if replayed is None:
                record = await self.step(t, state)
                self.run.state.set(step_key(t, "record"), record.to_dict())
                self.run.events.emit("step_finished", step=t, selected=record.selected_label,
                                     score=score_to_dict(record.score) if record.score else None)
            else:
                record = replayed
            self._report(t, "step_done", replayed=replayed is not None)
            self._advance(state, record)
            if self.on_step:
                self.on_step(record)
            patience = self.settings.patience
            if patience is not None and state.since_improvement >= patience:
                self.run.events.emit("early_stop", step=t, patience=patience)
                break
        return state

    def _advance(self, state: LoopState, record: StepRecord) -> None:
        state.history.append(record)
        state.current = record.method
        score = record.score
        if score is None:
            state.since_improvement += 1
            return
        if not self.settings.return_best:
            # The paper's loop returns the last selected method, and stops "when λ no longer
            # decreases": a step counts as progress only when it sets a new lowest λ. Comparing with
            # the previous step instead would let a run that swings between two values never stop.
            state.best, state.best_score = state.current, score
            improved = state.lowest_rate is None or score.rate < state.lowest_rate
        else:
            improved = state.best_score is None or better(score, state.best_score, self.settings.tie_break)
            if improved:
                state.best, state.best_score = state.current, score
        if improved:
            state.lowest_rate = score.rate if state.lowest_rate is None else min(state.lowest_rate, score.rate)
            state.since_improvement = 0
        else:
            state.since_improvement += 1


async def _verdict(scorer: DevScorer, method: EvolvingMethod, job: tuple[int, Seed]) -> ItemVerdict:
    return await scorer.verdict(method, job[1])


@dataclass(frozen=True, slots=True)
class ScoreRecipe:
    """Dev scoring as picklable configuration: a remote worker rebuilds the scorer around its own
    evol client (the paper's answerer too), with the same policies."""

    method: EvolvingMethod
    rewrite: RewritePolicy
    answer: AnswerPolicy

    def build(self, clients: Clients) -> Callable[[tuple[int, Seed]], Awaitable[ItemVerdict]]:
        return partial(_verdict, DevScorer(clients("evol"), self.rewrite, self.answer), self.method)


def _method_of(index: int, current: EvolvingMethod, candidates: Sequence[Candidate]) -> EvolvingMethod:
    if index < 0:
        return current
    for candidate in candidates:
        if candidate.index == index and candidate.method is not None:
            return candidate.method
    raise ValueError(f"selected candidate {index} has no method")
