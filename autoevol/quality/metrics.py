"""LLM-free complexity and diversity measures of a set of instructions.

They cost nothing, so they are computed for every set the report shows: the seeds, each evolution
round, each candidate's dev evolutions. They are proxies, not the paper's measure (that is the
tag-based one in `tags.py`): longer is not necessarily harder, but a round that makes
instructions shorter, or a set whose distinct-2 collapses, is worth a look.

Definitions (one tokeniser for all of them, so the numbers are comparable across sets):

- words: whitespace-separated pieces of the text;
- tokens: runs of word characters and single punctuation marks (``"x+1=2?"`` is 6 tokens);
- distinct-n: distinct word n-grams / all word n-grams over the whole set (lowercased words);
- type-token ratio: per instruction, distinct lowercased words / words, averaged over the set
  (lexical variety inside an instruction; distinct-1 is the same ratio over the whole set);
- length ratio: per row, child words / parent words, averaged over rows that have a parent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_WORD_RE = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def words(text: str) -> list[str]:
    """Lowercased word-character runs: what distinct-n and the type-token ratio count."""
    return [w.lower() for w in _WORD_RE.findall(text)]


def ngrams(items: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    # zip over shifted slices builds the tuples in C: several times faster than slicing per gram.
    return zip(*(items[i:] for i in range(n)), strict=False)


def distinct_n(texts: Iterable[str], n: int) -> float | None:
    """Distinct n-grams / all n-grams over the set; None when the set has no n-gram at all."""
    return _distinct([words(t) for t in texts], n)


def _distinct(per_text: Iterable[Sequence[str]], n: int) -> float | None:
    seen: set[tuple[str, ...]] = set()
    total = 0
    for items in per_text:
        grams = list(ngrams(items, n))
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else None


@dataclass(frozen=True, slots=True)
class TextStats:
    n: int
    words_mean: float | None
    tokens_mean: float | None
    distinct_1: float | None
    distinct_2: float | None
    distinct_3: float | None
    type_token_ratio: float | None
    length_ratio: float | None  # mean child/parent words; None without parents

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def text_stats(texts: Sequence[str], parents: Sequence[str | None] | None = None) -> TextStats:
    """Statistics of `texts`; `parents[i]` is the text `texts[i]` was evolved from, if any."""
    if parents is not None and len(parents) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(parents)} parents")
    n = len(texts)
    word_counts = [len(t.split()) for t in texts]
    token_counts = [len(tokens(t)) for t in texts]
    per_text = [words(t) for t in texts]
    ttrs = [len(set(w)) / len(w) for w in per_text if w]
    ratios = []
    for text, parent in zip(texts, parents or [None] * n, strict=True):
        parent_words = len(parent.split()) if parent else 0
        if parent_words:
            ratios.append(len(text.split()) / parent_words)
    return TextStats(
        n=n,
        words_mean=sum(word_counts) / n if n else None,
        tokens_mean=sum(token_counts) / n if n else None,
        distinct_1=_distinct(per_text, 1),
        distinct_2=_distinct(per_text, 2),
        distinct_3=_distinct(per_text, 3),
        type_token_ratio=sum(ttrs) / len(ttrs) if ttrs else None,
        length_ratio=sum(ratios) / len(ratios) if ratios else None,
    )
