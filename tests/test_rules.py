import pytest

from autoevol.detect import (
    CATEGORY_IDS,
    OK,
    RULE_SETS,
    RULES,
    STOP_WORDS,
    RuleSet,
    Verdict,
    detect,
    equal_judge_messages,
    parse_equal_judgement,
)
from autoevol.methods import ParseResult

GOOD = "Here is a detailed answer with steps and a final result of 42."
PARSED_OK = ParseResult(True, "Add 3, 4 and 5.", None, "#Finally Rewritten Instruction#:")


# --- P Table 5 rules, one by one -------------------------------------------------------------------

PAPER_CASES = [
    ("starts_understood_ends_q", "Understood. Would you like me to rearrange it?", "stagnant_complexity"),
    ("starts_what_ends_q", "What would you like me to do with this information?", "stagnant_complexity"),
    ("starts_that_is_correct_ends_q", "That is correct! Anything else you want to know?", "stagnant_complexity"),
    ("starts_thank_you_ends_q", "Thank you for the information. How can I help?", "stagnant_complexity"),
    ("starts_great_ends_q", "Great! Do you want me to explain the code?", "stagnant_complexity"),
    ("starts_sure_ends_q", "Sure, I can help. Which news API should I use?", "insufficient_qualification"),
    ("contains_please_provide", "To classify them, Please provide a list of objects.", "loss_of_key_information"),
]


@pytest.mark.parametrize(("rule", "response", "category"), PAPER_CASES)
def test_paper_rule_positive(rule: str, response: str, category: str) -> None:
    assert RULES[rule](response) == Verdict(True, category, rule)  # type: ignore[arg-type]
    assert detect(response, rule_set="paper") == Verdict(True, category, rule)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "response"),
    [
        ("starts_understood_ends_q", "Understood. Here is the rearranged sentence."),
        ("starts_what_ends_q", "What a great question, here is the answer."),
        ("starts_what_ends_q", "So what would you like?"),  # prefix must be at the start
        ("starts_that_is_correct_ends_q", "That is correct: water boils at 100 °C."),
        ("starts_thank_you_ends_q", "Thank you! The result is 12."),
        ("starts_great_ends_q", "Great Britain is an island."),
        ("starts_sure_ends_q", "Sure, here is the code."),
        ("contains_please_provide", "I provide the list below, please read it."),
    ],
)
def test_paper_rule_negative(rule: str, response: str) -> None:
    assert RULES[rule](response) is None
    assert detect(response, rule_set="paper") == OK


def test_whitespace_is_stripped_before_checks() -> None:
    assert detect("\n  Sure, which API?  \n", rule_set="paper").category == "insufficient_qualification"
    assert detect("  What would you like?\n", rule_set="default").rule == "starts_what_ends_q"


def test_prefix_checks_are_case_sensitive() -> None:
    assert detect("what would you like?", rule_set="extended") == OK
    assert detect("SURE, which one?", rule_set="extended") == OK


# --- the extended (default) list ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "rule", "category"),
    [
        ("I'm sorry, could you clarify what you mean?", "starts_im_sorry_ends_q", "stagnant_complexity"),
        ("I\u2019m sorry, could you clarify?", "starts_im_sorry_ends_q", "stagnant_complexity"),
        ("Is there anything else I can help with?", "starts_is_there_anything_else_ends_q", "stagnant_complexity"),
        ("As an AI assistant, what should I write?", "starts_as_an_ai_assistant_ends_q", "stagnant_complexity"),
        ("I understand. Shall I continue?", "starts_i_understand_ends_q", "stagnant_complexity"),
        ("PLEASE PROVIDE the data.", "please_provide_in_prose", "loss_of_key_information"),
        ("That is Not Possible without the table.", "not_possible_refusal", "loss_of_key_information"),
        ("", "empty_answer", "empty_answer"),
        ("   \n\t", "empty_answer", "empty_answer"),
    ],
)
def test_extended_rules(response: str, rule: str, category: str) -> None:
    assert detect(response, rule_set="extended") == Verdict(True, category, rule)  # type: ignore[arg-type]
    assert detect(response, rule_set="default") == Verdict(True, category, rule)  # type: ignore[arg-type]


def test_extended_only_rules_do_not_fire_in_paper_set() -> None:
    for response in ["I'm sorry, could you clarify?", "That is not possible.", ""]:
        assert detect(response, rule_set="paper") == OK


def test_extended_negatives() -> None:
    for response in [GOOD, "I'm sorry for the delay. The answer is 4.", "I understand the task. Result: 9."]:
        assert detect(response, rule_set="extended") == OK


# --- instruction-level checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "category"),
    [
        ("no_marker", "parse_failure"),
        ("empty", "parse_failure"),
        ("unchanged", "unchanged_instruction"),
        ("leaked_marker", "prompt_leakage"),
    ],
)
def test_instruction_level_checks(failure: str, category: str) -> None:
    parsed = ParseResult(False, None, failure, None)  # type: ignore[arg-type]
    for rule_set in ("extended", "default", "elimination"):
        assert detect(GOOD, rule_set=rule_set, parsed=parsed).category == category
    assert detect(GOOD, rule_set="paper", parsed=parsed) == OK
    assert detect(GOOD, rule_set="paper", parsed=parsed, count_parse_failures=True).category == category
    assert detect(GOOD, rule_set="extended", parsed=parsed, count_parse_failures=False) == OK


