"""Failure rules on answers that are not English, and the narrowed extended rules (B1, B14)."""

import pytest

from autoevol.detect import OK, RULE_SET_NAMES, RULE_SETS, Verdict, detect, word_count

KOREAN = "대규모 언어모델은 많은 데이터로 학습됩니다. 그래서 다양한 질문에 답할 수 있습니다."
CHINESE = "大型语言模型通过大量数据进行训练，因此可以回答各种问题。"
JAPANESE = "大規模言語モデルは大量のデータで学習されます。"
RUSSIAN = "Большие языковые модели обучаются на огромных объёмах текста."
GREEK = "Τα μεγάλα γλωσσικά μοντέλα εκπαιδεύονται σε πολλά δεδομένα."
ARABIC = "تتدرب النماذج اللغوية الكبيرة على كميات هائلة من البيانات."


@pytest.mark.parametrize("answer", [KOREAN, CHINESE, JAPANESE, RUSSIAN, GREEK, ARABIC])
def test_non_latin_answers_are_content_not_stop_words(answer: str) -> None:
    assert detect(answer, rule_set="elimination") == OK
    assert detect(answer, rule_set="extended") == OK
    assert detect(answer, rule_set="paper") == OK


@pytest.mark.parametrize("answer", ["", "…", "。！？", "¿¡...!?", "Yes, it is.", "It\u2019s so."])
def test_punctuation_only_in_any_script_is_still_empty(answer: str) -> None:
    assert detect(answer, rule_set="elimination").rule == "stopwords_only_answer"


def test_zero_width_only_answer_is_empty_in_extended() -> None:
    assert detect("\u200b\ufeff \u200b", rule_set="extended").rule == "empty_answer"


def test_word_count_counts_cjk_characters_and_spaced_words() -> None:
    assert word_count("one two  three") == 3
    assert word_count(KOREAN) == len(KOREAN.split())  # Hangul is written with spaces
    assert word_count("我很抱歉") == 4  # one per ideograph: no spaces to split on
    assert word_count("sorry 我很抱歉 ok") == 6


def test_sorry_in_a_long_chinese_answer_is_not_short() -> None:
    # 100 ideographs is well over 80 words' worth of content; split() would see one "word".
    answer = "Sorry! " + "这是一个很长的回答" * 12
    assert len(answer.split()) < 80
    assert detect(answer, rule_set="elimination") == OK
    assert detect("Sorry, 我不知道。", rule_set="elimination").rule == "sorry_short_answer"


# --- B14: the extended set narrows "please provide" and "not possible" -----------------------------------

CODE_ANSWER = (
    "Here is a program that greets the user:\n\n```python\nname = input(\"Please provide your name: \")\n"
    "print(f\"Hello, {name}!\")\n```\n\nRun it and type your name."
)


@pytest.mark.parametrize(
    "answer",
    [
        CODE_ANSWER,
        "Call `ask('please provide a file')` first, then parse the result.",
        'Use prompt = "Please provide the amount in EUR" and read the reply.',
        "It is not possible to divide by zero: the quotient would have no value.",
        "No. It is not possible for a triangle to have two right angles, since the angles sum to 180°.",
        "Squaring the circle with compass and straightedge is not possible, as Lindemann proved in 1882.",
    ],
)
def test_extended_keeps_code_and_impossibility_answers(answer: str) -> None:
    assert detect(answer, rule_set="extended") == OK
    assert detect(answer, rule_set="default") == OK


def test_paper_set_still_fires_on_code_with_please_provide() -> None:
    # Table 5 is kept exactly: it is what λ meant in the paper.
    assert detect(CODE_ANSWER, rule_set="paper").rule == "contains_please_provide"


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        ("Please provide the list of objects you want classified.", "please_provide_in_prose"),
        ("I can do that. Please provide the text.", "please_provide_in_prose"),
        ("I'm afraid it is not possible for me to answer without the table.", "not_possible_refusal"),
        ("Without the list of objects, it's not possible to classify them.", "not_possible_refusal"),
        ("It is not possible to determine the total without more information.", "not_possible_refusal"),
        ("Unfortunately, this is not possible as no text was provided.", "not_possible_refusal"),
        ("That is not possible without the table.", "not_possible_refusal"),
    ],
)
def test_extended_still_catches_requests_for_missing_input(answer: str, rule: str) -> None:
    verdict = detect(answer, rule_set="extended")
    assert verdict == Verdict(True, "loss_of_key_information", rule)


def test_not_possible_inside_code_is_ignored() -> None:
    answer = "```python\nraise ValueError('not possible for me without input')\n```"
    assert detect(answer, rule_set="extended") == OK


# --- rule set `none` ------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["", "Sure, which one?", "What would you like?", "Please provide it.", "..."])
def test_rule_set_none_never_fires_on_answers(answer: str) -> None:
    assert detect(answer, rule_set="none") == OK
    assert RULE_SETS["none"].rules == () and RULE_SETS["none"].count_parse_failures is False


def test_rule_set_names_are_exported_for_config_validation() -> None:
    assert RULE_SET_NAMES == tuple(RULE_SETS)
    assert {"paper", "extended", "default", "reference", "elimination", "none"} == set(RULE_SET_NAMES)
    assert RULE_SETS["default"].rules == RULE_SETS["extended"].rules
