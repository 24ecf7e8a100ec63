"""Wiring for one optimisation run: read the pool, build the loop from settings, write the result.

    RUN/output/best_method.json   the selected method with its lineage (usable with --method)
    RUN/output/optimization.json  λ per step with intervals, candidates and why any were discarded
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autoevol.config import EvolveSettings, OptimizeSettings
from autoevol.data.source import DataSource
from autoevol.data.writers import atomic_write_text
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
    # `seeds()` applies --limit as the evolve phase does (bad rows count), so both phases see the same data.
    return make_split(source.seeds(), pool_size=settings.pool_size, dev_size=settings.dev_size,
                      batch_size=settings.batch_size, seed=seed)


def build_optimizer(
    evol: LLM, optimizer: LLM, split: Split, run: RunDir, opt: OptimizeSettings, evo: EvolveSettings,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> Optimizer:
    scorer = DevScorer(evol, rule_set=opt.rule_set, count_parse_failures=opt.count_parse_failures,
                       evol_max_tokens=evo.evol_max_tokens, respond_max_tokens=evo.respond_max_tokens,
                       math_answers=evo.math_answers)
    proposer = Proposer(optimizer, temperature=opt.optimizer_temperature, top_p=opt.optimizer_top_p,
                        max_tokens=opt.optimizer_max_tokens, hygiene=opt.hygiene)
    return Optimizer(opt, scorer, proposer, split, run, seed=evo.seed, trajectory_max_tokens=evo.evol_max_tokens,
                     on_step=on_step)


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
