"""InsTag-style complexity and diversity (the paper's Table 4 measure) through any chat model.

Each instruction is tagged by the tagger model with our own prompt (`prompts/tag.txt`); tags are
parsed from whatever the model returns and normalised, so "Multi-step reasoning." and
"multi_step_reasoning" count as one tag. Then, over a set of N tagged instructions:

    complexity = mean number of distinct tags per instruction
    diversity  = distinct tags over the whole set / N

Calls go through `LLM.chat`, i.e. through the response cache: re-running a report costs nothing.
The paper tags 100 instructions per set; `sample` picks that many, the same ones every time.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autoevol.errors import BackendError
from autoevol.llm.client import LLM
from autoevol.prompts import render
from autoevol.types import user

PHASE = "report.tag"
SAMPLE = 100
MAX_TAG_CHARS = 60  # longer "tags" are sentences the model wrote, not tags
_ARRAY_RE = re.compile(r"\[.*\]", re.DOTALL)
_BULLET_RE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.+)$")
_EDGE_RE = re.compile(r"^[\W_]+|[\W_]+$")
_SPACE_RE = re.compile(r"[\s_\-]+")


def normalise(tag: str) -> str:
    """Lowercase, `_`/`-`/whitespace runs to one space, punctuation trimmed at both ends."""
    text = _SPACE_RE.sub(" ", tag.strip().lower())
    return _EDGE_RE.sub("", text).strip()


def _from_json(reply: str) -> list[str] | None:
    match = _ARRAY_RE.search(reply)
    if match is None:
        return None
    try:
        items = json.loads(match.group(0))
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            value = item.get("tag", item.get("name"))
            if isinstance(value, str):
                out.append(value)
    return out


def _from_lines(reply: str) -> list[str]:
    bullets = [m.group(1) for line in reply.splitlines() if (m := _BULLET_RE.match(line))]
    if bullets:
        # "- arithmetic: adds numbers" -> the tag is the part before the explanation
        return [b.split(":", 1)[0] for b in bullets]
    lines = [line for line in reply.splitlines() if line.strip()]
    return lines[0].split(",") if len(lines) == 1 else []


def parse_tags(reply: str) -> list[str]:
    """Distinct normalised tags in reply order: a JSON list (of objects or strings) when there is
    one, else bullet lines, else one comma-separated line; anything unusable yields no tag."""
    raw = _from_json(reply)
    if raw is None:
        raw = _from_lines(reply)
    tags: list[str] = []
    for item in raw:
        tag = normalise(item)
        if tag and len(tag) <= MAX_TAG_CHARS and tag not in tags:
            tags.append(tag)
    return tags


@dataclass(frozen=True, slots=True)
class TagStats:
    n: int  # instructions tagged (failed calls are left out)
    complexity: float | None
    diversity: float | None
    distinct_tags: int
    top: tuple[tuple[str, int], ...]  # the most frequent tags with their counts
    failed_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "complexity": _round(self.complexity), "diversity": _round(self.diversity),
                "distinct_tags": self.distinct_tags, "top": [list(t) for t in self.top],
                "failed_calls": self.failed_calls}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def tag_stats(tagged: Sequence[Sequence[str]], failed_calls: int = 0, top: int = 10) -> TagStats:
    n = len(tagged)
    counts: dict[str, int] = {}
    for tags in tagged:
        for tag in set(tags):
            counts[tag] = counts.get(tag, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return TagStats(n, sum(len(set(t)) for t in tagged) / n if n else None,
                    len(counts) / n if n else None, len(counts), tuple(ranked), failed_calls)


def sample(texts: Sequence[str], size: int = SAMPLE, seed: int = 0) -> list[str]:
    """The same `size` texts every time (input order kept), or all of them when there are fewer."""
    if len(texts) <= size:
        return list(texts)
    keep = sorted(random.Random(seed).sample(range(len(texts)), size))
    return [texts[i] for i in keep]


async def tag_texts(llm: LLM, texts: Sequence[str], *, max_tokens: int = 400,
                    parallel: int = 16) -> tuple[list[list[str]], int]:
    """Tags of each text (a failed call is left out) and the number of failed calls."""
    gate = asyncio.Semaphore(parallel)

    async def one(text: str) -> list[str] | None:
        async with gate:
            try:
                reply = await llm.chat([user(render("tag", instruction=text))], phase=PHASE,
                                       temperature=0.0, max_tokens=max_tokens)
            except BackendError:
                return None
        return parse_tags(reply.text)

    results = await asyncio.gather(*(one(t) for t in texts))
    return [r for r in results if r is not None], sum(r is None for r in results)


async def measure(llm: LLM, texts: Sequence[str], size: int = SAMPLE) -> TagStats:
    tagged, failed = await tag_texts(llm, sample(texts, size))
    return tag_stats(tagged, failed)
