"""Answering instead of evolving (Fig. 1 of the paper): the rule fires on answers and results in
several languages, and stays silent on legitimate instructions, short, declarative or numeric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import autoevol
from autoevol.detect.answering import answered_instead

NATALIA = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
           "How many clips did Natalia sell altogether in April and May?")
APPLES_ZH = "小明有5个苹果，吃了2个，还剩几个？"
APPLES_ES = "¿Cuántas manzanas le quedan a Tom si tiene 5 y se come 2?"
TIPS = "Give three tips for staying healthy."

ANSWERS = [
    ("72", NATALIA, "bare_result"),
    ("$\\boxed{72}$", NATALIA, "bare_result"),
    ("\\boxed{72}", NATALIA, "bare_result"),
    ("#### 72", NATALIA, "bare_result"),
    ("x = 5", "Solve 2x + 1 = 11 for x.", "bare_result"),
    ("The answer is 72.", NATALIA, "answer_statement"),
    ("Final answer: 72 clips", NATALIA, "answer_statement"),
    ("So she sold $\\boxed{72}$ clips in the two months together.", NATALIA, "answer_statement"),
    ("答案是72。", NATALIA, "answer_statement"),
    ("La respuesta es 3 manzanas.", APPLES_ES, "answer_statement"),
    ("La réponse est 3 pommes.", "Combien de pommes reste-t-il à Tom s'il en a 5 et en mange 2 ?",
     "answer_statement"),
    ("Die Antwort ist 3 Äpfel.", "Wie viele Äpfel hat Tom noch, wenn er 5 hat und 2 isst?", "answer_statement"),
    ("Natalia sold 72 clips altogether in April and May.", NATALIA, "result_of_question"),
    ("In total, Natalia sold 48 + 24 = 72 clips.", NATALIA, "result_of_question"),
    ("小明还剩3个苹果。", APPLES_ZH, "result_of_question"),
    ("A Tom le quedan 3 manzanas.", APPLES_ES, "result_of_question"),
]

INSTRUCTIONS = [
    ("Natalia sold clips to 48 friends in April and 25% more in May. How many did she sell in total, and what "
     "share of them came from May?", NATALIA),
    ("Calculate the total number of clips Natalia sold, given that she sold 48 in April and 30% more in May.",
     NATALIA),
    ("Given a list of 10 integers, find the two whose sum is closest to 100.", "Find two numbers that add to 100."),
    ("Show that the answer is 12 when x = 3.", "Show that 4x = 12 for some x."),
    ("Prove that 17 is prime.", "Is 17 prime?"),
    ("Write a haiku about the sea.", "Write a poem."),
    ("I need a cover letter for a nursing job.", "Write a cover letter."),
    ("Three tips for staying healthy for a 45-year-old office worker who sleeps 6 hours a night.", TIPS),
    ("Explain why the sky is blue in 3 sentences.", "Why is the sky blue?"),
    ("If Natalia sold 48 clips in April and 60 in May, by what percentage did her sales grow?", NATALIA),
    ("计算小明吃掉2个苹果又买了7个之后还剩多少个苹果。", APPLES_ZH),
    ("Calcula cuántas manzanas le quedan a Tom si tiene 5, se come 2 y compra 7 más.", APPLES_ES),
    ("Combien de pommes reste-t-il à Tom s'il en a 12 et en mange 5 ?", APPLES_ES),
    ("Berechne, wie viele Äpfel Tom nach 3 Tagen übrig hat, wenn er täglich 2 isst.", APPLES_ES),
    ("Translate 'I have 3 cats' into Japanese.", "Translate 'I have a cat' into Japanese."),
    ("Sort the list [5, 3, 9] in descending order and report the median.", "Sort the list [5, 3, 9]."),
    ("", NATALIA),
]


@pytest.mark.parametrize(("evolved", "parent", "rule"), ANSWERS)
def test_an_answer_in_place_of_an_instruction_is_named(evolved: str, parent: str, rule: str) -> None:
    assert answered_instead(evolved, parent) == rule


@pytest.mark.parametrize(("evolved", "parent"), INSTRUCTIONS)
def test_a_legitimate_instruction_is_not_an_answer(evolved: str, parent: str) -> None:
    assert answered_instead(evolved, parent) is None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_no_shipped_question_or_task_reads_as_an_answer_and_every_final_result_does() -> None:
    package = Path(autoevol.__file__).parent
    gsm8k = _jsonl(package / "quality" / "benchmarks" / "gsm8k_test.jsonl")
    tasks = [row["instruction"] for row in _jsonl(package / "data" / "samples" / "alpaca_seed_sample.jsonl")]
    questions = [row["question"] for row in gsm8k]
    assert len(questions) > 1000 and len(tasks) >= 50
    assert [q for q in questions + tasks if answered_instead(q, q)] == []
    finals = [(row["answer"].split("####")[-1].strip(), row["question"]) for row in gsm8k]
    assert [a for a, q in finals if answered_instead(a, q) != "bare_result"] == []
