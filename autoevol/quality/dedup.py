"""Near-duplicate instructions, found exactly by an all-pairs Jaccard search with prefix filtering.

Texts are compared as sets of lowercased word 3-grams ("shingles"; a text shorter than three
words is its own single shingle). Two texts are near-duplicates when the Jaccard similarity of
their shingle sets is at least `threshold`. Two questions are asked of an evolved set:

- within: which rows repeat an earlier row of the same set (the first occurrence is kept);
- against the seeds: which rows are barely changed copies of some seed (their own or another's).

Comparing every pair would be quadratic; instead only pairs that can reach the threshold are
compared (the "All-Pairs" prefix filter of the similarity-join literature), and every candidate is
then checked with the exact Jaccard. The answer is the brute-force answer, for these reasons:

- Every shingle gets a place in one total order, the same for all sets of a search, and each set
  is listed in that order. If J(x, y) >= t, the shared count o = |x ∩ y| is at least
  t * |x ∪ y| >= t * max(|x|, |y|); o is a whole number, so o >= ceil(t * |x|), and likewise for y.
- Take the first shared shingle in the order: the o - 1 other shared shingles come after it in
  both sets, so it is among the first |x| - o + 1 <= |x| - ceil(t * |x|) + 1 shingles of x (x's
  "prefix"), and among the first shingles of y by the same count. So every pair that qualifies
  shares a prefix shingle: indexing each kept set under its prefix shingles and looking a new set
  up by its own prefix shingles finds all of them.
- Also from o >= t * max(|x|, |y|) and o <= min(|x|, |y|): t * |x| <= |y| <= |x| / t. A candidate
  outside that size window cannot qualify and is dropped before the exact check.
- The verdict stays the floating-point comparison `jaccard(x, y) >= threshold`. A pair that passes
  it has a true Jaccard above t * (1 - 2**-52), so the filters use t * (1 - 1e-9): looser than
  needed by far more than the rounding of their own arithmetic, they never drop a pair the
  verdict would keep, such as one at exactly the threshold (4 of 5 shingles at 0.8; or 14 of 25
  at 0.56, where the float 0.56 * 25 is just above 14). At t = 0 every pair qualifies, even one
  with nothing shared, so every kept set is a candidate.

Any fixed order would be exact; rarest first (fewest sets containing the shingle, then first
appearance) only makes the search fast, because prefixes then hold shingles few other sets have,
so the lists looked up are short. Nothing is random: no hashing, sampling or sketches.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from autoevol.quality.metrics import ngrams, words

SHINGLE = 3
DEFAULT_THRESHOLD = 0.8
# How much the filters lower the threshold so float rounding can never make them drop a pair the
# exact check would keep (see the module docstring); any pair this lets through is still checked.
_SLACK = 1e-9


def shingles(text: str, n: int = SHINGLE) -> set[str]:
    return set(_ordered_shingles(text, n))


def _ordered_shingles(text: str, n: int = SHINGLE) -> list[str]:
    # In order of first appearance, so the rarest-first order breaks ties the same way every run
    # (a set's iteration order would change with the interpreter's string hash seed). map rather
    # than a generator: shingling is most of a search's time.
    tokens = words(text)
    if len(tokens) < n:
        return [" ".join(tokens)] if tokens else []
    return list(dict.fromkeys(map(" ".join, ngrams(tokens, n))))


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    row: int  # index into the checked set
    other: int  # index of the earlier row (within) or of the seed (against seeds)
    similarity: float  # exact Jaccard of the shingle sets

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "other": self.other, "similarity": round(self.similarity, 4)}


def _rarest_first(texts: Iterable[str]) -> list[list[int]]:
    """Each text's shingles as ids sorted rarest first: an id packs (sets containing the shingle,
    first appearance) into one int, so sorting ids sorts by that order and ids compare cheaply."""
    listed = [_ordered_shingles(t) for t in texts]
    counts = Counter(chain.from_iterable(listed))
    width = len(counts)
    ids = {s: count * width + first for first, (s, count) in enumerate(counts.items())}
    return [sorted(map(ids.__getitem__, items)) for items in listed]


class _Index:
    """Sets indexed under their prefix ids; `best` finds the most similar one at the threshold."""

    def __init__(self, threshold: float) -> None:
        if not 0.0 <= threshold <= 1.0:  # also refuses NaN, which no comparison would ever pass
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.threshold = threshold
        self.loose = threshold * (1.0 - _SLACK)
        self.postings: defaultdict[int, list[int]] = defaultdict(list)
        self.sets: dict[int, frozenset[int]] = {}

    def _prefix(self, ids: list[int]) -> list[int]:
        # At t = 0 no shared shingle is needed; `candidates` then looks at every set instead.
        return ids[: len(ids) - math.ceil(self.loose * len(ids)) + 1] if self.loose else ids

    def add(self, key: int, ids: list[int], items: frozenset[int]) -> None:
        self.sets[key] = items
        for token in self._prefix(ids):
            self.postings[token].append(key)

    def candidates(self, ids: list[int]) -> Iterable[int]:
        if not self.loose:
            return self.sets
        found: set[int] = set()
        for token in self._prefix(ids):
            found.update(self.postings.get(token, ()))
        low, high = self.loose * len(ids), len(ids) / self.loose
        return [key for key in found if low <= len(self.sets[key]) <= high]

    def best(self, ids: list[int], items: frozenset[int]) -> tuple[int, float] | None:
        """The most similar indexed set at or above the threshold (lowest key on a tie)."""
        hit: tuple[int, float] | None = None
        for key in self.candidates(ids):
            other = self.sets[key]
            shared = len(items & other)
            sim = shared / (len(items) + len(other) - shared)  # == jaccard(): the same float division
            if sim >= self.threshold and (hit is None or (sim, -key) > (hit[1], -hit[0])):
                hit = key, sim
        return hit


def near_duplicates(texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> list[DuplicatePair]:
    """Rows that repeat an earlier row; `other` is the most similar kept row (the lowest on a tie)."""
    return _within(_rarest_first(texts), threshold)


def near_copies_of(texts: Sequence[str], seeds: Sequence[str],
                   threshold: float = DEFAULT_THRESHOLD) -> list[DuplicatePair]:
    """Rows of `texts` that are near-copies of some seed; `other` is the most similar seed's index."""
    ordered = _rarest_first(chain(seeds, texts))  # one order for both sides, or prefixes would not meet
    return _against(ordered[len(seeds) :], ordered[: len(seeds)], threshold)


