"""Schemas: every row shape becomes the right Seed, and every bad row names path, line and field."""

from __future__ import annotations

from typing import Any

import pytest

from autoevol.data import Seed, Turn, detect_schema, resolve_schema
from autoevol.errors import DataError

GSM = {"question": "How many apples?", "answer": "3 apples.\n#### 3"}


def parse(schema: str, row: dict[str, Any], line: int = 7, **kw: Any) -> Seed:
    return resolve_schema(schema, row, path="data/set.jsonl", **kw)(row, line)


def error(schema: str, row: dict[str, Any], line: int = 7, **kw: Any) -> DataError:
    with pytest.raises(DataError) as info:
        parse(schema, row, line, **kw)
    return info.value


def test_instruction_schema_with_question_field_uses_answer_as_reference() -> None:
    seed = parse("instruction", GSM, field="question")
    assert seed.turns == (Turn("user", "How many apples?"), Turn("assistant", "3 apples.\n#### 3"))
    assert seed.instruction == "How many apples?"
    assert seed.reference == "3 apples.\n#### 3"
    assert seed.seed_id == "set:7"
    assert seed.source == "data/set.jsonl:7"


def test_instruction_schema_defaults_and_configurable_fields() -> None:
    assert parse("instruction", {"instruction": "Do it", "output": "Done"}).reference == "Done"
    assert parse("instruction", {"instruction": "Do it"}).reference is None
    row = {"q": "Why?", "a": "Because.", "uid": 42}
    seed = parse("instruction", row, field="q", response_field="a", id_field="uid")
    assert (seed.instruction, seed.reference, seed.seed_id) == ("Why?", "Because.", "42")
    # A prompt/response pair is recognised without configuration.
    assert parse("instruction", {"prompt": "P", "response": "R"}, field="prompt").reference == "R"


def test_row_id_is_used_by_default_and_blank_reference_is_dropped() -> None:
    seed = parse("instruction", {"id": "abc", "instruction": "Do it", "output": "  "})
    assert seed.seed_id == "abc"
    assert seed.turns == (Turn("user", "Do it"),)


def test_alpaca_input_travels_inside_the_user_turn() -> None:
    seed = parse("alpaca", {"instruction": "Translate.", "input": "Bonjour", "output": "Hello"})
    assert seed.turns == (Turn("user", "Translate.\n\nBonjour"), Turn("assistant", "Hello"))
    assert parse("alpaca", {"instruction": "Say hi.", "input": "", "output": "Hi"}).instruction == "Say hi."


def test_alpaca_reads_self_instruct_seed_tasks_from_first_instance() -> None:
    row = {
        "id": "seed_task_1",
        "instruction": "Relation?",
        "instances": [{"input": "A : B", "output": "Opposites"}],
    }
    seed = parse("auto", row)
    assert seed.seed_id == "seed_task_1"
    assert seed.turns == (Turn("user", "Relation?\n\nA : B"), Turn("assistant", "Opposites"))


def test_sharegpt_maps_roles() -> None:
    row = {
        "id": "c1",
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello"},
            {"from": "user", "value": "Again"},
            {"from": "chatgpt", "value": "Hello again"},
            {"from": "bard", "value": "..."},
        ],
    }
    seed = parse("sharegpt", row)
    assert [t.role for t in seed.turns] == ["system", "user", "assistant", "user", "assistant", "assistant"]
    assert (seed.seed_id, seed.instruction, seed.reference) == ("c1", "Hi", "Hello")


def test_messages_schema_and_text_parts() -> None:
    row = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "ok"},
        ]
    }
    seed = parse("messages", row)
    assert seed.turns == (Turn("user", "a\nb"), Turn("assistant", "ok"))


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"messages": []}, ("messages", None)),
        ({"conversations": []}, ("sharegpt", None)),
        ({"instruction": "x", "input": "", "output": ""}, ("alpaca", None)),
        ({"instruction": "x", "output": ""}, ("instruction", "instruction")),
        ({"question": "x", "answer": ""}, ("instruction", "question")),
        ({"prompt": "x"}, ("instruction", "prompt")),
        ({"text": "x"}, ("", None)),
    ],
)
def test_detect_schema(row: dict[str, Any], expected: tuple[str, str | None]) -> None:
    assert detect_schema(row) == expected


