"""Screening benchmark (SPEC §7.3): calls spent and λ selected, full dev scoring vs screening.

    python -m bench.screening [--steps 3] [--candidates 5] [--dev 50] [--screen 10] [--rows 300]

Both runs use the `paper` preset on the same data and the same scripted fake backends
(tests/support/optimize_script.py): a method's dev failure rate is set by a QUALITY tag and the
optimizer proposes children whose quality is a fixed pseudo-random step from their parent's, most
of them worse, as real rewrites often are. The only difference is `screen_size`: every candidate
is first scored on that many dev items, and only those not worse than the incumbent there get the
full dev set. Each run gets a fresh response cache, so every call counted was paid.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autoevol.api import Roles, optimize_async
from autoevol.config import ExecSettings, evolve_settings, optimize_settings
from autoevol.data.source import DataSource
from autoevol.llm.spec import parse_model_spec
from tests.support.optimize_script import DEFAULT_QUALITY, Child, scripted_world, write_data

_QUALITY_RE = re.compile(r"q(\d+)$")


def drifting_plan(parent: str, index: int) -> Child:
    """Child j of `parent`: quality moves by -2..+4 (lower is better), fixed by a hash."""
    found = _QUALITY_RE.search(parent)
    quality = int(found.group(1)) if found else DEFAULT_QUALITY
    digest = hashlib.sha256(f"{parent}/{index}".encode()).digest()
    child = min(10, max(0, quality + digest[0] % 7 - 2))
    return Child(f"m{digest[1:5].hex()}q{child}", quality=child)


@dataclass(frozen=True, slots=True)
class Outcome:
    label: str
    evol_calls: int
    optimizer_calls: int
    step_lambdas: list[float | None]
    selected_lambda: float | None
    screened_out: int

    @property
    def calls(self) -> int:
        return self.evol_calls + self.optimizer_calls


def run_once(label: str, data: Path, work: Path, args: argparse.Namespace, screen: int | None) -> Outcome:
    os.environ["AUTOEVOL_HOME"] = str(work / f"home-{label}")  # a fresh, empty response cache
    world = scripted_world(drifting_plan)
    settings = optimize_settings("paper", steps=args.steps, candidates=args.candidates, dev_size=args.dev,
                                 batch_size=10, screen_size=screen)
    spec = parse_model_spec("openai:fake", base_url="http://127.0.0.1:9/v1")
    outcome = asyncio.run(optimize_async(
        DataSource(data), roles=Roles(evol=spec), out=work / f"run-{label}", settings=settings,
        evolve_settings=evolve_settings("paper"), exec_settings=ExecSettings(quiet=True), backends=world.backends,
    ))
    return Outcome(
        label=label, evol_calls=world.evol.calls, optimizer_calls=world.optimizer.calls,
        step_lambdas=[r["lambda"] for r in outcome.history], selected_lambda=outcome.best_lambda,
        screened_out=sum(len(r["screened_out"]) for r in outcome.history),
    )


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
    try:
        with tempfile.TemporaryDirectory(prefix="autoevol-bench-") as tmp:
            work = Path(tmp)
            data = write_data(work / "data.jsonl", args.rows)
            full = run_once("paper", data, work, args, None)
            screened = run_once("paper+screen", data, work, args, args.screen)
    finally:
        if saved_home is None:
            os.environ.pop("AUTOEVOL_HOME", None)
        else:
            os.environ["AUTOEVOL_HOME"] = saved_home
    print(f"steps {args.steps}, m {args.candidates}, dev {args.dev}, screen {args.screen}, rows {args.rows}")
    print(f"{'run':<14}{'evol calls':>11}{'opt calls':>10}{'total':>8}{'screened':>10}  λ per step -> selected λ")
    for o in (full, screened):
        lams = ", ".join("n/a" if x is None else f"{x:.2f}" for x in o.step_lambdas)
        print(f"{o.label:<14}{o.evol_calls:>11}{o.optimizer_calls:>10}{o.calls:>8}{o.screened_out:>10}  "
              f"[{lams}] -> {o.selected_lambda}")
    print(f"call ratio screening/paper: {screened.calls / full.calls:.3f} "
          f"(evol calls only: {screened.evol_calls / full.evol_calls:.3f})")
    same = "same" if screened.selected_lambda == full.selected_lambda else "DIFFERENT"
    print(f"selected λ: paper {full.selected_lambda}, screening {screened.selected_lambda} ({same})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