def near_duplicates_and_copies(texts: Sequence[str], seeds: Sequence[str], threshold: float = DEFAULT_THRESHOLD
                               ) -> tuple[list[DuplicatePair], list[DuplicatePair]]:
    """`near_duplicates(texts)` and `near_copies_of(texts, seeds)` at once: the texts are shingled and
    ordered once, which is most of the work (any one order serves both searches, see above)."""
    ordered = _rarest_first(chain(seeds, texts))
    rows = ordered[len(seeds) :]
    return _within(rows, threshold), _against(rows, ordered[: len(seeds)], threshold)


def _within(rows: list[list[int]], threshold: float) -> list[DuplicatePair]:
    index = _Index(threshold)
    pairs: list[DuplicatePair] = []
    for i, ids in enumerate(rows):
        if not ids:
            continue
        items = frozenset(ids)
        hit = index.best(ids, items)
        if hit is None:
            index.add(i, ids, items)  # only kept rows are indexed: a chain keeps its first member
        else:
            pairs.append(DuplicatePair(i, *hit))
    return pairs


def _against(rows: list[list[int]], seeds: list[list[int]], threshold: float) -> list[DuplicatePair]:
    index = _Index(threshold)
    for j, ids in enumerate(seeds):
        if ids:
            index.add(j, ids, frozenset(ids))
    pairs: list[DuplicatePair] = []
    for i, ids in enumerate(rows):
        if ids:
            hit = index.best(ids, frozenset(ids))
            if hit is not None:
                pairs.append(DuplicatePair(i, *hit))
    return pairs
