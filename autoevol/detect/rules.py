"""Failure detection F(r): did an evolution fail? (SPEC §1.7, §2.5, §3.5, §4, §5.6, §5.8)

Each rule is a pure callable `(response, **context) -> Verdict | None`: a failing Verdict when it
fires, None when it has nothing to say. `response` is the answerer's reply to the evolved
instruction; context may carry `parsed` (the ParseResult of the evolution) and `judge_reply` (an
Equal/Not Equal judgement). Rule sets are chosen by name; `detect` runs the instruction-level checks
first and then the answer rules, and reports the first rule that fires, so a verdict is
deterministic for a given rule set.

Categories and their SPEC §4 / §3.5 ids:
  stagnant_complexity        F1  answer opens like a reply to a statement and ends with "?"
  insufficient_qualification F2  answer opens with "Sure" and asks back
  loss_of_key_information    F3  answer asks for the missing input ("please provide", "not possible")
  no_information_gain        W1  an LLM judge says the evolved and original instruction are equal
  hard_to_answer             W2  "sorry" in an answer of fewer than 80 words
  empty_answer               W3  empty answer, or only punctuation and stop words (also SPEC §5.6)
  prompt_leakage             W4  method words ("#Plan#", "given prompt") leaked into the instruction
  parse_failure              §5.8  no marker found or nothing after it
  unchanged_instruction      §5.8  evolved text equals the original
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from autoevol.methods.parse import ParseResult
from autoevol.prompts import render
from autoevol.types import Message, user

Category = Literal[
    "stagnant_complexity",
    "insufficient_qualification",
    "loss_of_key_information",
    "no_information_gain",
    "hard_to_answer",
    "empty_answer",
    "prompt_leakage",
    "parse_failure",
    "unchanged_instruction",
]
CATEGORY_IDS: dict[str, str] = {
    "stagnant_complexity": "F1",
    "insufficient_qualification": "F2",
    "loss_of_key_information": "F3",
    "no_information_gain": "W1",
    "hard_to_answer": "W2",
    "empty_answer": "W3",
    "prompt_leakage": "W4",
    "parse_failure": "§5.8",
    "unchanged_instruction": "§5.8",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """`rule` names the rule that fired; on a passing verdict it may carry a note instead."""

    failed: bool
    category: Category | None = None
    rule: str | None = None


OK = Verdict(False)


class Rule(Protocol):
    def __call__(self, response: str, /, **context: Any) -> Verdict | None: ...


@dataclass(frozen=True, slots=True)
class StartsAndAsks:
    """Fires when the stripped answer starts with `prefix` (case-sensitive) and ends with "?"."""

    prefix: str
    category: Category
    name: str

    def __call__(self, response: str, /, **context: Any) -> Verdict | None:
        # Case-sensitive as in the reference code: lower-casing would make "what ...?" hit many
        # legitimate answers. Curly apostrophes are folded so "I’m sorry" matches "I'm sorry".
        text = response.strip().replace("\u2019", "'")
        if text.startswith(self.prefix) and text.endswith("?"):
            return Verdict(True, self.category, self.name)
        return None


@dataclass(frozen=True, slots=True)
class Contains:
    """Fires when the answer contains `phrase`, ignoring case.

    Case-insensitive even in the paper set: P's own Table 5 example reads "Please provide".
    """

    phrase: str
    category: Category
    name: str

    def __call__(self, response: str, /, **context: Any) -> Verdict | None:
        return Verdict(True, self.category, self.name) if self.phrase in response.lower() else None


def empty_answer(response: str, /, **context: Any) -> Verdict | None:
    return Verdict(True, "empty_answer", "empty_answer") if not response.strip() else None


# A small English stop-word list for Evol-Instruct's "only punctuation and stop words" rule.
STOP_WORDS: frozenset[str] = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves ok okay yes oh um uh well i'm it's
    don't can't won't isn't that's there's""".split()
)
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def stopwords_only_answer(response: str, /, **context: Any) -> Verdict | None:
    words = _WORD_RE.findall(response.lower().replace("\u2019", "'"))
    return Verdict(True, "empty_answer", "stopwords_only_answer") if set(words) <= STOP_WORDS else None


def sorry_short_answer(response: str, /, **context: Any) -> Verdict | None:
    if "sorry" in response.lower() and len(response.split()) < 80:
        return Verdict(True, "hard_to_answer", "sorry_short_answer")
    return None


def _parse_failure_is(kinds: tuple[str, ...], category: Category, name: str) -> Rule:
    def rule(response: str, /, **context: Any) -> Verdict | None:
        parsed: ParseResult | None = context.get("parsed")
        if parsed is not None and parsed.failure in kinds:
            return Verdict(True, category, name)
        return None

    return rule


parse_failure = _parse_failure_is(("no_marker", "empty"), "parse_failure", "parse_failure")
unchanged_instruction = _parse_failure_is(("unchanged",), "unchanged_instruction", "unchanged_instruction")
prompt_leakage = _parse_failure_is(("leaked_marker",), "prompt_leakage", "prompt_leakage")


def equal_judge_messages(first: str, second: str) -> list[Message]:
    """The Equal / Not Equal judge of Evol-Instruct's elimination step (SPEC §3.5 item 1)."""
    return [user(render("judge_equal", first=first, second=second))]


