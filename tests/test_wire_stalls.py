"""Stalls (issue 17 item 7; reliability review B10): a server that asks to wait an hour, and one that
accepts connections and never answers, stop the run at once and resumably (exit 7), instead of
holding it for half an hour (Retry-After: 3600, capped at 300 s per attempt) or for 25 rows x the
request deadline (the silent server)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoevol.errors import StalledServerError
from autoevol.llm.endpoint import Endpoint, RetryPolicy
from autoevol.llm.openai_http import OpenAIBackend
from autoevol.types import CompletionRequest, user
from tests.fixtures.evolve_server import CLI, cli_env, reply, write_seeds
from tests.support.fake_openai_server import FakeOpenAIServer, Fault

TIMEOUT_S = 1.0


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A socket that listens (the kernel completes every handshake) and never reads or answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        sock.close()


def _evolve(tmp_path: Path, home: Path, url: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    args = ["evolve", "seeds.jsonl", "--model", "openai:fake", "--base-url", url, "--out", "runs/s", "--quiet",
            "--request-timeout", str(TIMEOUT_S), *extra]
    started = time.monotonic()
    result = subprocess.run([*CLI, *args], cwd=tmp_path, env=cli_env(home), capture_output=True, text=True,
                            timeout=300, check=False)
    return result, time.monotonic() - started


@pytest.mark.parametrize("concurrency", ["8", "1"])
def test_a_server_that_never_answers_stops_the_run_within_two_deadlines(
    tmp_path: Path, autoevol_home: Path, silent_url: str, concurrency: str
) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 30)
    result, elapsed = _evolve(tmp_path, autoevol_home, silent_url, "--concurrency", concurrency)
    assert result.returncode == 7, result.stderr
    assert "accepts connections but answered none" in result.stderr
    assert "Traceback" not in result.stderr
    # Two deadlines (a retry's jitter between them at -j 1) plus the interpreter's start and the outputs;
    # before the fix: 25 rows x the deadline at concurrency 1.
    assert elapsed < 2 * TIMEOUT_S + 8, elapsed


def test_retry_after_above_the_cap_stops_the_run_at_once(tmp_path: Path, autoevol_home: Path) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 1)
    with FakeOpenAIServer(reply) as server:
        server.inject(Fault.rate_limit(retry_after=3600), times=None)
        result, elapsed = _evolve(tmp_path, autoevol_home, server.url, "--concurrency", "1")
        sent = server.requests
    assert result.returncode == 7, result.stderr
    assert "the server asks to wait 3600 s" in result.stderr and "resume" in result.stderr
    assert sent == 1 and elapsed < 15, (sent, elapsed)
    # Resumable: the same command, once the server answers, finishes the run.
    with FakeOpenAIServer(reply) as server:
        again, _ = _evolve(tmp_path, autoevol_home, server.url, "--concurrency", "1")
    assert again.returncode == 0, again.stderr


async def test_a_retry_after_within_the_cap_is_still_waited_for() -> None:
    with FakeOpenAIServer() as server:
        server.inject(Fault.rate_limit(retry_after=0.2), times=1)
        backend = OpenAIBackend(server.url)
        try:
            endpoint = Endpoint(backend, retry=RetryPolicy(max_retry_after_s=1.0, base_delay_s=0.01))
            completion = await endpoint.complete(CompletionRequest(messages=(user("hi"),), model="m"))
        finally:
            await backend.aclose()
    assert completion.text and server.requests == 2


async def test_silence_after_answers_is_not_a_stall() -> None:
    """The rule is about a server that never answered: a later deadline is the usual retry."""
    with FakeOpenAIServer() as server:
        backend = OpenAIBackend(server.url)
        endpoint = Endpoint(backend, request_timeout_s=0.3,
                            retry=RetryPolicy(base_delay_s=0.01, stall_after_timeouts=1))
        try:
            await endpoint.complete(CompletionRequest(messages=(user("first"),), model="m"))
            server.inject(Fault.hang(), times=2)
            completion = await endpoint.complete(CompletionRequest(messages=(user("second"),), model="m"))
        finally:
            await backend.aclose()
    assert completion.text and server.requests == 4


async def test_requests_waiting_for_a_slot_fail_at_once_once_the_server_is_silent() -> None:
    with FakeOpenAIServer() as server:
        server.inject(Fault.hang(), times=None)
        backend = OpenAIBackend(server.url)
        endpoint = Endpoint(backend, concurrency=2, request_timeout_s=0.5,
                            retry=RetryPolicy(base_delay_s=0.01, stall_after_timeouts=2))
        started = time.monotonic()
        try:
            results = await asyncio.gather(
                *(endpoint.complete(CompletionRequest(messages=(user(f"q{i}"),), model="m")) for i in range(20)),
                return_exceptions=True)
        finally:
            await backend.aclose()
        sent = server.requests
    assert all(isinstance(r, StalledServerError) for r in results), results
    # The first expiry frees a slot a moment before the second: one more request may go out then.
    assert sent <= 3 and time.monotonic() - started < 3, sent
