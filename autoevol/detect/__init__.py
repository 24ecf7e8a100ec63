"""Failure detection: rule-based F(r), Evol-Instruct's elimination checks (see `rules`), truncation."""

from __future__ import annotations

from autoevol.detect.rules import (
    CATEGORY_IDS,
    INSTRUCTION_RULES,
    JUDGE_UNPARSABLE,
    OK,
    RULE_SET_NAMES,
    RULE_SETS,
    RULES,
    STOP_WORDS,
    Category,
    Rule,
    RuleSet,
    Verdict,
    detect,
    equal_judge_messages,
    parse_equal_judgement,
)
from autoevol.detect.text import word_count
from autoevol.detect.truncation import is_looping, truncation_verdict

__all__ = [
    "CATEGORY_IDS",
    "INSTRUCTION_RULES",
    "JUDGE_UNPARSABLE",
    "OK",
    "RULES",
    "RULE_SETS",
    "RULE_SET_NAMES",
    "STOP_WORDS",
    "Category",
    "Rule",
    "RuleSet",
    "Verdict",
    "detect",
    "equal_judge_messages",
    "is_looping",
    "parse_equal_judgement",
    "truncation_verdict",
    "word_count",
]
