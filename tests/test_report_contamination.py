"""Contamination against a plain per-gram reference (the index is built with dict.update over
reversed items and probed with set intersections, which must not change which item a row is
charged to). The worlds use a vocabulary of four words, so rows share short n-grams with many items
and long ones with few."""

from __future__ import annotations

import random

import pytest

from autoevol.quality.contamination import Benchmark, Match, contamination
from autoevol.quality.metrics import ngrams, words


def reference(texts: list[str], bench: Benchmark, n: int) -> tuple[int, int, list[Match]]:
    owner: dict[tuple[str, ...], int] = {}
    for j, text in enumerate(bench.texts):
        for gram in ngrams(words(text), n):
            owner.setdefault(gram, j)
    matches, items = [], set()
    for i, text in enumerate(texts):
        hits = [(gram, owner[gram]) for gram in ngrams(words(text), n) if gram in owner]
        items.update(j for _, j in hits)
        if hits:
            matches.append(Match(i, bench.ids[hits[0][1]], " ".join(hits[0][0])))
    return len(matches), len(items), matches


@pytest.mark.parametrize("seed", range(8))
def test_every_n_matches_the_reference_on_a_crowded_world(seed: int) -> None:
    rng = random.Random(seed)
    vocabulary = ["a", "b", "c", "d"]

    def text(length: int) -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(length))

    bench = Benchmark("tiny", tuple(f"tiny:{j}" for j in range(30)), tuple(text(rng.randint(5, 40)) for _ in range(30)))
    texts = [text(rng.randint(0, 30)) for _ in range(60)]
    texts += [bench.texts[rng.randrange(30)][: rng.randint(10, 60)] for _ in range(10)]  # copied pieces
    found = contamination(texts, [bench], ns=(13, 8, 5, 3))
    assert [o.n for o in found] == [13, 8, 5, 3]
    for o in found:
        rows, items, matches = reference(texts, bench, o.n)
        assert (o.rows, o.items, o.matches) == (rows, items, matches), o.n
    assert 0 < found[0].rows < found[-1].rows  # the world has long and short overlaps alike
