"""Wiring for one optimisation run: read the pool, build the loop from settings, write the result.

    RUN/output/best_method.json   the selected method with its lineage (usable with --method)
    RUN/output/optimization.json  λ per step with intervals, candidates and why any were discarded
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from autoevol.config import EvolveSettings, OptimizeSettings
from autoevol.data.readers import iter_seeds
from autoevol.data.records import Seed
from autoevol.data.source import DataSource
from autoevol.data.writers import atomic_write_text
from autoevol.evolve.attempt import AnswerPolicy, RewritePolicy
from autoevol.llm.client import LLM
from autoevol.methods.method import EvolvingMethod
from autoevol.optimize.loop import LoopState, Optimizer
from autoevol.optimize.propose import Proposer
from autoevol.optimize.score import DevScorer
from autoevol.optimize.split import Split, make_split
from autoevol.store.run import RunDir


@dataclass(frozen=True, slots=True)
class OptimizeOutcome:
    best: EvolvingMethod
    history: list[dict[str, Any]]
    best_lambda: float | None


def read_split(source: DataSource, settings: OptimizeSettings, seed: int) -> Split:
    rows = iter_seeds(source.path, schema=source.schema, field=source.field, id_field=source.id_field,
                      on_bad_row="skip")
    # --limit counts rows as the evolve phase does (bad rows included), so both phases see the same data.
    seeds = (s for s in islice(rows, source.limit) if isinstance(s, Seed))
    return make_split(seeds, pool_size=settings.pool_size, dev_size=settings.dev_size,
                      batch_size=settings.batch_size, seed=seed)


def build_optimizer(
    evol: LLM, optimizer: LLM, split: Split, run: RunDir, opt: OptimizeSettings, evo: EvolveSettings,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> Optimizer:
    scorer = DevScorer(evol, *scoring_policies(opt, evo))
    proposer = Proposer(optimizer, temperature=opt.optimizer_temperature, top_p=opt.optimizer_top_p,
                        max_tokens=opt.optimizer_max_tokens, hygiene=opt.hygiene)
    # The optimizer must see what the method really does: one attempt, no fallback, no retry.
    shown = RewritePolicy(temperature=evo.evol_temperature, max_tokens=evo.evol_max_tokens,
                          phase="optimize.trajectory")
    return Optimizer(opt, scorer, proposer, split, run, seed=evo.seed, trajectory_policy=shown, on_step=on_step)


def scoring_policies(opt: OptimizeSettings, evo: EvolveSettings) -> tuple[RewritePolicy, AnswerPolicy]:
    """Dev items are evolved as the final pass will evolve them (temperature, retries, caps), judged
    by the optimisation's rules; answers use the plain prompt unless `score_math_answers`."""
    phase = "optimize.score"
    rewrite = RewritePolicy(temperature=evo.evol_temperature, max_tokens=evo.evol_max_tokens,
                            retries=evo.parse_retries, whole_output_fallback=not opt.count_parse_failures,
                            phase=phase)
    answer = AnswerPolicy(temperature=evo.respond_temperature, max_tokens=evo.respond_max_tokens,
                          rule_set=opt.rule_set, math=opt.score_math_answers, phase=phase)
    return rewrite, answer


def lineage(state: LoopState, models: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    chain: list[str] = []
    by_id = {r["method"]["id"]: r["method"] for r in state.history if "id" in r["method"]}
    parent = state.best.parent_id
    while parent and parent not in chain:
        chain.append(parent)
        parent = by_id.get(parent, {}).get("parent_id")
    return {
        "parent_chain": chain,
        "lambda_history": [
            {"step": r["step"], "selected": r["selected"], "lambda": r["lambda"],
             "ci95": r["score"]["ci95"] if r["score"] else None}
            for r in state.history
        ],
        "best_lambda": state.best_score.rate if state.best_score else None,
        "selected_on": {"models": models, "data": data, "dev_set": state.dev_set},
    }


def write_result(run: RunDir, state: LoopState, models: dict[str, Any], data: dict[str, Any]) -> OptimizeOutcome:
    info = lineage(state, models, data)
    artifact = state.best.to_dict() | {"lineage": info}
    atomic_write_text(run.output / "best_method.json", json.dumps(artifact, indent=2, ensure_ascii=False) + "\n")
    steps = [
        {"step": r["step"], "selected": r["selected"], "lambda": r["lambda"], "scores": r["scores"],
         "screened_out": r["screened_out"],
         "candidates": [{"index": c["index"], "rejected": c["rejected"], "repaired": c["repaired"],
                         "method_id": c["method"]["id"] if c["method"] else None} for c in r["candidates"]]}
        for r in state.history
    ]
    atomic_write_text(run.output / "optimization.json",
                      json.dumps({"steps": steps, **info}, indent=2, ensure_ascii=False) + "\n")
    return OptimizeOutcome(best=state.best, history=state.history, best_lambda=info["best_lambda"])
