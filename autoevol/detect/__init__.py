"""Failure detection: rule-based F(r) and Evol-Instruct's elimination checks (see `rules`)."""

from __future__ import annotations

from autoevol.detect.rules import (
    CATEGORY_IDS,
    INSTRUCTION_RULES,
    OK,
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
from autoevol.detect.truncation import truncation_verdict

__all__ = [
    "CATEGORY_IDS",
    "INSTRUCTION_RULES",
    "OK",
    "RULES",
    "RULE_SETS",
    "STOP_WORDS",
    "Category",
    "Rule",
    "RuleSet",
    "Verdict",
    "detect",
    "equal_judge_messages",
    "parse_equal_judgement",
    "truncation_verdict",
]
