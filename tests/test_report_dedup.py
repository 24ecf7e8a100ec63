"""The near-duplicate search returns exactly what comparing every pair returns.

The reference below is the definition written out as an O(n²) loop; the worlds are random but
seeded, and built so that pairs sit at, just above and just below each threshold.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest

from autoevol.quality.dedup import (
    DuplicatePair,
    jaccard,
    near_copies_of,
    near_duplicates,
    near_duplicates_and_copies,
    shingles,
)
from autoevol.quality.metrics import ngrams, words

THRESHOLDS = (0.5, 0.7, 0.8, 0.95, 1.0)
# Pairs at, just below and just above those thresholds; 14/25 and 7/50 are 0.56 and 0.14, where
# float products miss whole numbers (see test_float_rounding_does_not_lose_a_pair_at_the_threshold).
FRACTIONS = ((1, 2), (7, 10), (4, 5), (19, 20), (20, 20), (3, 4), (6, 10), (8, 10), (18, 20), (14, 25), (7, 50))

# -- the reference --------------------------------------------------------------------------------


def reference_shingles(text: str) -> set[str]:
    tokens = words(text)
    if len(tokens) < 3:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(g) for g in ngrams(tokens, 3)}


def best_match(items: set[str], others: dict[int, set[str]], threshold: float) -> tuple[int, float] | None:
    found = [(jaccard(items, other), -key) for key, other in others.items() if jaccard(items, other) >= threshold]
    if not found:
        return None
    sim, neg = max(found)
    return -neg, sim


def brute_duplicates(texts: Sequence[str], threshold: float) -> list[DuplicatePair]:
    kept: dict[int, set[str]] = {}
    pairs = []
    for i, text in enumerate(texts):
        items = reference_shingles(text)
        if not items:
            continue
        hit = best_match(items, kept, threshold)
        if hit is None:
            kept[i] = items
        else:
            pairs.append(DuplicatePair(i, *hit))
    return pairs


def brute_copies(texts: Sequence[str], seeds: Sequence[str], threshold: float) -> list[DuplicatePair]:
    indexed = {j: reference_shingles(s) for j, s in enumerate(seeds) if reference_shingles(s)}
    pairs = []
    for i, text in enumerate(texts):
        items = reference_shingles(text)
        hit = best_match(items, indexed, threshold) if items else None
        if hit is not None:
            pairs.append(DuplicatePair(i, *hit))
    return pairs


# -- random worlds --------------------------------------------------------------------------------


def mutate(tokens: list[str], rng: random.Random, vocab: Sequence[str]) -> list[str]:
    """One small edit: a word replaced, inserted, dropped or recased, or two words swapped."""
    out = list(tokens)
    at = rng.randrange(len(out)) if out else 0
    kind = rng.randrange(5)
    if kind == 0 and out:
        out[at] = rng.choice(vocab)
    elif kind == 1 or not out:
        out.insert(at, rng.choice(vocab))
    elif kind == 2:
        del out[at]
    elif kind == 3:
        out[at] = out[at].upper()  # case is ignored: the shingles do not change
    elif at + 1 < len(out):
        out[at], out[at + 1] = out[at + 1], out[at]
    return out


def at_fraction(rng: random.Random, vocab: Sequence[str], shared: int, total: int) -> tuple[str, str]:
    """Two texts whose shingle sets have Jaccard exactly shared/total (shared of total 3-grams)."""
    base = [f"{rng.choice(vocab)}_{k}" for k in range(total + 2)]  # distinct words: distinct shingles
    return " ".join(base), " ".join(base[: shared + 2])


def world(seed: int) -> tuple[list[str], list[str]]:
    """(texts, seeds): chains of edits of base texts, exact-fraction pairs, short, empty and repeated texts."""
    rng = random.Random(seed)
    vocab = [f"w{k}" for k in range(rng.choice((6, 30, 400)))] + ["Ünïcode", "naïve", "x2"]
    bases = [[rng.choice(vocab) for _ in range(rng.randint(0, 25))] for _ in range(rng.randint(5, 25))]
    texts: list[str] = []
    for tokens in bases:
        for _ in range(rng.randint(1, 6)):  # a chain a -> b -> c: c may be far from a and close to b
            texts.append(" ".join(tokens) + rng.choice(("", "?", ".", " !!")))
            tokens = mutate(tokens, rng, vocab)
    for shared, total in FRACTIONS:
        texts += at_fraction(rng, vocab, shared, total)
    texts += ["", "?!", "hi", "Hi there", "HI THERE", "hi there friend", *rng.sample(texts, 10)]
    rng.shuffle(texts)
    seeds = rng.sample(texts, len(texts) // 4) + [" ".join(mutate(b, rng, vocab)) for b in bases]
    rng.shuffle(seeds)
    return texts, seeds


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_random_worlds_match_the_brute_force_answer(seed: int) -> None:
    texts, seeds = world(seed)
    assert all(shingles(t) == reference_shingles(t) for t in texts)
    for threshold in (*THRESHOLDS, 0.0, 0.05, 0.14, 0.33, 0.56, 0.6):
        within, copies = brute_duplicates(texts, threshold), brute_copies(texts, seeds, threshold)
        assert near_duplicates(texts, threshold) == within, threshold
        assert near_copies_of(texts, seeds, threshold) == copies, threshold
        assert near_duplicates_and_copies(texts, seeds, threshold) == (within, copies), threshold


def test_the_worlds_have_pairs_on_both_sides_of_each_threshold() -> None:
    """Guards the test above: its worlds really exercise the edge, not just easy pairs."""
    sims: list[float] = []
    for seed in range(12):
        sets = [s for s in map(reference_shingles, world(seed)[0]) if s]
        sims += [jaccard(a, b) for k, a in enumerate(sets) for b in sets[:k]]
    for threshold in THRESHOLDS:
        assert threshold in sims  # exactly at it
        assert any(threshold - 0.1 < s < threshold for s in sims)
        if threshold < 1:
            assert any(threshold < s < threshold + 0.1 for s in sims)


def test_a_pair_exactly_at_the_threshold_is_always_found() -> None:
    """Four of five shingles shared: Jaccard 0.8 exactly. A MinHash sketch estimates it with noise,
    so LSH at 0.8 misses such a pair about half the time; the exact search never does."""
    rng = random.Random(7)
    for _ in range(50):
        a, b = at_fraction(rng, [f"v{k}" for k in range(50)], 4, 5)
        assert near_duplicates([a, b], 0.8) == [DuplicatePair(1, 0, 0.8)]
        assert near_copies_of([b], [a], 0.8) == [DuplicatePair(0, 0, 0.8)]
        assert near_duplicates([a, b], math.nextafter(0.8, 1)) == []


@pytest.mark.parametrize(("shared", "total", "threshold"), [(14, 25, 0.56), (7, 50, 0.14)])
def test_float_rounding_does_not_lose_a_pair_at_the_threshold(shared: int, total: int, threshold: float) -> None:
    """0.56 * 25 is 14.000000000000002 and 14 / 0.56 is 24.999999999999996 in floats, though 14 of 25
    is exactly 0.56: a prefix or size bound computed from the bare threshold would drop this pair."""
    assert threshold * total > shared and shared / threshold < total and shared / total == threshold
    small, big = reversed(at_fraction(random.Random(3), ["a", "b"], shared, total))
    for first, second in ((small, big), (big, small)):
        assert near_duplicates([first, second], threshold) == [DuplicatePair(1, 0, threshold)]
        assert near_copies_of([second], [first], threshold) == [DuplicatePair(0, 0, threshold)]


def test_a_chain_keeps_its_first_member_and_ties_go_to_the_lowest_index() -> None:
    a = "one two three four five six seven eight nine ten eleven"
    b = a + " twelve"  # 9 of a's 9 shingles, plus one: 0.9 to a
    c = b + " thirteen"  # 0.9 to b, 0.818 to a
    assert [(p.row, p.other) for p in near_duplicates([a, b, c], 0.85)] == [(1, 0)]  # c is near b, not a: kept
    assert [(p.row, p.other) for p in near_duplicates([b, a, c], 0.85)] == [(1, 0), (2, 0)]
    twins = near_copies_of([a], [b, a.upper(), a], 0.5)
    assert twins == [DuplicatePair(0, 1, 1.0)]


def test_empty_and_short_texts() -> None:
    assert near_duplicates(["", "?", "", "Hi", "hi!", "hi there", "Hi, there."], 0.8) == [
        DuplicatePair(4, 3, 1.0), DuplicatePair(6, 5, 1.0)]
    assert near_copies_of(["", "ok"], ["", "OK"], 1.0) == [DuplicatePair(1, 1, 1.0)]
    assert near_duplicates([], 0.8) == [] and near_copies_of(["a b c"], [], 0.8) == []


@pytest.mark.parametrize("threshold", [-0.1, 1.5, math.nan])
def test_a_threshold_outside_0_1_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(["a b c"], threshold)
