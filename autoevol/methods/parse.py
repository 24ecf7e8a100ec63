"""Parse the evolved instruction out of the evol LLM's reply (SPEC §1.4, §5.8).

Contract: `parse_evolved` never raises. It returns a `ParseResult` whose `failure` says why the
reply is unusable.

Where the instruction starts, in order of trust:
1. the last hashed final/output marker (`#Finally Rewritten Instruction#:`, `#Rewritten Prompt#:`);
2. else the last bare one at a line start (`Final Instruction:`, `### Finally Rewritten Instruction`);
3. else the method's own declared output marker (`#Output#:`);
4. else the whole reply, for methods where that is the design: Evol-Instruct templates that end
   with their output marker (the model continues after it), and methods with no reply-format block
   (the weak method asks for the instruction "alone") when the reply has no step or section markers.
Otherwise the reply is a failure ("no_marker"), not an instruction: taking a whole Step 1-4 reply
would feed the model's plan and commentary into the dataset.

A marker occurrence copied from the seed (the marker and the text after it appear verbatim in the
original instruction) is never a section start, so a seed carrying its own "#Finally Rewritten
Instruction#: ..." line cannot choose the answer when the model echoes it.

`instruction` holds the parsed text for "unchanged" and "leaked_marker" too (useful in logs), and
None for "no_marker" and "empty". `marker` is None when the whole reply was taken for a method
without a format block. Check `ok` before using `instruction`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from autoevol.methods.method import (
    EVOL_BARE_RE,
    EVOL_HASHED_RE,
    FINAL_BARE_RE,
    FINAL_HASHED_RE,
    MARKER_END,
    STEP_MARKER_RE,
    EvolvingMethod,
    same_text,
)

ParseFailure = Literal["no_marker", "empty", "unchanged", "leaked_marker"]

# Evol-Instruct's elimination rule bans these words from the evolved instruction (SPEC §3.5 item 4).
# Only the ones the method itself uses can leak from it: see `_leaks`.
LEAK_PHRASES: tuple[str, ...] = ("given prompt", "rewritten prompt", "created prompt")

# A trailing explanation counts as "clearly marked" only with one of these headings on its own line.
_EXPLANATION_RE = re.compile(
    r"\n[ \t]*+(?:\*\*|__|#)?[ \t]*+(?:explanation|rationale|justification)s?[ \t]*+(?:\*\*|__|#)?[ \t]*+:",
    re.IGNORECASE,
)
_QUOTES: tuple[tuple[str, str], ...] = (('"', '"'), ("'", "'"), ("“", "”"), ("`", "`"))


@dataclass(frozen=True, slots=True)
class ParseResult:
    ok: bool
    instruction: str | None
    failure: ParseFailure | None
    marker: str | None


# A reply written as steps or sections: "Step 2: ...", "#Plan#: ...". Such a reply is not the bare
# instruction even from a method that asked for the instruction alone.
_STEP_LINE_RE = re.compile(r"^[ \t]*+(?:\*\*|__|#+[ \t]*+)?step[ \t]*+\d+\b", re.IGNORECASE | re.MULTILINE)
# "Sure! Here is the more complex version:" before a bare instruction.
_PREAMBLE_RE = re.compile(
    r"\A[ \t]*(?:(?:sure|certainly|okay|ok|of course)\b[^\n]{0,20}?)?here(?:'s|\u2019s| is)\b[^\n]{0,100}:[ \t]*\n",
    re.IGNORECASE,
)
# How much text after a marker must match the seed for the occurrence to count as an echo of it.
_ECHO_WINDOW = 40


def _squash(text: str) -> str:
    return " ".join(text.split())


def _echoed(output: str, match: re.Match[str], original: str) -> bool:
    """True when this marker and the text after it were copied from the seed instruction."""
    return _squash(output[match.start() : match.end() + _ECHO_WINDOW]) in original


def _last(pattern: re.Pattern[str], output: str, original: str) -> re.Match[str] | None:
    """The last match that is not an echo of the seed."""
    hits = [m for m in pattern.finditer(output) if not _echoed(output, m, original)]
    return hits[-1] if hits else None


def _bare_reply_allowed(output: str, method: EvolvingMethod | None) -> bool:
    """A method without a format block asked for the instruction alone; a reply with steps is not that."""
    if method is None or method.declares_format:
        return False
    return STEP_MARKER_RE.search(output) is None and _STEP_LINE_RE.search(output) is None


def _tiers(method: EvolvingMethod | None) -> tuple[re.Pattern[str], ...]:
    """Marker patterns from most to least trusted for this method's family.

    A hashed marker wins over a bare one, since bare words also occur inside instructions. The
    method's own family comes first: an e₀-style method may name a draft step "#Rewritten Prompt#",
    and an Evol-Instruct rewrite may contain a line that starts "Final prompt:".
    """
    finals, evols = (FINAL_HASHED_RE, FINAL_BARE_RE), (EVOL_HASHED_RE, EVOL_BARE_RE)
    marker = method.final_marker if method is not None else None
    evol_family = marker is not None and EVOL_HASHED_RE.fullmatch(marker) is not None
    return evols + finals if evol_family else finals + evols


def _locate(output: str, method: EvolvingMethod | None, original: str) -> tuple[str | None, str] | None:
    """(marker, text after it) for the most trusted marker (see the module docstring), or None."""
    seed = _squash(original)
    for pattern in _tiers(method):
        best = _last(pattern, output, seed)
        if best is not None:
            return best.group(0).strip(), output[best.end() :]
    marker = method.final_marker if method is not None else None
    if marker is not None:
        own = _last(re.compile(re.escape(marker) + MARKER_END), output, seed)
        if own is not None:
            return own.group(0).strip(), output[own.end() :]
        if method is not None and method.answer_follows_template:
            return marker, output
    if _bare_reply_allowed(output, method):
        preamble = _PREAMBLE_RE.match(output)
        return None, output[preamble.end() :] if preamble else output
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


def _leaks(text: str, original: str, method: EvolvingMethod | None) -> bool:
    """A step marker or banned phrase that came from the method, not from the original instruction.

    A banned phrase counts only if the method's template uses it ("Revise the given prompt" is a
    fine rewrite under e₀, which never says "given prompt"). Without a method, all of them count.
    """
    low_text, low_orig = text.lower(), original.lower()
    phrases = LEAK_PHRASES if method is None else tuple(p for p in LEAK_PHRASES if p in method.template.lower())
    if any(p in low_text and p not in low_orig for p in phrases):
        return True
    return any(m.group(0).lower() not in low_orig for m in STEP_MARKER_RE.finditer(text))


def parse_evolved(output: str, *, original: str, method: EvolvingMethod | None = None) -> ParseResult:
    """The evolved instruction in `output`, or a ParseResult saying why there is none."""
    located = _locate(output, method, original)
    if located is None:
        return ParseResult(False, None, "no_marker", None)
    marker, rest = located
    text = _clean(rest)
    if not text:
        return ParseResult(False, None, "empty", marker)
    if same_text(text, original):
        return ParseResult(False, text, "unchanged", marker)
    if _leaks(text, original, method):
        return ParseResult(False, text, "leaked_marker", marker)
    return ParseResult(True, text, None, marker)
