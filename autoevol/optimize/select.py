"""Choosing the next method from scored candidates (SPEC §5.3-5.4).

Order: lower λ, then (with `length_ratio`) the higher C-style complexity proxy, then the lower
candidate index; the incumbent is index -1, so on a full tie it stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoevol.optimize.score import Score


@dataclass(frozen=True, slots=True)
class Entry:
    index: int  # -1 is the incumbent
    score: Score


def sort_key(entry: Entry, tie_break: str) -> tuple[float, float, int]:
    proxy = -entry.score.length_ratio if tie_break == "length_ratio" else 0.0
    return (entry.score.rate, proxy, entry.index)


def select(entries: list[Entry], tie_break: str) -> Entry | None:
    return min(entries, key=lambda e: sort_key(e, tie_break)) if entries else None


def better(a: Score, b: Score, tie_break: str) -> bool:
    """Is `a` strictly preferable to `b` (used for best-so-far)?"""
    return sort_key(Entry(0, a), tie_break)[:2] < sort_key(Entry(0, b), tie_break)[:2]
