"""Truncated, filtered and refused completions, and repetition loops (fidelity review B9,
reliability review B5).

A completion that stopped at max_tokens (`finish_reason == "length"`) is cut off: a rewrite may end
mid-sentence, an answer may lack its result. `truncation_verdict` turns that into a failing Verdict
of category "truncated". When the cut-off text ends in a repetition loop (the usual reason a small
model runs into the cap), the rule is "repetition_loop" instead of "finish_reason_length", so the
run log can tell a too-small cap from a degenerate model.

`is_looping` only looks at the text's form. It finds a tail that repeats one unit verbatim (after
collapsing whitespace), and, with a stricter bar, a tail that repeats once every number is
replaced by a placeholder ("Step 5: add 1. Step 6: add 1. ..."). An enumeration that never ends
("divisible by 3, 4, 5, 6, 7, ...") is caught by the second check, but only because it runs long:
a legitimately long list of numbers (all primes below 1000) has the same form and would be flagged
the same way. That is acceptable here because the check only names the rule of a completion that
was cut off anyway. Loops that paraphrase themselves are not caught.
"""

from __future__ import annotations

import re

from autoevol.detect.rules import OK, Verdict
from autoevol.llm.finish import USABLE, normalize_finish

_SPACE_RE = re.compile(r"\s+")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
# Only the tail matters, and scanning a long text for every period would be quadratic.
_TAIL_CHARS = 6000
_MAX_UNIT = 400


def _periodic_tail(text: str, unit: int) -> int:
    """Length of the longest suffix of `text` in which every character equals the one `unit` later.

    The suffix may end mid-unit, as a loop cut off by max_tokens does.
    """
    n = len(text)
    if unit * 2 > n:
        return 0
    start = n - unit  # text[start:] is one unit; grow it backwards while the previous unit matches
    while start - unit >= 0 and text[start - unit : start] == text[start : start + unit]:
        start -= unit
    # A partial unit at the front still belongs to the loop.
    while start > 0 and text[start - 1] == text[start - 1 + unit]:
        start -= 1
    return n - start


def _repeats(text: str, *, min_unit: int, min_reps: float, min_span: int) -> bool:
    for unit in range(1, min(_MAX_UNIT, len(text) // 2) + 1):
        span = _periodic_tail(text, unit)
        # Short units ("ha ", "0, ") need a long run before they mean anything: "|---|---|" or a
        # row of "=" signs is formatting, not a loop.
        needed = min_span if unit >= min_unit else max(min_span, 200)
        if span >= needed and span / unit >= min_reps:
            return True
    return False


def is_looping(text: str) -> bool:
    """True when the end of `text` repeats one unit over and over (see the module docstring)."""
    tail = _SPACE_RE.sub(" ", text[-_TAIL_CHARS:]).strip()
    # Verbatim: a unit of 8+ characters repeated at least 4 times, over at least 80 characters.
    if _repeats(tail, min_unit=8, min_reps=4, min_span=80):
        return True
    # Numbers aside: counting loops and endless enumerations. A much higher bar, because tables and
    # unrolled code ("a[0] = 0", "a[1] = 0", ...) repeat a shape legitimately for a while.
    shape = _NUMBER_RE.sub("0", tail)
    return _repeats(shape, min_unit=8, min_reps=12, min_span=300)


def truncation_verdict(text: str, finish_reason: str) -> Verdict:
    """A failing Verdict when the completion is no finished answer: "truncated" when it stopped at
    max_tokens, "filtered" when it stopped for any reason but its end (a content filter, a refusal,
    a tool call, an aborted request, a word no server we know uses), else OK.

    The reason is normalised again here, so completions cached before `llm.finish` existed
    ("unknown", "eos") are judged in the same vocabulary."""
    finish = normalize_finish(finish_reason)
    if finish not in USABLE:
        return Verdict(True, "filtered", f"finish_reason_{finish}")
    if finish != "length":
        return OK
    rule = "repetition_loop" if is_looping(text) else "finish_reason_length"
    return Verdict(True, "truncated", rule)
