"""Choosing the next method from scored candidates (SPEC §5.3-5.4), and screening them exactly.

Order: lower λ, then (with `length_ratio`) the higher C-style complexity proxy, then the lower
candidate index; the incumbent is index -1, so on a full tie it stays.

Screening (SPEC §7.3) full-scores as few candidates as it can without changing the winner. A dev
verdict is a deterministic function of (method, item), so a method's failures on the whole dev set
are at least its failures on any slice of it; and every full score has the same n (|dev|), so
comparing failure counts is comparing λ.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from autoevol.optimization.score import Score


@dataclass(frozen=True, slots=True)
class Entry:
    index: int  # -1 is the incumbent
    score: Score


@dataclass(frozen=True, slots=True)
class Screened:
    """A candidate dropped after the slice: it failed more slice items than `bound`, the lowest
    full-dev failure count among the methods already scored, so its λ is higher than theirs."""

    index: int
    slice_failures: int
    slice_size: int
    bound: int

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "slice_failures": self.slice_failures, "slice_size": self.slice_size,
                "bound": self.bound}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Screened:
        return cls(data["index"], data["slice_failures"], data["slice_size"], data["bound"])


def sort_key(entry: Entry, tie_break: str) -> tuple[float, float, int]:
    proxy = -entry.score.length_ratio if tie_break == "length_ratio" else 0.0
    return (entry.score.rate, proxy, entry.index)


def select(entries: Sequence[Entry], tie_break: str) -> Entry | None:
    return min(entries, key=lambda e: sort_key(e, tie_break)) if entries else None


def better(a: Score, b: Score, tie_break: str) -> bool:
    """Is `a` strictly preferable to `b` (used for best-so-far)?"""
    return sort_key(Entry(0, a), tie_break)[:2] < sort_key(Entry(0, b), tie_break)[:2]


async def screen(
    slices: Mapping[int, Score],
    full: Callable[[Sequence[int]], Awaitable[Sequence[Score]]],
    bound: int | None,
) -> tuple[list[Entry], list[Screened]]:
    """Branch and bound: full-score candidates in order of slice failures, lowering the bound.

    `slices` maps candidate index -> its slice score; `full(indexes)` full-scores those candidates;
    `bound` is the full failure count of a method already competing (the incumbent), or None.
    A candidate is dropped only when its slice failures are strictly above the bound: an equal count
    could still tie the best λ and win on the tie-break. Candidates with equal slice failures are
    scored together, since none of them can lower the bound below their own slice count.
    """
    entries: list[Entry] = []
    dropped: list[Screened] = []
    ranked = sorted(slices.items(), key=lambda kv: (kv[1].failures, kv[0]))
    for failures, group in groupby(ranked, key=lambda kv: kv[1].failures):
        indexes = [index for index, _ in group]
        if bound is not None and failures > bound:
            dropped += [Screened(i, failures, slices[i].n, bound) for i in indexes]
            continue
        scores = await full(indexes)
        entries += [Entry(i, sc) for i, sc in zip(indexes, scores, strict=True)]
        best = min(sc.failures for sc in scores)
        bound = best if bound is None else min(bound, best)
    return entries, dropped