def test_instruction_checks_come_first() -> None:
    parsed = ParseResult(False, None, "no_marker", None)
    assert detect("Sure, which one?", rule_set="default", parsed=parsed).rule == "parse_failure"
    assert detect("Sure, which one?", rule_set="default", parsed=PARSED_OK).rule == "starts_sure_ends_q"
    assert detect(GOOD, rule_set="default", parsed=PARSED_OK) == OK


# --- Evol-Instruct elimination -------------------------------------------------------------------------


def test_sorry_in_short_answer_is_hard_to_answer() -> None:
    short = "Sorry, I cannot solve this problem."
    assert detect(short, rule_set="elimination") == Verdict(True, "hard_to_answer", "sorry_short_answer")
    long = "Sorry for the long answer. " + "word " * 80
    assert detect(long, rule_set="elimination") == OK


@pytest.mark.parametrize("response", ["", "...", "It is, so.", "Yes! Well, it is what it is."])
def test_stopwords_only_answer_is_empty(response: str) -> None:
    assert detect(response, rule_set="elimination") == Verdict(True, "empty_answer", "stopwords_only_answer")


@pytest.mark.parametrize("response", ["42", "It is blue.", GOOD])
def test_content_words_are_not_empty(response: str) -> None:
    assert detect(response, rule_set="elimination") == OK


def test_stop_word_list_is_small_and_lowercase() -> None:
    assert "the" in STOP_WORDS and "python" not in STOP_WORDS
    assert all(w == w.lower() for w in STOP_WORDS) and len(STOP_WORDS) < 300


def test_elimination_prompt_leakage() -> None:
    leaked = ParseResult(False, "Rewrite the given prompt", "leaked_marker", "#Rewritten Prompt#:")
    assert detect(GOOD, rule_set="elimination", parsed=leaked).category == "prompt_leakage"


def test_the_judge_is_not_a_rule_of_detect() -> None:
    # W1 is a separate LLM call judged by parse_equal_judgement, never a keyword of detect.
    assert "no_information_gain" not in RULES
    assert all("no_information_gain" not in rs.rules for rs in RULE_SETS.values())
    with pytest.raises(TypeError):
        detect(GOOD, rule_set="elimination", parsed=PARSED_OK, judge_reply="Equal")  # type: ignore[call-arg]


EQUAL = Verdict(True, "no_information_gain", "judge_equal")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Equal", Verdict(True, "no_information_gain", "judge_equal")),
        ("  equal.", Verdict(True, "no_information_gain", "judge_equal")),
        ("Your Judgement: Equal", Verdict(True, "no_information_gain", "judge_equal")),
        ("Not Equal", OK),
        ("not  equal.", OK),
        ("They are unequal.", OK),
        ("", Verdict(False, None, "judge_unparsable")),
        ("Equally hard to say; inequality aside, maybe.", Verdict(False, None, "judge_unparsable")),
        ("Equal in topic but Not Equal in constraints", Verdict(False, None, "judge_unparsable")),
        # A preamble or reasoning first: the last standalone verdict decides.
        ("Let me compare the two prompts. The second adds a constraint.\nTherefore: Not Equal", OK),
        ("The first asks for a sum. Are they equal? Both ask the same.\n\n**Equal**", EQUAL),
        ("Not Equal\n\nReason: the second one cannot be equal, it adds a limit.", OK),
        ("Judgement: Equal\nOn reflection, the second adds a unit.\nFinal answer: Not Equal.", OK),
        # Cut off by a small max_tokens while thinking aloud: neither verdict was given.
        ("Let me think about whether they are equal", Verdict(False, None, "judge_unparsable")),
        ("Are they equal? They are not equal.", OK),
        ("Let me compare: the first is about sums, the", Verdict(False, None, "judge_unparsable")),
    ],
)
def test_parse_equal_judgement(reply: str, expected: Verdict) -> None:
    assert parse_equal_judgement(reply) == expected


def test_equal_judge_messages() -> None:
    messages = equal_judge_messages('Parse {"a": 1}', "Parse {{b}} quickly")
    assert [m.role for m in messages] == ["user"]
    text = messages[0].content
    assert 'Parse {"a": 1}' in text and "Parse {{b}} quickly" in text
    assert text.index('Parse {"a": 1}') < text.index("Parse {{b}} quickly")
    assert "Equal or Not Equal" in text


# --- rule sets -------------------------------------------------------------------------------------------


def test_rule_sets_and_categories() -> None:
    assert set(RULE_SETS) == {"paper", "extended", "default", "reference", "elimination", "none"}
    assert RULE_SETS["paper"].count_parse_failures is False
    assert RULE_SETS["default"].rules == RULE_SETS["extended"].rules
    assert len(RULE_SETS["paper"].rules) == 7
    fired = {v.category for v in (RULES[name]("", parsed=None) for name in RULES) if v}
    assert fired <= set(CATEGORY_IDS)
    assert CATEGORY_IDS["stagnant_complexity"] == "F1" and CATEGORY_IDS["loss_of_key_information"] == "F3"


def test_unknown_rule_set_or_rule() -> None:
    with pytest.raises(ValueError, match="paper"):
        detect(GOOD, rule_set="strict")
    with pytest.raises(ValueError, match="nope"):
        RuleSet("custom", ("nope",), count_parse_failures=False)
    custom = RuleSet("custom", ("contains_not_possible",), count_parse_failures=False)
    assert detect("not possible", rule_set=custom).rule == "contains_not_possible"
