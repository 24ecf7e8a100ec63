"""Truncated completions and repetition loops (B9): `truncation_verdict` and `is_looping`."""

import pytest

from autoevol.detect import OK, Verdict, is_looping, truncation_verdict

# What a small model does with max_tokens=1024 when it cannot stop: the same sentence again and again.
VERBATIM_LOOP = "Step 2 #Plan#: Add a constraint.\n" + "The answer must be given in meters. " * 60
# An enumeration that never ends: every number differs, so no verbatim unit repeats.
ENUMERATION_LOOP = "Add a constraint that m and n are divisible by " + ", ".join(str(k) for k in range(3, 400))
COUNTING_LOOP = "Let us count.\n" + "".join(f"Step {k}: add 1 to the total, giving {k + 1}.\n" for k in range(1, 80))
CUT_MID_UNIT = ("I will now repeat the instruction. " * 12)[:-9]

NUMBERED_LIST = "\n".join(
    f"{k}. {item}"
    for k, item in enumerate(
        ["Preheat the oven to 200 °C.", "Mix flour, sugar and eggs.", "Add 250 ml of milk slowly.",
         "Pour into a buttered tin.", "Bake for 35 minutes.", "Let it cool for 10 minutes.",
         "Dust with icing sugar.", "Serve with berries."], start=1)
)
CODE = '''def mean(values: list[float]) -> float:
    if not values:
        raise ValueError("no values")
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


print(mean([1.0, 2.0, 3.0]))
'''
MARKDOWN_TABLE = "| a | b | c | d |\n|---|---|---|---|\n| 1 | 2 | 3 | 4 |\n| 5 | 6 | 7 | 8 |"
SMALL_MATRIX = "zeros = [\n    [0, 0, 0],\n    [0, 0, 0],\n    [0, 0, 0],\n]"
SHORT_COUNT = "The first ten numbers are 1, 2, 3, 4, 5, 6, 7, 8, 9, 10."
PROSE = (
    "Large language models are trained on text. They learn to predict the next word. "
    "With enough data they answer questions, write code and translate between languages. "
    "Their answers can still be wrong, so important claims should be checked."
)


@pytest.mark.parametrize("text", [VERBATIM_LOOP, ENUMERATION_LOOP, COUNTING_LOOP, CUT_MID_UNIT, "ha " * 100])
def test_loops_are_detected(text: str) -> None:
    assert is_looping(text)


@pytest.mark.parametrize(
    "text", [NUMBERED_LIST, CODE, MARKDOWN_TABLE, SMALL_MATRIX, SHORT_COUNT, PROSE, "", "=" * 60, "Yes."]
)
def test_normal_lists_code_and_prose_are_not_loops(text: str) -> None:
    assert not is_looping(text)


def test_a_loop_earlier_in_the_text_does_not_count_if_the_text_moves_on() -> None:
    assert not is_looping("ok " * 100 + PROSE)


def test_truncation_verdict() -> None:
    assert truncation_verdict(PROSE, "stop") == OK
    assert truncation_verdict(VERBATIM_LOOP, "stop") == OK  # finished on its own: not our business here
    assert truncation_verdict(PROSE, "length") == Verdict(True, "truncated", "finish_reason_length")
    assert truncation_verdict(VERBATIM_LOOP, "length") == Verdict(True, "truncated", "repetition_loop")
    assert truncation_verdict(ENUMERATION_LOOP, "length") == Verdict(True, "truncated", "repetition_loop")
    assert truncation_verdict("", "unknown") == OK


def test_long_texts_stay_fast() -> None:
    import time

    start = time.perf_counter()
    for text in (PROSE * 200, "0, " * 5000, "abcdefgh" * 2000):
        is_looping(text)
    assert time.perf_counter() - start < 2.0
