"""Silent-row defects, end to end: `autoevol evolve` in a fresh interpreter on GSM8K questions,
against an OpenAI-compatible server over real HTTP whose replies reproduce each defect:

- every rewrite and every answer is Korean: rows are accepted, also under Evol-Instruct's
  elimination rules (the stop-word rule used to see no words in Hangul);
- every rewrite says "final instruction:" inside the instruction: the instruction is kept whole
  (the parser used to cut it at that phrase and accept the tail);
- half of the answers run past the token cap (`finish_reason: length`): none of them is accepted,
  each is rejected as `truncated`, and counts reconcile.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.evolve_server import run_cli
from tests.support.fake_openai_server import FakeOpenAIServer

SAMPLE = Path(__file__).resolve().parents[1] / "autoevol" / "data" / "samples" / "gsm8k_train_sample.jsonl"
FINAL = "#Finally Rewritten Instruction#"
N = 12
Reply = Callable[[dict[str, Any]], str]


@pytest.fixture
def gsm8k(tmp_path: Path) -> Path:
    path = tmp_path / "gsm8k.jsonl"
    with SAMPLE.open(encoding="utf-8") as handle:
        path.write_text("".join(islice(handle, N)), encoding="utf-8")
    return path


def questions(path: Path) -> list[str]:
    return [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines()]


def instruction_of(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"]).split("#Instruction#:\n")[-1]


def is_answer(body: dict[str, Any]) -> bool:
    return body["messages"][0]["role"] == "system"


def serve(reply: Reply) -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer(reply).start()
    try:
        yield server
    finally:
        server.stop()


def evolve(data: Path, url: str, out: Path, home: Path, *extra: str) -> dict[str, Any]:
    result = run_cli(["evolve", str(data), "--field", "question", "--model", "openai:fake", "--base-url", url,
                      "--out", str(out), "--quiet", *extra], home=home, cwd=data.parent)
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads((out / "output" / "summary.json").read_text(encoding="utf-8"))
    return summary


def rows(out: Path, name: str) -> list[dict[str, Any]]:
    text = (out / "output" / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


KOREAN_REWRITE = (
    "나탈리아는 4월에 친구 48명에게 클립을 팔았고, 5월에는 그 절반을 팔았습니다. "
    "각 달의 판매량을 표로 정리하고 두 달 동안 판매한 클립의 총합을 구하세요."
)
# Numbers in words, as a Korean answer may well be written: no ASCII token for a rule to see.
KOREAN_ANSWER = "사월에 마흔여덟 개, 오월에 스물네 개를 팔았으므로 두 달 동안 모두 일흔두 개의 클립을 팔았습니다."


def korean(body: dict[str, Any]) -> str:
    if is_answer(body):
        return KOREAN_ANSWER
    prompt = str(body["messages"][-1]["content"])
    if "Equal or Not Equal" in prompt:
        return "Not Equal"
    return f"Step 1 #Methods List#: 표를 추가한다\nStep 2 #Plan#: 표를 요구한다\nStep 4 {FINAL}: {KOREAN_REWRITE}"


@pytest.mark.parametrize("preset", ["default", "evol-instruct"])
def test_korean_answers_are_accepted(gsm8k: Path, tmp_path: Path, autoevol_home: Path, preset: str) -> None:
    for server in serve(korean):
        out = tmp_path / preset
        summary = evolve(gsm8k, server.url, out, autoevol_home, "--preset", preset, "--rounds", "1")
        assert summary["rounds"][0] == {"round": 1, "inputs": N, "accepted": N, "rejected": 0, "failed": 0,
                                        "categories": {}, "answer_cut": 0, "judge_unparsable": 0}
        accepted = [r for r in rows(out, "evolved.jsonl") if r["round"] == 1]
        assert len(accepted) == N
        assert {r["response"] for r in accepted} == {KOREAN_ANSWER}
        assert {r["instruction"] for r in accepted} == {KOREAN_REWRITE}


INSIDE = " Then give the reader a final instruction: check the total twice. Also name the final prompt: 'Done'."


def final_phrase_inside(body: dict[str, Any]) -> str:
    if is_answer(body):
        return "There are 72 clips in total, counted twice to be sure."
    instruction = instruction_of(body)
    return f"Step 1 #Methods List#: add a check\nStep 2 #Plan#: ask for a check\nStep 4 {FINAL}: {instruction}{INSIDE}"


def test_final_instruction_phrase_inside_a_rewrite_keeps_it_whole(
    gsm8k: Path, tmp_path: Path, autoevol_home: Path
) -> None:
    for server in serve(final_phrase_inside):
        out = tmp_path / "run"
        summary = evolve(gsm8k, server.url, out, autoevol_home)
        assert summary["rounds"][0]["accepted"] == N
        got = [r["instruction"] for r in rows(out, "evolved.jsonl")]
        assert got == [q + INSIDE for q in questions(gsm8k)]


# Varied words, not a loop: an answer that is simply longer than the cap (the fake server counts
# max_tokens in words).
_WORDS = "we add the clips sold in April to those sold in May and check each month".split()
_RNG = random.Random(7)
LONG = " ".join(_RNG.choice(_WORDS) for _ in range(400))


def long_answers(body: dict[str, Any]) -> str:
    if is_answer(body):
        question = str(body["messages"][-1]["content"])
        # Every other question (by its length) gets an answer that never ends within the cap.
        return f"Let me work through it: {LONG}" if len(question) % 2 else "The answer is 7."
    return f"Step 1 #Methods List#: add a step\nStep 4 {FINAL}: {instruction_of(body)} Show your work."


def test_answers_cut_at_the_token_cap_are_never_accepted(gsm8k: Path, tmp_path: Path, autoevol_home: Path) -> None:
    for server in serve(long_answers):
        out = tmp_path / "run"
        evolve(gsm8k, server.url, out, autoevol_home, "--preset", "demo")  # demo caps answers at 160 tokens
        long_ones = {q for q in questions(gsm8k) if len(q + " Show your work.") % 2}
        assert 0 < len(long_ones) < N
        accepted, problems = rows(out, "evolved.jsonl"), rows(out, "rejected.jsonl")
        assert len(accepted) + len(problems) == N
        assert {r["parent_instruction"] for r in accepted} == set(questions(gsm8k)) - long_ones
        assert all(r["response"] == "The answer is 7." for r in accepted)
        assert {r["parent_instruction"] for r in problems} == long_ones
        assert {(r["status"], r["failure_category"], r["failure_rule"]) for r in problems} == {
            ("rejected", "truncated", "finish_reason_length")
        }
