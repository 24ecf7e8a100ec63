"""Wiring for one optimisation run: read the pool, build the loop from settings, write the result.

    RUN/output/best_method.json   the selected method with its lineage (usable with --method)
    RUN/output/optimization.json  λ per step with intervals, and why each candidate won or lost
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autoevol.config import EvolveSettings, OptimizeSettings
from autoevol.data.source import DataSource
from autoevol.evolution.attempt import AnswerPolicy, RewritePolicy, answer_handling
from autoevol.files import atomic_write_text
from autoevol.llm.client import LLM
from autoevol.methods.method import EvolvingMethod
from autoevol.optimization.loop import LoopProgress, LoopState, Optimizer
from autoevol.optimization.propose import Proposer
from autoevol.optimization.records import StepRecord
from autoevol.optimization.score import DevScorer
from autoevol.optimization.split import Split, make_split
from autoevol.store.run import RunDir


@dataclass(frozen=True, slots=True)
class OptimizeOutcome:
    best: EvolvingMethod
    history: list[StepRecord]
    best_lambda: float | None
    initial: EvolvingMethod | None = None  # the method the search started from (the first parent)


def read_split(source: DataSource, settings: OptimizeSettings, seed: int) -> Split:
    # `seeds()` applies --limit as the evolve phase does (bad rows count), so both phases see the same data.
    return make_split(source.seeds(), pool_size=settings.pool_size, dev_size=settings.dev_size,
                      batch_size=settings.batch_size, seed=seed)


def build_optimizer(
    evol: LLM, optimizer: LLM, split: Split, run: RunDir, opt: OptimizeSettings, evo: EvolveSettings,
    on_step: Callable[[StepRecord], None] | None = None, on_progress: LoopProgress | None = None,
) -> Optimizer:
    scorer = DevScorer(evol, *scoring_policies(opt, evo))
    proposer = Proposer(optimizer, temperature=opt.optimizer_temperature, top_p=opt.optimizer_top_p,
                        max_tokens=opt.optimizer_max_tokens, hygiene=opt.hygiene)
    # The optimizer must see what the method really does: one attempt, no fallback, no retry.
    shown = RewritePolicy(temperature=evo.evol_temperature, max_tokens=evo.evol_max_tokens,
                          phase="optimize.trajectory", on_answer=answer_handling(opt.rule_set, final_pass=False))
    return Optimizer(opt, scorer, proposer, split, run, seed=evo.seed, trajectory_policy=shown, on_step=on_step,
                     on_progress=on_progress)


def scoring_policies(opt: OptimizeSettings, evo: EvolveSettings) -> tuple[RewritePolicy, AnswerPolicy]:
    """Dev items are evolved as the final pass will evolve them (temperature, caps, what a cut-off
    answer becomes), judged by the optimisation's rules; answers use the plain prompt unless
    `score_math_answers`. An unparsable rewrite is re-asked only `score_parse_retries` times (none
    by default: SPEC §5.8 counts it as a failure while scoring, the final pass's retry aside)."""
    phase = "optimize.score"
    rewrite = RewritePolicy(temperature=evo.evol_temperature, max_tokens=evo.evol_max_tokens,
                            retries=opt.score_parse_retries, whole_output_fallback=not opt.count_parse_failures,
                            phase=phase, on_answer=answer_handling(opt.rule_set, final_pass=False))
    answer = AnswerPolicy(temperature=evo.respond_temperature, max_tokens=evo.respond_max_tokens,
                          rule_set=opt.rule_set, math=opt.score_math_answers, phase=phase, on_cut=evo.cut_answers)
    return rewrite, answer


def lineage(state: LoopState, models: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    chain: list[str] = []
    by_id = {r.method.id: r.method for r in state.history}
    parent = state.best.parent_id
    while parent and parent not in chain:
        chain.append(parent)
        known = by_id.get(parent)
        parent = known.parent_id if known else None
    return {
        "parent_chain": chain,
        "lambda_history": [
            {"step": r.step, "selected": r.selected_label, "lambda": r.rate,
             "ci95": r.score.to_dict()["ci95"] if r.score else None}
            for r in state.history
        ],
        "best_lambda": state.best_score.rate if state.best_score else None,
        "selected_on": {"models": models, "data": data, "dev_set": state.dev_set},
    }


def step_report(record: StepRecord) -> dict[str, Any]:
    """One step of optimization.json: the scores, and for every candidate why it won or lost."""
    why = {o.index: o for o in record.outcomes}
    return {
        "step": record.step, "selected": record.selected_label, "lambda": record.rate,
        "decided_by": record.decided_by,
        "scores": {str(e.index): e.score.to_dict() for e in record.scores},
        "screened_out": [s.to_dict() for s in record.screened_out],
        "candidates": [
            {"index": c.index, "rejected": c.rejected, "repaired": c.repaired,
             "method_id": c.method.id if c.method else None,
             "outcome": why[c.index].outcome if c.index in why else None,
             "why": why[c.index].detail if c.index in why else None}
            for c in record.candidates
        ],
    }


def write_result(run: RunDir, state: LoopState, models: dict[str, Any], data: dict[str, Any]) -> OptimizeOutcome:
    info = lineage(state, models, data)
    artifact = state.best.to_dict() | {"lineage": info}
    atomic_write_text(run.output / "best_method.json", json.dumps(artifact, indent=2, ensure_ascii=False) + "\n")
    steps = [step_report(r) for r in state.history]
    # B21: with a strong evol LLM every λ can be 0 and the tie-break proxy picks every method; say how often.
    tie_decided = sum(r.decided_by not in ("lambda", "only one scored", "nothing scored") for r in state.history)
    atomic_write_text(run.output / "optimization.json",
                      json.dumps({"steps": steps, "steps_decided_by_tie_break": tie_decided, **info},
                                 indent=2, ensure_ascii=False) + "\n")
    return OptimizeOutcome(best=state.best, history=state.history, best_lambda=info["best_lambda"])
