"""Deadlines shorter than the server's queue must not collapse throughput.

The scripted world of reliability review §5, scaled down to run in seconds: a server with 4 workers
(each request takes 30 ms, the rest wait in its queue, and it never notices a client that gave up),
a client asking for 64 requests in flight with a 0.36 s deadline. 64 queued requests need 0.48 s,
so at full concurrency most requests time out while the server keeps working for nobody.
Measured (200 seeds, 400 calls of work): before the fix the server received 870 requests in 11 s;
with deadlines lowering the concurrency, about 470 in 5 s.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoevol.errors import DeadlineExceeded
from autoevol.llm.endpoint import Endpoint, RetryPolicy
from autoevol.llm.openai_http import OpenAIBackend
from autoevol.types import CompletionRequest, user
from tests.fixtures.evolve_server import CLI, cli_env, reply, write_seeds
from tests.support.fake_openai_server import FakeOpenAIServer, Fault

SEEDS = 200
CALLS_PER_SEED = 2  # one evolve call and one answer per seed in a one-round evolve


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply, latency_s=0.03, max_concurrent=4) as running:
        yield running


def test_timeouts_lower_concurrency_instead_of_flooding_the_server(
    tmp_path: Path, server: FakeOpenAIServer, autoevol_home: Path
) -> None:
    write_seeds(tmp_path / "seeds.jsonl", SEEDS)
    args = ["evolve", "seeds.jsonl", "--model", "openai:fake", "--base-url", server.url, "--out", "runs/x",
            "--quiet", "--concurrency", "64", "--request-timeout", "0.36"]
    started = time.monotonic()
    result = subprocess.run([*CLI, *args], cwd=tmp_path, env=cli_env(autoevol_home), capture_output=True,
                            text=True, timeout=300, check=False)
    elapsed = time.monotonic() - started
    work = SEEDS * CALLS_PER_SEED
    print(f"server requests {server.requests}, processed {server.processed}, work {work}, {elapsed:.1f}s")
    assert result.returncode == 0, result.stderr
    assert f"round 1: {SEEDS} in -> accepted {SEEDS}," in result.stdout, result.stdout
    # Every request the server received cost it a worker's time, kept or not.
    assert server.requests <= 1.5 * work, (server.requests, work)
    assert elapsed < 30


def req(text: str) -> CompletionRequest:
    return CompletionRequest(messages=(user(text),), model="fake-model")


async def test_deadline_expiries_halve_the_limit_once_per_burst() -> None:
    """64 requests time out together: one decrease per burst sent at the current limit, not 32."""
    with FakeOpenAIServer() as server:
        server.inject(Fault.hang(), times=None)
        backend = OpenAIBackend(server.url)
        endpoint = Endpoint(backend, concurrency=64, request_timeout_s=0.3,
                            retry=RetryPolicy(max_retries=0, deadline_retry_floor=0))
        try:
            results = await asyncio.gather(*(endpoint.complete(req(f"q{i}")) for i in range(64)),
                                           return_exceptions=True)
        finally:
            await backend.aclose()
    assert all(isinstance(r, DeadlineExceeded) for r in results)
    assert endpoint.limiter.limit == 32 and endpoint.limiter.epoch == 1


async def test_timed_out_retries_never_outgrow_the_work() -> None:
    """A server that never answers in time: retries are bounded by the work, each error says where and why."""
    with FakeOpenAIServer() as server:
        server.inject(Fault.hang(), times=None)
        backend = OpenAIBackend(server.url)
        policy = RetryPolicy(max_retries=6, base_delay_s=0.01, max_delay_s=0.02, deadline_retry_ratio=0.5,
                             deadline_retry_floor=4)
        endpoint = Endpoint(backend, concurrency=16, request_timeout_s=0.2, retry=policy)
        try:
            results = await asyncio.gather(*(endpoint.complete(req(f"q{i}")) for i in range(16)),
                                           return_exceptions=True)
        finally:
            await backend.aclose()
        sent, url = server.requests, server.url
    assert all(isinstance(r, DeadlineExceeded) for r in results)
    # Without the budget: 16 x 7 attempts = 112 requests.
    assert sent <= 16 + 4 + 0.5 * 16, sent
    messages = [str(r) for r in results]
    assert all(url in m and "gave up after" in m for m in messages)
    assert any("retry budget for timeouts" in m for m in messages)
