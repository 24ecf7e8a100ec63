"""Two rule lists, named: λ in `default` uses the reference code's plain substrings (`reference`),
the final filter uses the narrowed rules (`extended`), so an unsolvable evolved problem counts in λ
while a good answer that merely contains the phrase survives the final pass."""

from __future__ import annotations

import pytest

from autoevol.detect import RULE_SETS, detect

UNSOLVABLE = [
    "Based on the given information, it is not possible to determine how many apples John has.",
    "It is not possible to solve this problem because the conditions contradict each other.",
    "It is not possible to determine the answer with the given data.",
]
CODE_ANSWER = 'Here is the program:\n```python\nname = input("Please provide your name: ")\nprint(name)\n```'


@pytest.mark.parametrize("answer", UNSOLVABLE)
def test_an_unsolvable_evolution_fails_the_lambda_rules_and_passes_the_final_filter(answer: str) -> None:
    scored = detect(answer, rule_set="reference")
    assert (scored.failed, scored.category, scored.rule) == (True, "loss_of_key_information", "contains_not_possible")
    assert not detect(answer, rule_set="extended").failed


def test_the_reference_list_is_the_first_authors_substrings_and_openings() -> None:
    assert detect(CODE_ANSWER, rule_set="reference").rule == "contains_please_provide"
    assert not detect(CODE_ANSWER, rule_set="extended").failed
    assert detect("I'm sorry, could you say which city you mean?", rule_set="reference").failed
    assert detect("", rule_set="reference").rule == "empty_answer"
    assert not detect("Paris is the capital of France.", rule_set="reference").failed
    assert RULE_SETS["reference"].count_parse_failures


def test_every_set_that_filters_rejects_answers_in_place_of_instructions() -> None:
    assert {name for name, rules in RULE_SETS.items() if not rules.rejects_answers} == {"none"}