def test_auto_with_explicit_field_means_instruction_schema() -> None:
    assert parse("auto", {"body": "Hi there"}, field="body").instruction == "Hi there"


def test_auto_fails_on_unknown_keys_and_unknown_schema_name() -> None:
    err = error("auto", {"text": "x"})
    assert "(text)" in str(err) and "data/set.jsonl" in str(err)
    assert "choose one of" in str(error("nope", GSM))
    assert "apply to the instruction schema" in str(error("sharegpt", {"conversations": []}, field="x"))
    assert "apply to the instruction schema" in str(error("auto", {"messages": []}, response_field="x"))


@pytest.mark.parametrize(
    ("schema", "row", "kw", "field", "words"),
    [
        ("instruction", {"answer": "3"}, {"field": "question"}, "question", "missing field"),
        ("instruction", {"question": 12}, {"field": "question"}, "question", "expected a string"),
        ("instruction", {"question": "   "}, {"field": "question"}, "question", "empty instruction"),
        ("instruction", {"q": "x"}, {"field": "q", "response_field": "a"}, "a", "missing field"),
        (
            "instruction",
            {"question": "x", "answer": ["y"]},
            {"field": "question"},
            "answer",
            "expected a string",
        ),
        ("instruction", {"instruction": "x"}, {"id_field": "uid"}, "uid", "missing or empty id"),
        ("instruction", {"instruction": "x", "id": 1.5}, {}, "id", "string or an integer"),
        ("alpaca", {"instruction": "x", "input": 3}, {}, "input", "expected a string"),
        ("alpaca", {"instruction": "x", "instances": []}, {}, "instances", "non-empty list"),
        ("alpaca", {"instruction": "x", "instances": [{"output": 5}]}, {}, "instances[0].output", "string"),
        ("sharegpt", {"conversations": "hi"}, {}, "conversations", "expected a list"),
        ("sharegpt", {"id": 1}, {}, "conversations", "missing field"),
        (
            "sharegpt",
            {
                "conversations": [
                    {"from": "human", "value": "a"},
                    {"from": "gpt", "value": "b"},
                    {"from": "human"},
                ]
            },
            {},
            "conversations[2].value",
            "expected a string",
        ),
        (
            "sharegpt",
            {"conversations": [{"from": "robot", "value": "a"}]},
            {},
            "conversations[0].from",
            "role",
        ),
        ("sharegpt", {"conversations": ["hi"]}, {}, "conversations[0]", "expected an object"),
        ("sharegpt", {"conversations": [{"from": "gpt", "value": "a"}]}, {}, "conversations", "no user turn"),
        (
            "sharegpt",
            {"conversations": [{"from": "human", "value": " "}]},
            {},
            "conversations[0].value",
            "empty",
        ),
        ("messages", {"messages": [{"role": "tool", "content": "x"}]}, {}, "messages[0].role", "role"),
        (
            "messages",
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            {},
            "messages[0].content[0]",
            "text content",
        ),
    ],
)
def test_bad_rows_name_path_line_and_field(
    schema: str, row: dict[str, Any], kw: dict[str, Any], field: str, words: str
) -> None:
    err = error(schema, row, line=7, **kw)
    assert (err.path, err.line, err.field) == ("data/set.jsonl", 7, field)
    assert f"data/set.jsonl:7 field {field!r}" in str(err)
    assert words in str(err)


def test_seed_validates_at_construction() -> None:
    with pytest.raises(ValueError, match="no user turn"):
        Seed("s", (Turn("assistant", "x"),), "f:1")
    with pytest.raises(ValueError, match="seed_id"):
        Seed("", (Turn("user", "x"),), "f:1")
