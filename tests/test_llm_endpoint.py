"""Fault injection over real HTTP: the fake server, the real OpenAIBackend, the real Endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from autoevol.errors import (
    AuthError,
    BadRequestError,
    ContextWindowError,
    DeadlineExceeded,
    ModelNotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
)
from autoevol.llm.client import LLM
from autoevol.llm.endpoint import Endpoint, RetryPolicy
from autoevol.llm.openai_http import OpenAIBackend
from autoevol.llm.usage import UsageMeter
from autoevol.types import CompletionRequest, user
from tests.support.fake_openai_server import FakeOpenAIServer, Fault

FAST = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.05)
SECRET = "sk-test-secret-0123456789"


def req(text: str = "hello there", **params: object) -> CompletionRequest:
    return CompletionRequest(messages=(user(text),), model="fake-model", **params)  # type: ignore[arg-type]


@pytest.fixture
async def backend(fake_server: FakeOpenAIServer) -> AsyncIterator[OpenAIBackend]:
    b = OpenAIBackend(fake_server.url, SECRET)
    yield b
    await b.aclose()


def endpoint(backend: OpenAIBackend, **kwargs: object) -> Endpoint:
    kwargs.setdefault("retry", FAST)
    return Endpoint(backend, **kwargs)  # type: ignore[arg-type]


async def test_plain_completion_maps_text_usage_and_params(fake_server: FakeOpenAIServer, backend) -> None:
    completion = await endpoint(backend).complete(req("one two three"))
    assert completion.text == "one two three"
    assert completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 3)
    assert completion.model == "fake-model" and not completion.cached and completion.latency_s > 0
    body = fake_server.bodies[0]
    assert body["max_tokens"] == 512 and body["temperature"] == 0.0 and body["top_p"] == 1.0
    assert "stop" not in body and "seed" not in body  # omitted when empty / None
    assert fake_server.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert backend.identity == f"openai:{fake_server.url}" and SECRET not in repr(backend)


async def test_stop_seed_and_length_are_sent_and_read(fake_server: FakeOpenAIServer, backend) -> None:
    completion = await endpoint(backend).complete(req("a b c d e f", stop=("###",), seed=7, max_tokens=2))
    assert fake_server.bodies[0]["stop"] == ["###"] and fake_server.bodies[0]["seed"] == 7
    assert (completion.text, completion.finish_reason) == ("a b", "length")


async def test_missing_key_sends_a_placeholder(fake_server: FakeOpenAIServer) -> None:
    b = OpenAIBackend(fake_server.url, None)
    try:
        assert (await b.complete(req())).text == "hello there"
    finally:
        await b.aclose()
    assert fake_server.headers[0]["authorization"] == "Bearer not-set"


async def test_429_waits_at_least_retry_after_then_succeeds(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.rate_limit(retry_after=1))
    started = time.monotonic()
    # RetryPolicy caps Retry-After at 4 x max_delay_s, so the cap must sit above 1 s here.
    completion = await endpoint(backend, retry=RetryPolicy(base_delay_s=0.01, max_delay_s=1.0)).complete(req())
    assert time.monotonic() - started >= 1.0
    assert completion.text == "hello there" and fake_server.requests == 2


async def test_retry_after_as_http_date(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.rate_limit(retry_after="Wed, 21 Oct 2099 07:28:00 GMT"))
    with pytest.raises(RateLimitError) as info:
        await endpoint(backend, retry=RetryPolicy(max_retries=0)).complete(req())
    assert info.value.retry_after is not None and info.value.retry_after > 3600


async def test_sustained_429s_lower_live_concurrency(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.rate_limit(retry_after=0), times=4)
    ep = endpoint(backend, concurrency=8, retry=RetryPolicy(max_retries=6, base_delay_s=0.01, throttle_after=2))
    assert (await ep.complete(req())).text == "hello there"
    assert ep.limiter.limit <= 4 < ep.limiter.max_limit
    assert fake_server.requests == 5


async def test_500s_are_retried_then_succeed(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.server_error(500), times=2)
    assert (await endpoint(backend).complete(req())).text == "hello there"
    assert fake_server.requests == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_persistent_5xx_is_a_server_error_after_max_retries(
    fake_server: FakeOpenAIServer, backend, status: int
) -> None:
    fake_server.inject(Fault.server_error(status), times=None)
    with pytest.raises(ServerError, match=f"HTTP {status}"):
        await endpoint(backend, retry=RetryPolicy(max_retries=2, base_delay_s=0.01)).complete(req())
    assert fake_server.requests == 3


async def test_malformed_json_is_a_transport_error_after_retries(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.malformed(), times=None)
    with pytest.raises(TransportError, match="malformed"):
        await endpoint(backend, retry=RetryPolicy(max_retries=1, base_delay_s=0.01)).complete(req())
    assert fake_server.requests == 2


async def test_no_choices_is_a_malformed_response(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.no_choices())
    with pytest.raises(TransportError, match="malformed response"):
        await endpoint(backend, retry=RetryPolicy(max_retries=0)).complete(req())


async def test_dropped_connection_is_retried(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.drop())
    assert (await endpoint(backend).complete(req())).text == "hello there"
    assert fake_server.requests == 2


async def test_connection_refused_is_a_transport_error() -> None:
    b = OpenAIBackend("http://127.0.0.1:9/v1", SECRET)  # discard port: nothing listens
    try:
        with pytest.raises(TransportError, match=r"127\.0\.0\.1:9"):
            await b.complete(req())
    finally:
        await b.aclose()


async def test_hanging_request_hits_the_deadline_fast(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.hang(), times=None)
    ep = endpoint(backend, request_timeout_s=0.5, retry=RetryPolicy(max_retries=1, base_delay_s=0.01))
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"0\.5s"):
        await ep.complete(req())
    assert time.monotonic() - started < 3.0
    assert fake_server.requests == 2


async def test_401_is_an_auth_error_at_once_and_never_shows_the_key(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.unauthorized(), times=None)
    with pytest.raises(AuthError) as info:
        await endpoint(backend).complete(req())
    assert fake_server.requests == 1
    message = str(info.value)
    assert SECRET not in message and "[redacted]" in message
    assert "API key environment variable" in message
    assert SECRET not in repr(info.value.args) and info.value.__cause__ is None


async def test_403_is_an_auth_error(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.unauthorized(status=403))
    with pytest.raises(AuthError, match="403"):
        await endpoint(backend).complete(req())


async def test_404_is_model_not_found(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.not_found(), times=None)
    with pytest.raises(ModelNotFoundError, match="fake-model"):
        await endpoint(backend).complete(req())
    assert fake_server.requests == 1


async def test_context_overflow_and_other_400s(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.inject(Fault.context_window())
    fake_server.inject(Fault.bad_request("prompt is too long for this model", status=413))
    fake_server.inject(Fault.bad_request("Invalid value for 'top_p'", status=422))
    ep = endpoint(backend)
    with pytest.raises(ContextWindowError, match="maximum context length"):
        await ep.complete(req())
    with pytest.raises(ContextWindowError, match="413"):
        await ep.complete(req())
    with pytest.raises(BadRequestError, match="top_p"):
        await ep.complete(req())
    assert fake_server.requests == 3


async def test_64_concurrent_requests_respect_the_concurrency_budget(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.latency_s = 0.05
    ep = endpoint(backend, concurrency=4)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(ep.complete(req(f"item {i}"))) for i in range(64)]
    assert [t.result().text for t in tasks] == [f"item {i}" for i in range(64)]
    assert fake_server.requests == 64
    assert 2 <= fake_server.peak_in_flight <= 4
    assert ep.limiter.peak_in_flight <= 4


async def test_single_flight_sends_identical_concurrent_requests_once(fake_server: FakeOpenAIServer, backend) -> None:
    fake_server.latency_s = 0.2
    meter = UsageMeter()
    llm = LLM(endpoint(backend), model="fake-model", label="fake", cache=None, meter=meter)
    results = await asyncio.gather(*(llm.chat([user("same prompt")], phase="evolve") for _ in range(10)))
    assert fake_server.requests == 1
    assert {r.text for r in results} == {"same prompt"}
    assert sum(not r.cached for r in results) == 1
    total = meter.total()
    assert (total.calls, total.cached_calls, total.paid_calls) == (10, 9, 1)


async def test_stop_is_prompt_with_hanging_and_idle_connections() -> None:
    server = FakeOpenAIServer().start()
    b = OpenAIBackend(server.url, SECRET)
    try:
        await b.complete(req())  # leaves an idle keep-alive connection open
        server.inject(Fault.hang(), times=None)
        hanging = asyncio.create_task(b.complete(req()))
        while server.in_flight == 0:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await asyncio.to_thread(server.stop)
        assert time.monotonic() - started < 2.0
        with pytest.raises(TransportError):
            await hanging
    finally:
        await b.aclose()


async def test_standalone_server_subprocess(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text("def reply(body):\n    return 'scripted: ' + body['messages'][-1]['content']\n")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.fake_openai_server",
            "--port",
            "0",
            "--script",
            f"pyfile:{script}:reply",
            "--latency",
            "0.01",
            "--fault",
            "server_error:1",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    b: OpenAIBackend | None = None
    try:
        assert proc.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert ready.startswith("READY http://127.0.0.1:"), ready
        b = OpenAIBackend(ready.split()[1], SECRET)
        completion = await endpoint(b).complete(req("over real HTTP"))
        assert completion.text == "scripted: over real HTTP"
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=10)
        assert proc.returncode == 0
        stats = json.loads(out.split("STATS ", 1)[1])
        assert stats["requests"] == 2  # the injected 500, then the retry
    finally:
        if b is not None:
            await b.aclose()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_backend_works_across_event_loops_and_pickles(fake_server: FakeOpenAIServer) -> None:
    b = OpenAIBackend(fake_server.url, SECRET)
    assert asyncio.run(b.complete(req("first loop"))).text == "first loop"
    assert asyncio.run(b.complete(req("second loop"))).text == "second loop"  # a fresh client per loop
    copy = pickle.loads(pickle.dumps(b))
    assert copy.identity == b.identity
    assert asyncio.run(copy.complete(req("in a copy"))).text == "in a copy"
    asyncio.run(copy.aclose())
