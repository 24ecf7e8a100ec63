"""Odd server replies (issue 17 item 4; reliability review B5, B17, B18).

Every provider's finish reason is read in one vocabulary; filtered and refused answers are rejected
rows of category "filtered" (for rewrites, answers and judge replies alike); null content at the
token cap is a truncated completion, not a transport fault retried seven times; content given as a
list of parts is joined; a deterministic malformed body (the same fault twice) fails its row once instead
of on every rerun, while bodies cut at different points are retried like any transient fault.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoevol.detect import truncation_verdict
from autoevol.errors import MalformedReplyError
from autoevol.llm.endpoint import Endpoint, RetryPolicy
from autoevol.llm.finish import normalize_finish
from autoevol.llm.openai_http import OpenAIBackend
from autoevol.types import CompletionRequest, user
from tests.fixtures.evolve_server import CLI, cli_env, reply, write_seeds
from tests.support.fake_openai_server import FakeOpenAIServer, Fault

SEEDS = 4


@pytest.mark.parametrize(("raw", "word"), [
    ("stop", "stop"), ("eos", "stop"), ("STOP", "stop"), ("end_turn", "stop"), (None, "stop"), ("", "stop"),
    ("length", "length"), ("limit", "length"), ("MAX_TOKENS", "length"), ("max_tokens", "length"),
    ("content_filter", "content_filter"), ("SAFETY", "content_filter"), ("refusal", "refusal"),
    ("tool_calls", "tool_calls"), ("function_call", "tool_calls"), ("abort", "other"), ("load", "other"),
    (7, "other"), (["stop"], "other"),
])
def test_every_providers_finish_reason_has_one_word(raw: object, word: str) -> None:
    assert normalize_finish(raw) == word


@pytest.mark.parametrize(("finish", "category"), [
    ("content_filter", "filtered"), ("refusal", "filtered"), ("abort", "filtered"), ("tool_calls", "filtered"),
    ("length", "truncated"), ("stop", None), ("eos", None), ("unknown", None),
])
def test_only_finished_answers_pass_the_completion_check(finish: str, category: str | None) -> None:
    verdict = truncation_verdict("Here is a careful answer: 2 + 2 = 4, so the tot", finish)
    assert verdict.failed is (category is not None) and verdict.category == category


def req() -> CompletionRequest:
    return CompletionRequest(messages=(user("hi"),), model="fake-model", max_tokens=32)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply) as running:
        yield running


async def _complete(server: FakeOpenAIServer, retry: RetryPolicy | None = None):  # type: ignore[no-untyped-def]
    backend = OpenAIBackend(server.url)
    try:
        return await Endpoint(backend, retry=retry or RetryPolicy(base_delay_s=0.01)).complete(req())
    finally:
        await backend.aclose()


@pytest.mark.parametrize(("message", "finish", "text", "word"), [
    ({"content": None}, "length", "", "length"),  # a reasoning model that thought until the cap
    ({"content": [{"type": "text", "text": "4 "}, {"type": "image_url"}, {"type": "text", "text": "apples"}]},
     "stop", "4 apples", "stop"),
    ({"content": None, "refusal": "I'm sorry, I cannot help with that."}, "stop",
     "I'm sorry, I cannot help with that.", "refusal"),
    ({"content": "Here is a careful answer: 2 + 2", "refusal": None}, "content_filter",
     "Here is a careful answer: 2 + 2", "content_filter"),
    ({"content": "done"}, "eos", "done", "stop"),
])
async def test_odd_choices_are_completions_at_the_first_attempt(
    server: FakeOpenAIServer, message: dict[str, object], finish: str, text: str, word: str
) -> None:
    server.inject(Fault.choice(message, finish), times=None)
    completion = await _complete(server)
    assert (completion.text, completion.finish_reason) == (text, word)
    assert server.requests == 1  # not a transport error retried seven times


async def test_a_deterministic_malformed_body_is_asked_once_more_then_fails(server: FakeOpenAIServer) -> None:
    server.inject(Fault.raw(b'{"choices": [{"message": {"content": "caf\xe9 \xff"}}]}'), times=None)
    with pytest.raises(MalformedReplyError, match="malformed response body") as info:
        await _complete(server)
    assert server.requests == 2 and "\n" not in str(info.value)


async def test_bodies_cut_at_different_points_are_transient_and_get_the_ordinary_retries(
    server: FakeOpenAIServer,
) -> None:
    # Three cut bodies in a row, each shorter or longer than the last: a flaky link, not the model's output.
    server.inject(Fault.malformed(), times=3)
    completion = await _complete(server)
    assert completion.text and server.requests == 4


async def test_a_body_cut_at_the_same_point_twice_is_the_servers_answer_and_fails(server: FakeOpenAIServer) -> None:
    server.inject(Fault.raw(b'{"choices": [{"message": {"content": "cut'), times=None)
    with pytest.raises(MalformedReplyError, match="malformed response body"):
        await _complete(server)
    assert server.requests == 2


def _evolve(tmp_path: Path, home: Path, url: str, out: str) -> tuple[int, list[dict[str, object]], str]:
    args = ["evolve", "seeds.jsonl", "--model", "openai:fake", "--base-url", url, "--out", out, "--quiet"]
    result = subprocess.run([*CLI, *args], cwd=tmp_path, env=cli_env(home), capture_output=True, text=True,
                            timeout=120, check=False)
    rows = []
    for name in ("evolved.jsonl", "rejected.jsonl"):
        path = tmp_path / out / "output" / name
        if path.exists():
            rows += [json.loads(line) for line in path.read_text().splitlines()]
    return result.returncode, rows, result.stderr


@pytest.mark.parametrize("message", [
    {"content": "Here is a careful answer: 2 + 2 = 4, so the tot"},
    {"content": None, "refusal": "I'm sorry, I cannot help with that."},
])
def test_filtered_and_refused_answers_are_never_training_rows(
    tmp_path: Path, autoevol_home: Path, server: FakeOpenAIServer, message: dict[str, object]
) -> None:
    write_seeds(tmp_path / "seeds.jsonl", SEEDS)
    server.inject(Fault.choice(message, "content_filter" if message.get("content") else "stop"), times=None)
    _, rows, stderr = _evolve(tmp_path, autoevol_home, server.url, "runs/f")
    assert len(rows) == SEEDS, stderr
    assert [r["status"] for r in rows] == ["rejected"] * SEEDS
    assert {r["failure_category"] for r in rows} == {"filtered"}
    assert not (tmp_path / "runs/f/output/evolved.jsonl").read_text().strip()


def test_a_malformed_reply_fails_its_row_once_and_is_not_paid_again_on_rerun(
    tmp_path: Path, autoevol_home: Path, server: FakeOpenAIServer
) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 1)
    server.inject(Fault.raw(b"\xff\xfe not even utf-8"), times=None)
    _, rows, stderr = _evolve(tmp_path, autoevol_home, server.url, "runs/m")
    assert [(r["status"], r["failure_category"]) for r in rows] == [("failed", "request_error")], stderr
    assert "malformed response body" in str(rows[0]["error"]) and "\n" not in str(rows[0]["error"])
    first = server.requests
    assert first == 2  # the first attempt and one more, not seven
    _evolve(tmp_path, autoevol_home, server.url, "runs/m")
    assert server.requests == first  # the rerun does not pay for it again
