"""Near-duplicate instructions, found with MinHash LSH (datasketch).

Texts are compared as sets of lowercased word 3-grams ("shingles"; a text shorter than three
words is its own single shingle). LSH proposes candidate pairs cheaply; each candidate is then
checked with the exact Jaccard similarity of the two shingle sets, so a reported pair really is
at least `threshold` similar (LSH can only miss a pair, never invent one).

Two questions are asked of an evolved set:

- within: which rows repeat an earlier row of the same set (the first occurrence is kept);
- against the seeds: which rows are barely changed copies of some seed (their own or another's).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datasketch import MinHash, MinHashLSH

from autoevol.report.metrics import ngrams, words

NUM_PERM = 128
SHINGLE = 3
DEFAULT_THRESHOLD = 0.8


def shingles(text: str, n: int = SHINGLE) -> set[str]:
    tokens = words(text)
    if len(tokens) < n:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(g) for g in ngrams(tokens, n)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@functools.cache
def _permutations() -> tuple[Any, str]:
    # What MinHash(num_perm, seed=1) draws on every construction (a seeded RNG): drawn once, the
    # sketches are identical and 1,500 rows no longer spend a second regenerating them.
    template = MinHash(num_perm=NUM_PERM, seed=1)
    return template.permutations, template.scheme


def _minhash(items: set[str]) -> MinHash:
    permutations, scheme = _permutations()
    m = MinHash(num_perm=NUM_PERM, seed=1, permutations=permutations, scheme=scheme)
    m.update_batch([s.encode("utf-8") for s in items])
    return m


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    row: int  # index into the checked set
    other: int  # index of the earlier row (within) or of the seed (against seeds)
    similarity: float  # exact Jaccard of the shingle sets

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "other": self.other, "similarity": round(self.similarity, 4)}


class _Index:
    def __init__(self, threshold: float) -> None:
        self.lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self.sets: dict[int, set[str]] = {}

    def add(self, index: int, items: set[str], sketch: MinHash) -> None:
        self.lsh.insert(str(index), sketch)
        self.sets[index] = items

    def best(self, items: set[str], sketch: MinHash, threshold: float) -> tuple[int, float] | None:
        """The most similar indexed text at or above `threshold` (lowest index on a tie)."""
        found = [(jaccard(items, self.sets[int(key)]), -int(key)) for key in self.lsh.query(sketch)]
        found = [f for f in found if f[0] >= threshold]
        if not found:
            return None
        sim, neg = max(found)
        return -neg, sim


def near_duplicates(texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> list[DuplicatePair]:
    """Rows that repeat an earlier row; `other` is the earliest kept row they match."""
    index = _Index(threshold)
    pairs: list[DuplicatePair] = []
    for i, text in enumerate(texts):
        items = shingles(text)
        if not items:
            continue
        sketch = _minhash(items)
        hit = index.best(items, sketch, threshold)
        if hit is None:
            index.add(i, items, sketch)  # only kept rows are indexed: a chain keeps its first member
        else:
            pairs.append(DuplicatePair(i, hit[0], hit[1]))
    return pairs


def near_copies_of(texts: Sequence[str], seeds: Sequence[str],
                   threshold: float = DEFAULT_THRESHOLD) -> list[DuplicatePair]:
    """Rows of `texts` that are near-copies of some seed; `other` is the seed's index."""
    index = _Index(threshold)
    for j, seed in enumerate(seeds):
        items = shingles(seed)
        if items:
            index.add(j, items, _minhash(items))
    pairs: list[DuplicatePair] = []
    for i, text in enumerate(texts):
        items = shingles(text)
        if items:
            hit = index.best(items, _minhash(items), threshold)
            if hit is not None:
                pairs.append(DuplicatePair(i, hit[0], hit[1]))
    return pairs
