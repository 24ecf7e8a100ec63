"""Fuzzing the reply parser (issue 17 item 11): no server reply, however odd, crashes a run or enters
the training data unflagged.

A seeded generator (hypothesis is not a dependency) builds bodies of every kind: a valid completion
with one field replaced by a value of the wrong type, extreme numbers (1e999, NaN, 10**5000 written
out), deep nesting, huge strings, lone surrogates, bytes that are not UTF-8, and random JSON. Each one
must become exactly one of: a `BackendError` subclass with a one-line message (the endpoint retries or
fails the row), or a `Completion` whose fields have their types and whose finish reason is in the
vocabulary (then `truncation_verdict` flags every one that is not a finished answer). The error
bodies of non-200 answers go through `_convert_status` the same way.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from autoevol.detect import truncation_verdict
from autoevol.errors import BackendError
from autoevol.llm.finish import normalize_finish
from autoevol.llm.openai_http import _convert_status, _to_completion
from autoevol.types import Completion, CompletionRequest, user

CASES = 3000
REQUEST = CompletionRequest(messages=(user("hi"),), model="m")
VOCABULARY = {"stop", "length", "content_filter", "refusal", "tool_calls", "other"}
#: Text that only a JSON parser reads as a value: numbers no float or int holds, non-standard constants.
EXTREME_LITERALS = ["1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1" * 5000, "-0", "1e-999",
                    "18446744073709551617", "0.1e400", '"\\ud800"', '"\\udfff x"', '"\\u0000"']


def valid_body() -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4,
                      "completion_tokens_details": {"reasoning_tokens": 0}}}


def odd_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(12 if depth < 3 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, -(2**80), 10**30, 7])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e308, 5e-324, float("nan"), float("inf")])
    if kind == 4:
        return rng.choice(["", "stop", "length", "content_filter", "refusal", "eos", "x" * 100_000,
                           "\x00\x1b[31m", "\ud83d", "é" * 10, "tool_calls", "ABORT"])
    if kind == 5:
        return [rng.choice(["a", {"type": "text", "text": "b"}, {"type": "image_url"}, {"text": 5}, None, 3])
                for _ in range(rng.randrange(4))]
    if kind == 6:
        return {"type": "text", "text": odd_value(rng, depth + 1)}
    if kind == 7:
        return rng.choice([[], {}, [[]], {"": None}])
    if kind in (8, 9):
        return [odd_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(["content", "text", "message", "refusal", "choices", "x"]): odd_value(rng, depth + 1)
            for _ in range(rng.randrange(3))}


#: Where a wrong value can go in a valid body: every field the parser reads, and their parents.
PATHS: list[tuple[str | int, ...]] = [
    (), ("choices",), ("choices", 0), ("choices", 0, "message"), ("choices", 0, "message", "content"),
    ("choices", 0, "message", "refusal"), ("choices", 0, "message", "tool_calls"), ("choices", 0, "finish_reason"),
    ("usage",), ("usage", "prompt_tokens"), ("usage", "completion_tokens"), ("usage", "completion_tokens_details"),
    ("usage", "completion_tokens_details", "reasoning_tokens"), ("model",),
]


def mutated(rng: random.Random) -> Any:
    body: Any = valid_body()
    for _ in range(rng.randrange(1, 4)):
        path = rng.choice(PATHS)
        if not path:
            body = odd_value(rng)
            continue
        target = body
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = odd_value(rng)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation replaced a parent: this path is gone
    return body


def raw_body(rng: random.Random) -> bytes:
    kind = rng.randrange(10)
    if kind == 0:  # deep nesting, as arrays and as objects
        depth = rng.choice([50, 5000, 200_000])
        return (b"[" * depth + b"]" * depth) if rng.random() < 0.5 else (b'{"a":' * depth + b"1" + b"}" * depth)
    if kind == 1:  # an extreme literal where the parser reads a field
        field = rng.choice(['"prompt_tokens"', '"reasoning_tokens"', '"content"', '"finish_reason"', '"model"'])
        text = json.dumps(valid_body()).replace(field + ": ", field + ": " + rng.choice(EXTREME_LITERALS) + ", "
                                                + field + "_was: ", 1)
        return text.encode()
    if kind == 2:  # not UTF-8, or cut short
        data = json.dumps(valid_body()).encode()
        return rng.choice([data[: rng.randrange(len(data))], data.replace(b'"4"', b'"\xff\xfe"'),
                           b"\xef\xbb\xbf" + data, data.decode().encode("utf-16")])
    if kind == 3:
        return rng.choice([b"", b"null", b"[]", b"{}", b'"choices"', b"<html>502 Bad Gateway</html>", b"\x00" * 64])
    try:
        return json.dumps(mutated(rng), allow_nan=True, ensure_ascii=rng.random() < 0.5).encode(
            "utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return b"{"


def _one_line(error: BaseException) -> bool:
    message = str(error)
    return bool(message) and "\n" not in message and len(message) < 2000


def test_every_generated_body_is_a_completion_or_a_backend_error() -> None:
    rng = random.Random(17)
    outcomes = {"completion": 0, "flagged": 0, "error": 0}
    for case in range(CASES):
        raw = raw_body(rng)
        try:
            completion = _to_completion(raw, REQUEST, 0.1, secret="sk-secret")
        except BackendError as error:
            assert _one_line(error), (case, raw[:200], error)
            outcomes["error"] += 1
            continue
        except Exception as error:  # the property under test: nothing else escapes
            pytest.fail(f"case {case}: {type(error).__name__}: {error} for body {raw[:300]!r}")
        assert isinstance(completion, Completion)
        assert isinstance(completion.text, str) and isinstance(completion.model, str)
        assert completion.finish_reason in VOCABULARY, completion.finish_reason
        usage = completion.usage
        assert all(isinstance(n, int) and n >= 0
                   for n in (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens))
        verdict = truncation_verdict(completion.text, completion.finish_reason)
        if completion.finish_reason == "stop":
            assert not verdict.failed or verdict.category == "truncated"
            outcomes["completion"] += 1
        else:
            assert verdict.failed and verdict.category in ("truncated", "filtered")
            outcomes["flagged"] += 1
    print(outcomes)
    # The generator reaches all three outcomes often, or it tests less than it claims.
    assert min(outcomes.values()) > CASES // 50, outcomes


def test_every_generated_error_body_is_a_backend_error() -> None:
    rng = random.Random(1717)
    for case in range(CASES // 3):
        raw = raw_body(rng)
        if rng.random() < 0.5:
            raw = json.dumps({"error": json.loads(raw) if _loads(raw) else raw.decode("utf-8", "replace")}).encode()
        status = rng.choice([400, 401, 403, 404, 408, 413, 422, 429, 500, 503, 302, 100, 999])
        headers = {"retry-after": rng.choice(["", "3", "-5", "1e999", "NaN", "Wed, 21 Oct 2099 07:28:00 GMT",
                                              "garbage", "99999999999999999999"])}
        try:
            error = _convert_status(status, raw, headers, secret="sk-secret")
        except Exception as failure:
            pytest.fail(f"case {case}: {type(failure).__name__}: {failure} for HTTP {status} {raw[:300]!r}")
        assert isinstance(error, BackendError) and _one_line(error), (case, error)
        retry_after = getattr(error, "retry_after", None)
        assert retry_after is None or retry_after >= 0


def _loads(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


def test_normalize_finish_never_raises_on_any_value() -> None:
    rng = random.Random(3)
    for _ in range(500):
        value = odd_value(rng)
        assert normalize_finish(copy.deepcopy(value)) in VOCABULARY
