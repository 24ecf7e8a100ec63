"""Parse the evolved instruction out of the evol LLM's reply (SPEC §1.4, §5.8).

Contract: `parse_evolved` never raises. It returns a `ParseResult` whose `failure` says why the
reply is unusable. Unlike the reference code, a reply with no recognisable marker is a failure
("no_marker"), not an instruction: taking the whole reply would feed the model's plan and
commentary into the dataset. The one exception is a method whose template *ends* with its output
marker (Evol-Instruct's "#Rewritten Prompt#:"): there the model continues after the marker, so the
whole reply is the instruction by design.

`instruction` holds the parsed text for "unchanged" and "leaked_marker" too (useful in logs), and
None for "no_marker" and "empty". Check `ok` before using it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from autoevol.methods.method import (
    EVOL_OUTPUT_MARKER_RE,
    FINAL_MARKER_RE,
    STEP_MARKER_RE,
    EvolvingMethod,
    same_text,
)

ParseFailure = Literal["no_marker", "empty", "unchanged", "leaked_marker"]

# Evol-Instruct's elimination rule bans these words from the evolved instruction (SPEC §3.5 item 4).
LEAK_PHRASES: tuple[str, ...] = ("given prompt", "rewritten prompt", "created prompt")

# A trailing explanation counts as "clearly marked" only with one of these headings on its own line.
_EXPLANATION_RE = re.compile(
    r"\n[ \t]*(?:\*\*|__|#)?[ \t]*(?:explanation|rationale|justification)s?[ \t]*(?:\*\*|__|#)?[ \t]*:",
    re.IGNORECASE,
)
_QUOTES: tuple[tuple[str, str], ...] = (('"', '"'), ("'", "'"), ("“", "”"), ("`", "`"))


@dataclass(frozen=True, slots=True)
class ParseResult:
    ok: bool
    instruction: str | None
    failure: ParseFailure | None
    marker: str | None


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    matches = list(pattern.finditer(text))
    return matches[-1] if matches else None


def _locate(output: str, method: EvolvingMethod | None) -> tuple[str, str] | None:
    """(marker, text after it) for the last recognised marker, or None."""
    found = (_last_match(FINAL_MARKER_RE, output), _last_match(EVOL_OUTPUT_MARKER_RE, output))
    hits = [m for m in found if m is not None]
    if hits:
        best = max(hits, key=lambda m: m.start())
        return best.group(0).strip(), output[best.end() :]
    marker = method.final_marker if method is not None else None
    if marker is None:
        return None
    own = _last_match(re.compile(re.escape(marker) + r"[ \t]*:?"), output)
    if own is not None:
        return own.group(0).strip(), output[own.end() :]
    if method is not None and method.answer_follows_template:
        return marker, output
    return None


def _unwrap(text: str) -> str:
    """Remove one layer of wrapping fence or quotes around the whole text."""
    if len(text) > 6 and text.startswith("```") and text.endswith("```"):
        newline = text.find("\n")
        # The first line is the fence plus an optional language tag such as ```text.
        return (text[newline + 1 : -3] if newline != -1 else text[3:-3]).strip()
    for left, right in _QUOTES:
        if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
            inner = text[len(left) : -len(right)]
            # '"a" and "b"' is not wrapped: only unwrap when the quote does not recur inside.
            if left not in inner and right not in inner:
                return inner.strip()
    return text


def _clean(text: str) -> str:
    cut = _EXPLANATION_RE.search(text)
    if cut is not None:
        text = text[: cut.start()]
    return _unwrap(text.strip())


def _leaks(text: str, original: str) -> bool:
    """A step marker or banned phrase that came from the method, not from the original instruction."""
    low_text, low_orig = text.lower(), original.lower()
    if any(p in low_text and p not in low_orig for p in LEAK_PHRASES):
        return True
    return any(m.group(0).lower() not in low_orig for m in STEP_MARKER_RE.finditer(text))


def parse_evolved(output: str, *, original: str, method: EvolvingMethod | None = None) -> ParseResult:
    """The evolved instruction in `output`, or a ParseResult saying why there is none."""
    located = _locate(output, method)
    if located is None:
        return ParseResult(False, None, "no_marker", None)
    marker, rest = located
    text = _clean(rest)
    if not text:
        return ParseResult(False, None, "empty", marker)
    if same_text(text, original):
        return ParseResult(False, text, "unchanged", marker)
    if _leaks(text, original):
        return ParseResult(False, text, "leaked_marker", marker)
    return ParseResult(True, text, None, marker)
