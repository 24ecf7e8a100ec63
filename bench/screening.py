"""Screening benchmark (SPEC §7.3): calls spent and methods selected, full dev scoring vs screening.

    python -m bench.screening [--steps 3] [--candidates 5] [--dev 50] [--screen 10] [--rows 300]

For each preset (`default`: the incumbent competes; `paper`: it does not) the same optimisation runs
twice on the same data and the same scripted fake backends (tests/support/optimize_script.py),
once scoring every candidate on the whole dev set and once with `screen_size`. The optimizer
proposes children whose quality q is a fixed pseudo-random step of -1, 0 or +1 from their
parent's, so siblings are close. A method of quality q fails each question with probability q/10,
drawn independently per (method, question) by a hash: failure sets are not nested, so a method can
look better than another on the screening slice and worse on the whole dev set. (An inexact rule,
such as "drop what is worse than the incumbent on the slice", picks a different method here.) Each run
gets a fresh response cache, so every call counted was paid. Screening must select exactly what
full scoring selects, at every step.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from autoevol.api import Roles, optimize_async
from autoevol.config import ExecSettings, evolve_settings, optimize_settings
from autoevol.data.source import DataSource
from autoevol.llm.spec import parse_model_spec
from tests.support.optimize_script import DEFAULT_QUALITY, Child, scripted_world, write_data

_QUALITY_RE = re.compile(r"q(\d+)$")


def _quality(name: str) -> int:
    found = _QUALITY_RE.search(name)
    return int(found.group(1)) if found else DEFAULT_QUALITY


def drifting_plan(parent: str, index: int) -> Child:
    """Child j of `parent`: quality moves by -1..+1 (lower is better), fixed by a hash."""
    quality = _quality(parent)
    digest = hashlib.sha256(f"{parent}/{index}".encode()).digest()
    child = min(10, max(0, quality + digest[0] % 3 - 1))
    return Child(f"m{digest[1:5].hex()}q{child}", quality=child)


def hashed_failures(rows: int) -> Callable[[str], frozenset[int]]:
    """Method name -> the questions it fails: each with probability q/10, independently."""

    @cache
    def failing(name: str) -> frozenset[int]:
        quality = _quality(name)
        return frozenset(
            i for i in range(rows) if hashlib.sha256(f"{name}/{i}".encode()).digest()[0] % 10 < quality
        )

    failing.__name__ = f"hashed_failures_{rows}"
    return failing


@dataclass(frozen=True, slots=True)
class Outcome:
    label: str
    evol_calls: int
    optimizer_calls: int
    steps: list[tuple[int | str, float | None]]  # (selected, λ) per step
    best_id: str
    selected_lambda: float | None
    screened_out: int

    @property
    def calls(self) -> int:
        return self.evol_calls + self.optimizer_calls


def run_once(preset: str, label: str, data: Path, work: Path, args: argparse.Namespace, screen: int | None) -> Outcome:
    os.environ["AUTOEVOL_HOME"] = str(work / f"home-{preset}-{label}")  # a fresh, empty response cache
    world = scripted_world(drifting_plan, failing=hashed_failures(args.rows))
    settings = optimize_settings(preset, steps=args.steps, candidates=args.candidates, dev_size=args.dev,
                                 batch_size=10, screen_size=screen)
    spec = parse_model_spec("openai:fake", base_url="http://127.0.0.1:9/v1")
    outcome = asyncio.run(optimize_async(
        DataSource(data), roles=Roles(evol=spec), out=work / f"run-{preset}-{label}", settings=settings,
        evolve_settings=evolve_settings(preset), exec_settings=ExecSettings(quiet=True), backends=world.backends,
    ))
    return Outcome(
        label=label, evol_calls=world.evol.calls, optimizer_calls=world.optimizer.calls,
        steps=[(r.selected_label, r.rate) for r in outcome.history], best_id=outcome.best.id,
        selected_lambda=outcome.best_lambda, screened_out=sum(len(r.screened_out) for r in outcome.history),
    )


def report(preset: str, full: Outcome, screened: Outcome) -> None:
    for o in (full, screened):
        lams = ", ".join("n/a" if lam is None else f"{lam:.2f}" for _, lam in o.steps)
        picks = ", ".join(str(sel) for sel, _ in o.steps)
        print(f"{preset:<9}{o.label:<8}{o.evol_calls:>11}{o.optimizer_calls:>10}{o.calls:>8}{o.screened_out:>10}  "
              f"[{picks}] [{lams}] -> {o.selected_lambda}")
    same = screened.steps == full.steps and screened.best_id == full.best_id
    print(f"{preset}: call ratio screening/full: {screened.calls / full.calls:.3f} "
          f"(evol calls only: {screened.evol_calls / full.evol_calls:.3f}, saved {full.calls - screened.calls}); "
          f"selection equals full scoring: {'yes' if same else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screening", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--dev", type=int, default=50)
    parser.add_argument("--screen", type=int, default=10)
    parser.add_argument("--rows", type=int, default=300)
    args = parser.parse_args(argv)
    saved_home = os.environ.get("AUTOEVOL_HOME")
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="autoevol-bench-") as tmp:
            work = Path(tmp)
            data = write_data(work / "data.jsonl", args.rows)
            for preset in ("default", "paper"):
                full = run_once(preset, "full", data, work, args, None)
                screened = run_once(preset, "screen", data, work, args, args.screen)
                results.append((preset, full, screened))
    finally:
        if saved_home is None:
            os.environ.pop("AUTOEVOL_HOME", None)
        else:
            os.environ["AUTOEVOL_HOME"] = saved_home
    print(f"steps {args.steps}, m {args.candidates}, dev {args.dev}, screen {args.screen}, rows {args.rows}; "
          "failure sets hashed per (method, question), not nested")
    print(f"{'preset':<9}{'run':<8}{'evol calls':>11}{'opt calls':>10}{'total':>8}{'screened':>10}  "
          "selected per step, λ per step -> final λ")
    for preset, full, screened in results:
        report(preset, full, screened)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
