"""Verdicts in plain words, for the optimizer: what λ counted and where, next to the text it judged.

A reflective optimizer can only fix what it is told. "truncated/repetition_loop" means nothing to
it; "stopped at the token cap while repeating item 11 of #Methods List#" names the fix ("list
fewer methods"). `in_plain_words(verdict, text)` is a pure function of the verdict and the text
the verdict is about (a rewrite's raw output, or the answer to an evolved instruction).
"""

from __future__ import annotations

import re

from autoevol.detect.rules import Verdict

_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_HEADING_RE = re.compile(r"^\s*(?:\*\*|#+\s*)?(#[^#\n]{1,60}#|step\s*\d+\b[^\n]{0,60})", re.IGNORECASE)
_ITEM_RE = re.compile(r"^\s*(?:[-*]\s*)?(\d+)[.)]")
_MIN_REPEATS = 3
_MAX_PERIOD = 12
_QUOTE_CHARS = 60


def _shape(line: str) -> str:
    return _NUMBER_RE.sub("0", " ".join(line.split()))


def loop_start(lines: list[str]) -> int | None:
    """Index of the first line of a run, at the end of `lines`, that repeats one block of lines (numbers
    aside) at least three times; None when the text does not end that way."""
    shapes = [_shape(line) for line in lines if line.strip()]
    index = [i for i, line in enumerate(lines) if line.strip()]
    # The last line is usually cut mid-way by the cap: judge the loop on the complete lines before it.
    whole = shapes[:-1]
    for period in range(1, _MAX_PERIOD + 1):
        start = len(whole) - period
        while start - period >= 0 and whole[start - period : start] == whole[start : start + period]:
            start -= period
        while start > 0 and whole[start - 1] == whole[start - 1 + period]:
            start -= 1  # the loop may begin part-way into a block
        if (len(whole) - start) // period >= _MIN_REPEATS:
            return index[start]
    return None


def _heading(line: str) -> str | None:
    match = _HEADING_RE.match(line)
    if match is None:
        return None
    marker = re.search(r"#[^#\n]{1,60}#", match.group(1))  # "Step 2: #Plan#" is best named "#Plan#"
    return (marker.group(0) if marker else match.group(1)).strip()


def _where(lines: list[str], start: int) -> str:
    """" from item 3 of #Methods List#", " in #Plan#", or "" when nothing names the place."""
    item = _ITEM_RE.match(lines[start])
    heading = next((h for line in reversed(lines[:start]) if (h := _heading(line))), None)
    if item and heading:
        return f" from item {item.group(1)} of {heading}"
    if item:
        return f" from item {item.group(1)}"
    return f" in {heading}" if heading else ""


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= _QUOTE_CHARS else flat[: _QUOTE_CHARS - 1] + "…")


def _loop_words(text: str) -> str:
    lines = text.splitlines()
    start = loop_start(lines)
    if start is None:
        return "stopped at the token cap while repeating itself"
    return f"stopped at the token cap while repeating {_quote(lines[start])}{_where(lines, start)}"


_ANSWER_SHAPES = {
    "bare_result": "the final instruction is a bare result, not an instruction",
    "answer_statement": "the final instruction states the answer instead of asking a harder question",
    "result_of_question": "the final instruction states the result of the original question instead of asking one",
}
_CATEGORY_WORDS = {
    "parse_failure": "no final instruction: the reply has no final-instruction marker, or nothing after it",
    "unchanged_instruction": "the final instruction is the original, unchanged",
    "prompt_leakage": "the method's own words (its section markers) leaked into the final instruction",
    "stagnant_complexity": "the answer asked back instead of answering (it opens like a reply and ends with '?')",
    "insufficient_qualification": "the answer said 'Sure' and asked back instead of answering",
    "loss_of_key_information": "the answer says information is missing or the task is not possible",
    "hard_to_answer": "the answer apologised instead of answering ('sorry' in a short reply)",
    "empty_answer": "the answer was empty",
    "no_information_gain": "a judge found the evolved instruction equal to the original",
    "filtered": "the model's provider filtered or refused the reply (its finish reason was not a normal stop)",
}


def in_plain_words(verdict: Verdict, text: str = "", *, of: str = "rewrite") -> str:
    """One sentence saying why `verdict` failed; `of` is what `text` is ("rewrite" or "answer")."""
    if not verdict.failed:
        return "usable"
    if verdict.category == "truncated":
        if verdict.rule and verdict.rule.endswith("repetition_loop"):
            return f"the {of} " + _loop_words(text)
        return f"the {of} stopped at the token cap before it finished"
    if verdict.category == "answered_instead":
        fallback = "the final instruction answers the original instead of evolving it"
        return _ANSWER_SHAPES.get(verdict.rule or "", fallback)
    words = _CATEGORY_WORDS.get(verdict.category or "")
    if words is None:
        return f"failed ({verdict.category}, rule {verdict.rule})"
    return words + (f" (rule {verdict.rule})" if verdict.rule and verdict.rule != verdict.category else "")
