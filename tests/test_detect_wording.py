"""Verdicts in plain words: a loop is named with the item and section it repeats from, each other
failure in a sentence the optimizer can act on; a text that ends without a loop is not called one."""

from __future__ import annotations

from autoevol.detect import Verdict
from autoevol.detect.wording import in_plain_words, loop_start

METHODS_LOOP = "\n".join(
    ["Step 1:", "#Methods List#", "1. Add a constraint", "2. Ask for reasoning"]
    + [f"{i}. Replace a verb with a synonym" for i in range(3, 40)] + ["40. Replace a verb with a syn"]
)
PLAN_LOOP = "Step 1: #Methods List#\n- add a constraint\nStep 2: #Plan#\n" + "Use method 1.\nThen check it.\n" * 8


def test_a_loop_in_the_methods_list_is_named_with_its_item_and_section() -> None:
    words = in_plain_words(Verdict(True, "truncated", "repetition_loop"), METHODS_LOOP)
    assert words == ("the rewrite stopped at the token cap while repeating '3. Replace a verb with a synonym' "
                     "from item 3 of #Methods List#")


def test_a_two_line_loop_names_its_section() -> None:
    words = in_plain_words(Verdict(True, "truncated", "repetition_loop"), PLAN_LOOP)
    assert words == "the rewrite stopped at the token cap while repeating 'Use method 1.' in #Plan#"


def test_a_long_list_that_does_not_repeat_is_not_a_loop() -> None:
    varied = "\n".join(f"{i}. {word} the sentence" for i, word in enumerate(
        ["Shorten", "Lengthen", "Reorder", "Negate", "Quote", "Split", "Merge", "Translate"], 1))
    assert loop_start(varied.splitlines()) is None
    assert loop_start(["a", "b", "b"]) is None  # two repeats are not a loop
    cut = in_plain_words(Verdict(True, "truncated", "finish_reason_length"), varied, of="answer")
    assert cut == "the answer stopped at the token cap before it finished"


def test_every_failure_reads_as_a_sentence_and_a_pass_as_usable() -> None:
    assert in_plain_words(Verdict(False)) == "usable"
    assert in_plain_words(Verdict(True, "answered_instead", "bare_result")) == (
        "the final instruction is a bare result, not an instruction")
    assert in_plain_words(Verdict(True, "unchanged_instruction", "unchanged_instruction")) == (
        "the final instruction is the original, unchanged")
    assert in_plain_words(Verdict(True, "loss_of_key_information", "contains_not_possible")).endswith(
        "(rule contains_not_possible)")
    assert in_plain_words(Verdict(True, "truncated", "judge_repetition_loop"), "x\n" * 10).startswith(
        "the rewrite stopped at the token cap while repeating 'x'")


def test_a_filtered_reply_reads_as_one() -> None:
    words = in_plain_words(Verdict(True, "filtered", "finish_reason_content_filter"), "partial", of="answer")
    assert words.startswith("the model's provider filtered or refused the reply")
