"""A cost estimate printed before a run: calls and tokens for optimisation and for the final
evolution, from the settings and a sample of the data. Completion tokens are upper bounds (the
token caps); prompt tokens use ~1.35 tokens per word, a fair average for English BPE vocabularies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autoevol.config import EvolveSettings, OptimizeSettings
from autoevol.data.records import Seed
from autoevol.methods.method import EvolvingMethod

TOKENS_PER_WORD = 1.35


def _tokens(text: str) -> int:
    return int(len(text.split()) * TOKENS_PER_WORD) + 4


@dataclass(frozen=True, slots=True)
class Estimate:
    optimize_calls: int
    optimize_tokens: int
    evolve_calls: int
    evolve_tokens: int
    #: The completion (output) part of the token figures above, for pricing: at most the caps.
    optimize_completion: int = 0
    evolve_completion: int = 0

    def cost(self, price_in: float, price_out: float, phase: str) -> float:
        """Dollars for one phase ("optimize" or "evolve") at prices per million prompt / completion tokens."""
        total, completion = (
            (self.optimize_tokens, self.optimize_completion) if phase == "optimize"
            else (self.evolve_tokens, self.evolve_completion)
        )
        return ((total - completion) * price_in + completion * price_out) / 1e6

    def lines(self, price_in: float | None = None, price_out: float | None = None) -> list[str]:
        """One line per phase; with a price, also its cost (each missing price counts as 0)."""
        out = []
        for phase, label, calls, tokens in (
            ("optimize", "optimisation", self.optimize_calls, self.optimize_tokens),
            ("evolve", "final evolution", self.evolve_calls, self.evolve_tokens),
        ):
            line = f"{label}: ~{calls:,} calls, up to ~{tokens:,} tokens"
            if price_in is not None or price_out is not None:
                line += f", up to ~${self.cost(price_in or 0.0, price_out or 0.0, phase):,.2f}"
            out.append(line)
        return out


def estimate(
    opt: OptimizeSettings | None, evo: EvolveSettings, n_seeds: int, sample: Sequence[Seed], method: EvolvingMethod
) -> Estimate:
    instr = sum(_tokens(s.instruction) for s in sample) / max(len(sample), 1)
    method_tokens = _tokens(method.template)
    evolve_call = method_tokens + instr + evo.evol_max_tokens
    answer_call = instr * 1.3 + evo.respond_max_tokens + 30
    per_seed_calls = 2 + int(evo.judges)
    evolve_calls = n_seeds * evo.rounds * per_seed_calls
    evolve_tokens = int(n_seeds * evo.rounds * (evolve_call + answer_call))
    completion_per_item = evo.evol_max_tokens + evo.respond_max_tokens
    evolve_completion = n_seeds * evo.rounds * completion_per_item
    if opt is None:
        return Estimate(0, 0, evolve_calls, evolve_tokens, evolve_completion=evolve_completion)
    # A competing incumbent is full-scored once: from step 2 on it is the method the previous step
    # selected, whose dev verdicts are already stored (and e0's own score is paid only in step 1).
    incumbent_calls = int(opt.incumbent_competes) * opt.dev_size * 2
    evol_per_step = opt.batch_size * opt.trajectory_rounds + opt.candidates * opt.dev_size * 2
    opt_per_step = 2 * opt.candidates
    trajectory_text = opt.batch_size * (opt.trajectory_rounds + 1) * instr * 1.5
    optimizer_tokens = opt.candidates * (2 * trajectory_text + 2 * opt.optimizer_max_tokens + 2 * method_tokens)
    score_tokens = opt.dev_size * (evolve_call + answer_call)
    evol_tokens = opt.batch_size * evolve_call + opt.candidates * score_tokens
    incumbent_tokens = int(opt.incumbent_competes) * score_tokens
    return Estimate(
        optimize_calls=opt.steps * (evol_per_step + opt_per_step) + incumbent_calls,
        optimize_tokens=int(opt.steps * (optimizer_tokens + evol_tokens) + incumbent_tokens),
        evolve_calls=evolve_calls,
        evolve_tokens=evolve_tokens,
        optimize_completion=opt.steps * (
            2 * opt.candidates * opt.optimizer_max_tokens + opt.batch_size * evo.evol_max_tokens
            + opt.candidates * opt.dev_size * completion_per_item
        ) + int(opt.incumbent_competes) * opt.dev_size * completion_per_item,
        evolve_completion=evolve_completion,
    )
