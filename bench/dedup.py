"""Near-duplicate search benchmark: `near_duplicates` + `near_copies_of` on GSM8K questions.

    python -m bench.dedup [--rows 1500 10000] [--repeat 3]

The world is shaped like a run's summary check: seeds are real questions, and the checked rows are
other real questions plus planted near-copies (a few words swapped, dropped or appended) of seeds
and of earlier rows, so both searches have real work to verify. The import of
`autoevol.quality.dedup` is timed on its own, in a fresh interpreter, because a run pays it once;
times are medians of --repeat calls, with the first call (which pays any one-off setup) shown too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Questions that ship with the repository (GSM8K test, 1,319, and a 200-question train sample).
SOURCES = (ROOT / "autoevol/quality/benchmarks/gsm8k_test.jsonl",
           ROOT / "autoevol/data/samples/gsm8k_train_sample.jsonl")
FILLER = ("please", "quickly", "exactly", "total", "each", "again", "also", "then", "many", "dollars")


def questions() -> list[str]:
    out: list[str] = []
    for path in SOURCES:
        if path.exists():
            out += [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return list(dict.fromkeys(out))


def mutate(text: str, rng: random.Random) -> str:
    """A near-copy: one to three words replaced, dropped or inserted, or a sentence appended."""
    tokens = text.split()
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(tokens))
        kind = rng.randrange(4)
        if kind == 0:
            tokens[at] = rng.choice(FILLER)
        elif kind == 1 and len(tokens) > 4:
            del tokens[at]
        elif kind == 2:
            tokens.insert(at, rng.choice(FILLER))
        else:
            tokens.append("Show your work.")
    return " ".join(tokens)


def world(rows: int, pool: list[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """(texts, seeds): 80% distinct questions, 20% near-copies, half of seeds and half of rows."""
    rng = random.Random(seed)
    shuffled = rng.sample(pool, len(pool))
    n_seeds, n_base = rows * 7 // 100, rows * 8 // 10
    # More distinct texts than real questions: two questions run together share no 3-gram run
    # long enough to make them near-copies of either, so they stay distinct.
    while len(shuffled) < n_seeds + n_base:
        shuffled.append(f"{rng.choice(pool)} {rng.choice(pool)}")
    seeds, texts = shuffled[:n_seeds], shuffled[n_seeds : n_seeds + n_base]
    while len(texts) < rows:
        source = seeds if rng.random() < 0.5 else texts
        texts.insert(rng.randrange(len(texts) + 1), mutate(rng.choice(source), rng))
    return texts, seeds


def import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import autoevol.quality.dedup; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return float(out.stdout)


def _median_seconds(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, first) wall time of `repeat` calls: the first pays any one-off setup."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times[0]


def measure(rows: int, pool: list[str], repeat: int) -> bool:
    """Print the timings of one world; False when the one-call search disagrees with the two calls."""
    from autoevol.quality import dedup

    texts, seeds = world(rows, pool)
    within, copies = dedup.near_duplicates(texts), dedup.near_copies_of(texts, seeds)
    w, w_first = _median_seconds(partial(dedup.near_duplicates, texts), repeat)
    c, c_first = _median_seconds(partial(dedup.near_copies_of, texts, seeds), repeat)
    print(f"{rows:>6} rows, {len(seeds):>4} seeds: near_duplicates {w:.3f} s ({len(within)} pairs), "
          f"near_copies_of {c:.3f} s ({len(copies)} pairs), total {w + c:.3f} s "
          f"(first calls {w_first + c_first:.3f} s)")
    both = getattr(dedup, "near_duplicates_and_copies", None)  # what a run's summary calls, where it exists
    if both is None:
        return True
    b, _ = _median_seconds(partial(both, texts, seeds), repeat)
    print(f"{'':>24}near_duplicates_and_copies {b:.3f} s")
    return bool(both(texts, seeds) == (within, copies))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dedup")
    parser.add_argument("--rows", type=int, nargs="+", default=[1500, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    imports = [import_seconds() for _ in range(args.repeat)]
    print(f"import autoevol.quality.dedup: {statistics.median(imports):.3f} s (median of {args.repeat})")
    pool = questions()
    for rows in args.rows:
        if not measure(rows, pool, args.repeat):
            print("near_duplicates_and_copies disagrees with near_duplicates + near_copies_of")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
