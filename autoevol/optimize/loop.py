"""The Auto Evol-Instruct loop: T steps of trajectory → m proposals → dev scoring → selection.

Persistence (in the run's state.db): each step's trajectory and candidates are stored as soon as
they exist (`opt/<t>/...`), every dev verdict is a unit keyed by (method id, dev item), and a
finished step is stored as one record. A resumed run replays finished steps from the records and
re-pays only calls that were in flight (and the response cache usually has those too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autoevol.config import OptimizeSettings
from autoevol.evolve.attempt import RewritePolicy
from autoevol.methods.method import EvolvingMethod
from autoevol.optimize.propose import Candidate, Proposer, trajectory
from autoevol.optimize.score import DevScorer, ItemVerdict, Score, summarise
from autoevol.optimize.select import Entry, better, select
from autoevol.optimize.split import Split
from autoevol.store.run import RunDir

SCORE_PHASE = "score"


@dataclass(slots=True)
class LoopState:
    current: EvolvingMethod
    best: EvolvingMethod
    best_score: Score | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    since_improvement: int = 0
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
    on_step: Callable[[dict[str, Any]], None] | None = None

    async def score(self, method: EvolvingMethod, items: int | None = None) -> Score:
        dev = self.split.dev[: items or len(self.split.dev)]

        async def one(seq: int) -> ItemVerdict:
            item = dev[seq]
            key = f"{SCORE_PHASE}|{method.id}|{item.seed_id}"
            stored = self.run.state.get(key)
            if stored is not None:
                return ItemVerdict(**stored)
            verdict = await self.scorer.verdict(method, item)
            self.run.state.put(key, phase=SCORE_PHASE, round=0, seq=seq, payload=verdict.to_dict())
            return verdict

        verdicts = list(await asyncio.gather(*(one(i) for i in range(len(dev)))))
        return summarise(method.id, verdicts)

    async def step(self, t: int, state: LoopState) -> dict[str, Any]:
        s = self.settings
        batch = self.split.minibatch(t, s.batch_size, self.seed)
        traj = self.run.state.read(f"opt/{t}/trajectory")
        if traj is None:
            traj = await trajectory(self.scorer.evol, state.current, batch, s.trajectory_rounds,
                                    self.trajectory_policy)
            self.run.state.set(f"opt/{t}/trajectory", traj)
        stored = self.run.state.read(f"opt/{t}/candidates")
        if stored is None:
            candidates = await self.proposer.propose(s.candidates, traj, state.current, t)
            self.run.state.set(f"opt/{t}/candidates", [c.to_dict() for c in candidates])
        else:
            candidates = [Candidate.from_dict(c) for c in stored]
        entries, screened = await self._score_all(state.current, candidates)
        chosen = select(entries, s.tie_break)
        return {
            "step": t, "batch": [item.seed_id for item in batch], "trajectory": traj,
            "candidates": [c.to_dict() for c in candidates], "screened_out": screened,
            "scores": {str(e.index): e.score.to_dict() for e in entries},
            "selected": chosen.index if chosen else -1,
            "method": (_method_of(chosen.index, state.current, candidates) if chosen else state.current).to_dict(),
            "lambda": chosen.score.rate if chosen else None,
            "score": chosen.score.to_dict() if chosen else None,
        }

    async def _score_all(
        self, current: EvolvingMethod, candidates: list[Candidate]
    ) -> tuple[list[Entry], list[int]]:
        s = self.settings
        usable = [c for c in candidates if c.method is not None]
        screened: list[int] = []
        if s.screen_size and s.screen_size < len(self.split.dev):
            # Cheap first pass: only candidates not worse than the incumbent on a slice get the full dev set.
            bar, *slices = await asyncio.gather(
                self.score(current, s.screen_size), *(self.score(c.method, s.screen_size) for c in usable if c.method)
            )
            limit = bar.failures
            if not s.incumbent_competes and slices and min(sc.failures for sc in slices) > limit:
                # Nobody beats the incumbent on the slice, but the incumbent cannot be kept: the
                # candidates that did best on the slice go on, so the step still selects one.
                limit = min(sc.failures for sc in slices)
            keep = [c for c, sc in zip(usable, slices, strict=True) if sc.failures <= limit]
            screened = [c.index for c in usable if c not in keep]
            usable = keep
        methods = [c.method for c in usable if c.method is not None]
        if s.incumbent_competes:
            methods.append(current)  # scored alongside the candidates, not after them
        scores = await asyncio.gather(*(self.score(m) for m in methods))
        entries = [Entry(c.index, sc) for c, sc in zip(usable, scores[: len(usable)], strict=True)]
        if s.incumbent_competes:
            entries.append(Entry(-1, scores[-1]))
        return entries, screened

    async def run_loop(self, initial: EvolvingMethod) -> LoopState:
        state = LoopState(current=initial, best=initial,
                          dev_set={"size": len(self.split.dev), "hash": self.split.dev_hash()})
        for t in range(1, self.settings.steps + 1):
            record = self.run.state.read(f"opt/{t}/record")
            if record is None:
                record = await self.step(t, state)
                self.run.state.set(f"opt/{t}/record", record)
                self.run.events.emit("step_finished", step=t, selected=record["selected"], score=record["score"])
            self._advance(state, record)
            if self.on_step:
                self.on_step(record)
            patience = self.settings.patience
            if patience is not None and state.since_improvement >= patience:
                self.run.events.emit("early_stop", step=t, patience=patience)
                break
        return state

    def _advance(self, state: LoopState, record: dict[str, Any]) -> None:
        state.history.append(record)
        state.current = EvolvingMethod.from_dict(record["method"])
        if record["score"] is None:
            state.since_improvement += 1
            return
        score = Score(**{k: v for k, v in _score_fields(record["score"]).items()})
        if not self.settings.return_best:
            # The paper's loop: the last selected method is the answer.
            state.best, state.best_score = state.current, score
            return
        if state.best_score is None or better(score, state.best_score, self.settings.tie_break):
            state.best, state.best_score, state.since_improvement = state.current, score, 0
        else:
            state.since_improvement += 1


def _method_of(index: int, current: EvolvingMethod, candidates: list[Candidate]) -> EvolvingMethod:
    if index < 0:
        return current
    for candidate in candidates:
        if candidate.index == index and candidate.method is not None:
            return candidate.method
    raise ValueError(f"selected candidate {index} has no method")


def _score_fields(data: dict[str, Any]) -> dict[str, Any]:
    low, high = data["ci95"]
    return {"method_id": data["method_id"], "failures": data["failures"], "n": data["n"], "low": low, "high": high,
            "length_ratio": data["length_ratio"]}
