import json

import pytest

from autoevol.methods import SLOT, load_method
from autoevol.prompts import (
    PROMPT_NAMES,
    analysis_messages,
    load_template,
    optimization_messages,
    parse_optimized_method,
    render,
    render_template,
    respond_messages,
    template_variables,
)
from autoevol.types import assistant, user

TRAJECTORY = [
    {"id": 0, "stage0": "Add 3 and 4.", "stage1": "Add 3, 4 and 5."},
    {"id": 1, "stage0": "Café prices {json}", "stage1": "Compare café prices."},
]


# --- strict rendering -------------------------------------------------------------------------------


def test_every_template_loads_with_the_expected_variables() -> None:
    expected = {
        "analyze": {"trajectory"},
        "optimize": {"method"},
        "analyze_feedback": {"trajectory", "dev_failures"},
        "optimize_feedback": {"method"},
        "judge_equal": {"first", "second"},
        "respond_system": set(),
        "respond_math_system": set(),
        "tag": {"instruction"},
    }
    assert set(PROMPT_NAMES) == set(expected)
    for name in PROMPT_NAMES:
        text = load_template(name)
        assert text and text == text.rstrip()
        assert template_variables(text) == expected[name], name


def test_render_is_strict() -> None:
    with pytest.raises(ValueError, match="missing \\['b'\\]"):
        render_template("{{a}} {{b}}", a="x")
    with pytest.raises(ValueError, match="unexpected \\['c'\\]"):
        render_template("{{a}}", a="x", c="y")
    with pytest.raises(ValueError, match="strings"):
        render_template("{{a}}", a=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown prompt"):
        load_template("nope")
    with pytest.raises(ValueError):
        render("judge_equal", first="a")


def test_values_with_braces_are_inserted_verbatim() -> None:
    out = render_template("A={{a}} B={{ b }}", a='{"k": {b}} {{b}}', b="{instruction}")
    assert out == 'A={"k": {b}} {{b}} B={instruction}'


# --- ETA / EMO -----------------------------------------------------------------------------------------


def test_analysis_messages() -> None:
    messages = analysis_messages(TRAJECTORY)
    assert len(messages) == 1 and messages[0].role == "user"
    text = messages[0].content
    payload = json.dumps(TRAJECTORY, ensure_ascii=False, indent=None)
    assert text.endswith(payload) and "Café" in text
    assert "stage 0" in text and "case ID" in text


@pytest.mark.parametrize("bad", [[], [{"id": 0, "stage0": "x"}], ["not a dict"]])
def test_analysis_messages_validates_the_trajectory(bad: list) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        analysis_messages(bad)


def test_optimization_messages_are_a_two_turn_chat() -> None:
    method = load_method("initial")
    messages = optimization_messages(TRAJECTORY, "Case 1 failed: it answered instead.", method)
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    assert messages[0] == analysis_messages(TRAJECTORY)[0]
    assert messages[1] == assistant("Case 1 failed: it answered instead.")
    emo = messages[2].content
    assert f"```Method\n{method.template}\n```" in emo
    assert "```Optimized Method\n" in emo
    # The added sentence (SPEC §5.8) asks to keep the slot and the final marker.
    assert SLOT in emo.split("```Method")[0] and "final rewritten instruction" in emo
    assert messages[2] == user(emo)


# --- parsing the optimizer's reply ---------------------------------------------------------------------


def test_parse_optimized_method() -> None:
    reply = "Thoughts...\n```Optimized Method\nStep 1 ...\n#Instruction#:\n{instruction}\n```\nDone."
    assert parse_optimized_method(reply) == "Step 1 ...\n#Instruction#:\n{instruction}"
    two = reply + "\n```Optimized Method\nSecond\n```"
    assert parse_optimized_method(two) == "Step 1 ...\n#Instruction#:\n{instruction}"


@pytest.mark.parametrize(
    "reply",
    [
        "no block at all",
        "```Method\nnot the optimized one\n```",
        "```Optimized Method\n   \n```",
        "```Optimized Method\nStep 1: list methods\nStep 2: make a pl",  # cut off by max_tokens
    ],
)
def test_parse_optimized_method_absent_empty_or_truncated(reply: str) -> None:
    assert parse_optimized_method(reply) is None


def test_missing_closing_fence_is_tolerated_when_the_method_looks_complete() -> None:
    assert parse_optimized_method("```Optimized Method\nRewrite.\n#Instruction#:\n{instruction}") == (
        "Rewrite.\n#Instruction#:\n{instruction}"
    )
    assert parse_optimized_method("```Optimized Method\nRewrite.\n#Instruction#:\n") == "Rewrite.\n#Instruction#:"


CODE_METHOD = (
    "Rewrite the coding task so it is harder.\nExample of the style:\n```python\nx = 1\n```\n"
    "Please reply in the following format:\n#Finally Rewritten Instruction#:\n\n#Instruction#:\n{instruction}"
)


def test_a_method_with_a_fenced_code_example_survives_whole() -> None:
    reply = f"Here is my rewrite.\n```Optimized Method\n{CODE_METHOD}\n```\nI added a code example."
    assert parse_optimized_method(reply) == CODE_METHOD
    # Two examples, one with a bare-fenced language tag spelled with a space.
    two = CODE_METHOD.replace("x = 1\n```\n", "x = 1\n```\n``` sql\nSELECT 1;\n```\n")
    assert parse_optimized_method(f"```Optimized Method\n{two}\n```") == two


def test_an_unterminated_block_with_a_closed_inner_fence_is_judged_by_its_end() -> None:
    assert parse_optimized_method(f"```Optimized Method\n{CODE_METHOD}") == CODE_METHOD
    assert parse_optimized_method("```Optimized Method\nExample:\n```python\nx = 1\n```\nmore") is None
    # Cut off inside the inner block: the outer block never closed, and it does not look complete.
    assert parse_optimized_method("```Optimized Method\nExample:\n```python\nx = 1\n") is None


def test_inner_language_fence_does_not_close_the_block() -> None:
    inline = "```Optimized Method\nRewrite.\n#Instruction#:\n{instruction}```"
    assert parse_optimized_method(inline) == "Rewrite.\n#Instruction#:\n{instruction}"


# --- the answerer ---------------------------------------------------------------------------------------


def test_respond_messages() -> None:
    plain = respond_messages("Add 3 and 4.")
    assert [m.role for m in plain] == ["system", "user"] and plain[1].content == "Add 3 and 4."
    assert "follow" in plain[0].content and "The answer is" not in plain[0].content
    math = respond_messages("Add 3 and 4.", math=True)
    assert "The answer is: <number>" in math[0].content
    history = [user("Hi"), assistant("Hello!")]
    chat = respond_messages("Now add 3 and 4.", history=history)
    assert [m.role for m in chat] == ["system", "user", "assistant", "user"]
    with pytest.raises(ValueError, match="system"):
        respond_messages("x", history=[chat[0]])
