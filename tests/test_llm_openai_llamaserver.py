"""OpenAIBackend against a real OpenAI-compatible server: `llama_cpp.server` on the bundled model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoevol.errors import ContextWindowError
from autoevol.llm.cache import ResponseCache
from autoevol.llm.pool import ModelPool
from autoevol.llm.spec import parse_model_spec
from autoevol.types import user

pytestmark = pytest.mark.slow
READY_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                if response.status == 200 and json.load(response).get("data"):
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.25)
    pytest.fail(f"llama_cpp.server not ready within {READY_TIMEOUT_S:g}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def llama_server(bundled_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(bundled_model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(proc, base_url, log)
        yield base_url
    finally:
        _stop(proc)


async def test_chat_through_pool_and_cache(llama_server: str, tmp_path: Path) -> None:
    spec = parse_model_spec("openai:smollm2", base_url=llama_server)
    cache = ResponseCache(tmp_path / "cache.db")
    try:
        async with ModelPool(cache=cache) as pool:
            llm = pool.llm(spec)
            first = await llm.chat([user("What is the capital of France? Answer briefly.")], phase="t", max_tokens=24)
            again = await llm.chat([user("What is the capital of France? Answer briefly.")], phase="t", max_tokens=24)
            meter = pool.meter.total()
    finally:
        cache.close()
    assert first.text.strip() and not first.cached
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    assert first.finish_reason in {"stop", "length"}
    assert again.cached and again.text == first.text
    assert (meter.calls, meter.paid_calls) == (2, 1)


async def test_real_server_context_overflow_maps_to_context_window_error(llama_server: str) -> None:
    spec = parse_model_spec("openai:smollm2", base_url=llama_server)
    async with ModelPool(cache=None) as pool:
        with pytest.raises(ContextWindowError, match="maximum context length"):
            await pool.llm(spec).chat([user("word " * 3000)], phase="t", max_tokens=8)
