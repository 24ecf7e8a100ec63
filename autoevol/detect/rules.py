"""Failure detection F(r): did an evolution fail? (SPEC §1.7, §2.5, §3.5, §4, §5.6, §5.8)

Each rule is a pure callable `(response, **context) -> Verdict | None`: a failing Verdict when it
fires, None when it has nothing to say. `response` is the answerer's reply to the evolved
instruction; context may carry `parsed` (the ParseResult of the evolution). Rule sets are chosen
by name; `detect` runs the instruction-level checks first and then the answer rules, and reports
the first rule that fires, so a verdict is deterministic for a given rule set.

Categories and their SPEC §4 / §3.5 ids:
  stagnant_complexity        F1  answer opens like a reply to a statement and ends with "?"
  insufficient_qualification F2  answer opens with "Sure" and asks back
  loss_of_key_information    F3  answer asks for the missing input ("please provide", "not possible")
  no_information_gain        W1  an LLM judge says the evolved and original instruction are equal
                                 (judged by the caller: `parse_equal_judgement`, not a rule of `detect`)
  hard_to_answer             W2  "sorry" in an answer of fewer than 80 words
  empty_answer               W3  empty answer, or only punctuation and stop words (also SPEC §5.6)
  prompt_leakage             W4  method words ("#Plan#", "given prompt") leaked into the instruction
  parse_failure              §5.8  no marker found or nothing after it
  unchanged_instruction      §5.8  evolved text equals the original
  truncated                  B9  the completion stopped at max_tokens (see `truncation`)
  answered_instead        Fig.1  the "evolved instruction" answers its parent (see `answering`)

What each rule set checks, and what it cannot see in non-English text: docs/failure-rules.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from autoevol.detect.text import fold_apostrophes, prose, visible, word_count, words
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
    "truncated",
    "answered_instead",
    "filtered",
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
    "truncated": "B9",
    "answered_instead": "Fig.1",
    "filtered": "B5",
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
        text = fold_apostrophes(response.strip())
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
    return Verdict(True, "empty_answer", "empty_answer") if not visible(response) else None


@dataclass(frozen=True, slots=True)
class ContainsInProse:
    """Like `Contains`, but blind to fenced code, inline code and quoted string literals.

    The extended set filters final data, where a code answer with `input("Please provide ...")`
    is a good answer, not a request for missing input.
    """

    phrase: str
    category: Category
    name: str

    def __call__(self, response: str, /, **context: Any) -> Verdict | None:
        return Verdict(True, self.category, self.name) if self.phrase in prose(response).lower() else None


_SENTENCE_END_RE = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+|\n+")
# In the same sentence as "not possible", one of these makes it a refusal or a request for the missing
# input (F3) rather than a statement that something is impossible ("it is not possible to divide by 0").
_REFUSAL_CUE_RE = re.compile(
    r"\bfor me\b|\bsorry\b|\bunfortunately\b|\bas an ai\b|\bunless\b|\bprovid(?:e|ed|ing)\b"
    r"|\bwithout (?:(?:any|more|additional|further|enough|specific|the|your|a|an|access|knowing|seeing)\b)"
    r"|\b(?:more|enough|sufficient|insufficient|missing|additional) (?:information|context|details|data)\b"
    r"|\bnot (?:given|specified|included|mentioned|shared|attached)\b",
    re.IGNORECASE,
)


def not_possible_refusal(response: str, /, **context: Any) -> Verdict | None:
    """"not possible" in a sentence (outside code) that refuses or asks for missing input."""
    for sentence in _SENTENCE_END_RE.split(prose(fold_apostrophes(response))):
        if "not possible" in sentence.lower() and _REFUSAL_CUE_RE.search(sentence):
            return Verdict(True, "loss_of_key_information", "not_possible_refusal")
    return None


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


def stopwords_only_answer(response: str, /, **context: Any) -> Verdict | None:
    # Tokens in any script: a Korean or Russian answer is content even though no English word is in it.
    found = set(words(response))
    return Verdict(True, "empty_answer", "stopwords_only_answer") if found <= STOP_WORDS else None


def sorry_short_answer(response: str, /, **context: Any) -> Verdict | None:
    # Words are counted per CJK character, since Chinese and Japanese put no spaces between words.
    if "sorry" in response.lower() and word_count(response) < 80:
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


# A negation may be softened ("not exactly equal", "not quite equal") or hyphenated ("non-equal"):
# all of them say the instructions differ, so they read as Not Equal.
_JUDGEMENT_RE = re.compile(
    r"\b(not\s+(?:(?:exactly|quite|entirely|completely|fully|really|strictly)\s+)?equal|non-?\s?equal|unequal|equal)\b",
    re.IGNORECASE,
)
#: The note on a passing judge verdict that says neither (or both), or was cut off before it said one.
JUDGE_UNPARSABLE = "judge_unparsable"
# A verdict "stands alone" on its line when only markup surrounds it, or when a label ending in ":"
# precedes it: "Equal", "**Not Equal**", "Therefore: Not Equal". In running prose ("they cannot be
# equal") the word is reasoning, not the answer.
_MARKUP_BEFORE = " \t*_`\"'>#-"
_ALONE_AFTER_RE = re.compile(r"[ \t*_`\"'.!)\]]*")
# In prose, a mention inside a question or a "whether/if" clause is the judge thinking aloud.
_HEDGE_RE = re.compile(r"\b(?:whether|if)\b|\?")
_CLAUSE_RE = re.compile(r"[^.!?\n]*[.!?]*")


def _judgement_kind(match: re.Match[str]) -> str:
    return "equal" if match.group(1).lower() == "equal" else "not_equal"


def _standalone(line: str, match: re.Match[str]) -> bool:
    i = match.start()
    while i > 0 and line[i - 1] in _MARKUP_BEFORE:
        i -= 1
    return (i == 0 or line[i - 1] == ":") and _ALONE_AFTER_RE.fullmatch(line, match.end()) is not None


def _mentions(reply: str) -> tuple[list[str], list[str]]:
    """(kinds of the standalone verdicts, kinds of the unhedged prose mentions), in reply order."""
    alone: list[str] = []
    prose: list[str] = []
    for line in reply.split("\n"):
        for clause in _CLAUSE_RE.finditer(line):
            hedged = _HEDGE_RE.search(clause.group(0)) is not None
            for match in _JUDGEMENT_RE.finditer(line, clause.start(), clause.end()):
                if _standalone(line, match):
                    alone.append(_judgement_kind(match))
                elif not hedged:
                    prose.append(_judgement_kind(match))
    return alone, prose


def parse_equal_judgement(reply: str, *, complete: bool = True) -> Verdict:
    """An "Equal" reply fails the evolution (no information gain); "Not Equal" passes it.

    A judge that reasons first ("Let me compare ... Therefore: Not Equal") is judged by its last
    standalone verdict. Without a standalone verdict, every mention outside a question or a
    "whether/if" clause must agree ("They are unequal.").
    A reply that says neither, or both in prose, passes with rule="judge_unparsable" as a note: a
    confused or cut-off judge must not throw away an evolution that the other rules accepted. So an
    unparsable reply counts as a pass; callers that want otherwise can test `rule`.
    A reply cut at its token cap (`complete=False`) counts only by a standalone verdict: its prose
    stopped mid-thought ("they are equal in length, but"), so a mention there is no verdict.
    """
    alone, prose = _mentions(reply)
    kinds = {alone[-1]} if alone else set(prose) if complete else set()
    if kinds == {"equal"}:
        return Verdict(True, "no_information_gain", "judge_equal")
    if kinds == {"not_equal"}:
        return OK
    return Verdict(False, None, JUDGE_UNPARSABLE)


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
    "please_provide_in_prose": ContainsInProse(
        "please provide", "loss_of_key_information", "please_provide_in_prose"
    ),
    "not_possible_refusal": not_possible_refusal,
    "empty_answer": empty_answer,
    "stopwords_only_answer": stopwords_only_answer,
    "sorry_short_answer": sorry_short_answer,
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
    #: Whether an evolved instruction that answers its parent (`answering.answered_instead`) fails:
    #: on in every set that filters at all.
    rejects_answers: bool = True

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
    # Narrower than the reference code's plain substrings, because here they also delete final rows.
    "please_provide_in_prose",
    "not_possible_refusal",
)
# The first author's list (`is_false_string`) as it decides λ there: plain substrings, plus an empty
# answer. Narrowing these would let "it is not possible to determine ..." (P's Fig. 1 unsolvable
# question) pass the score; the narrowed rules of `_EXTENDED_RULES` are for deleting final rows.
_REFERENCE_RULES = (
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
    # What `default` scores λ with (OptimizeSettings.rule_set): the reference code's substrings.
    "reference": RuleSet("reference", _REFERENCE_RULES, count_parse_failures=True),
    # WizardLM's elimination evolving (SPEC §3.5). Its W1 judge is a separate LLM call made by the
    # evolve step (`equal_judge_messages` + `parse_equal_judgement`), so it is not a rule here.
    "elimination": RuleSet("elimination", ("sorry_short_answer", "stopwords_only_answer"), count_parse_failures=True),
    # No answer rule: the paper's final pass keeps every row. Parse failures still count when a caller
    # asks for them (`count_parse_failures=True`), since an unparsable rewrite has no instruction.
    "none": RuleSet("none", (), count_parse_failures=False, rejects_answers=False),
}
# What config may name as a rule set; "default" is an alias of "extended".
RULE_SET_NAMES: tuple[str, ...] = tuple(RULE_SETS)


def detect(
    response: str,
    *,
    rule_set: str | RuleSet,
    parsed: ParseResult | None = None,
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
        verdict = RULES[name](response, parsed=parsed)
        if verdict is not None and verdict.failed:
            return verdict
    return OK