_JUDGEMENT_RE = re.compile(r"\b(not\s+equal|unequal|equal)\b", re.IGNORECASE)


def parse_equal_judgement(reply: str) -> Verdict:
    """An "Equal" reply fails the evolution (no information gain); "Not Equal" passes it.

    A reply that says neither, or both, passes with rule="judge_unparsable" as a note: a confused
    judge must not throw away an evolution that the other rules accepted.
    """
    kinds = {"equal" if m.group(1).lower() == "equal" else "not_equal" for m in _JUDGEMENT_RE.finditer(reply)}
    if kinds == {"equal"}:
        return Verdict(True, "no_information_gain", "judge_equal")
    if kinds == {"not_equal"}:
        return OK
    return Verdict(False, None, "judge_unparsable")


def no_information_gain(response: str, /, **context: Any) -> Verdict | None:
    reply: str | None = context.get("judge_reply")
    if reply is None:
        return None
    verdict = parse_equal_judgement(reply)
    return verdict if verdict.failed else None


_STAGNANT: Category = "stagnant_complexity"
_PAPER_PREFIXES = (
    ("Understood", "understood"),
    ("What", "what"),
    ("That is correct", "that_is_correct"),
    ("Thank you", "thank_you"),
    ("Great", "great"),
)
_EXTRA_PREFIXES = (
    ("I'm sorry", "im_sorry"),
    ("Is there anything else", "is_there_anything_else"),
    ("As an AI assistant", "as_an_ai_assistant"),
    ("I understand", "i_understand"),
)

RULES: dict[str, Rule] = {
    **{
        f"starts_{slug}_ends_q": StartsAndAsks(p, _STAGNANT, f"starts_{slug}_ends_q")
        for p, slug in _PAPER_PREFIXES + _EXTRA_PREFIXES
    },
    "starts_sure_ends_q": StartsAndAsks("Sure", "insufficient_qualification", "starts_sure_ends_q"),
    "contains_please_provide": Contains("please provide", "loss_of_key_information", "contains_please_provide"),
    "contains_not_possible": Contains("not possible", "loss_of_key_information", "contains_not_possible"),
    "empty_answer": empty_answer,
    "stopwords_only_answer": stopwords_only_answer,
    "sorry_short_answer": sorry_short_answer,
    "no_information_gain": no_information_gain,
    "parse_failure": parse_failure,
    "unchanged_instruction": unchanged_instruction,
    "prompt_leakage": prompt_leakage,
}
INSTRUCTION_RULES: tuple[str, ...] = ("parse_failure", "unchanged_instruction", "prompt_leakage")


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Answer rules in the order they are tried, plus whether instruction-level checks count."""

    name: str
    rules: tuple[str, ...]
    count_parse_failures: bool

    def __post_init__(self) -> None:
        unknown = [r for r in self.rules if r not in RULES]
        if unknown:
            raise ValueError(f"rule set {self.name!r} names unknown rules {unknown}")


_PAPER_RULES: tuple[str, ...] = (
    *(f"starts_{s}_ends_q" for _, s in _PAPER_PREFIXES),
    "starts_sure_ends_q",
    "contains_please_provide",
)
_EXTENDED_RULES = (
    "empty_answer",
    *_PAPER_RULES[:-1],
    *(f"starts_{s}_ends_q" for _, s in _EXTRA_PREFIXES),
    "contains_please_provide",
    "contains_not_possible",
)
RULE_SETS: dict[str, RuleSet] = {
    # P's Table 5 only. Parse failures are off: the paper counts only answer rules in λ.
    "paper": RuleSet("paper", _PAPER_RULES, count_parse_failures=False),
    # The reference code's wider list + empty answers + parse checks (SPEC §5.6, §5.8); "default" is an alias.
    "extended": RuleSet("extended", _EXTENDED_RULES, count_parse_failures=True),
    "default": RuleSet("default", _EXTENDED_RULES, count_parse_failures=True),
    # WizardLM's elimination evolving (SPEC §3.5); the judge rule only fires when a judge_reply is passed.
    "elimination": RuleSet(
        "elimination",
        ("no_information_gain", "sorry_short_answer", "stopwords_only_answer"),
        count_parse_failures=True,
    ),
}


def detect(
    response: str,
    *,
    rule_set: str | RuleSet,
    parsed: ParseResult | None = None,
    judge_reply: str | None = None,
    count_parse_failures: bool | None = None,
) -> Verdict:
    """The first failing rule's verdict, or OK. `count_parse_failures` overrides the set's default."""
    if isinstance(rule_set, str):
        if rule_set not in RULE_SETS:
            raise ValueError(f"unknown rule set {rule_set!r}; choose from {', '.join(RULE_SETS)}")
        rule_set = RULE_SETS[rule_set]
    count = rule_set.count_parse_failures if count_parse_failures is None else count_parse_failures
    names = (INSTRUCTION_RULES if count else ()) + rule_set.rules
    for name in names:
        verdict = RULES[name](response, parsed=parsed, judge_reply=judge_reply)
        if verdict is not None and verdict.failed:
            return verdict
    return OK
