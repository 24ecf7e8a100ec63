"""The embedded llama.cpp backend on the bundled SmolLM2-135M model."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from autoevol.errors import ContextWindowError, ModelNotFoundError
from autoevol.llm.cache import ResponseCache
from autoevol.llm.llamacpp import LlamaCppBackend, sample_seed
from autoevol.llm.pool import ModelPool
from autoevol.llm.spec import parse_model_spec
from autoevol.types import CompletionRequest, user


def req(text: str, **params: object) -> CompletionRequest:
    params.setdefault("max_tokens", 24)
    return CompletionRequest(messages=(user(text),), **params)  # type: ignore[arg-type]


@pytest.fixture
async def backend(bundled_model: Path) -> AsyncIterator[LlamaCppBackend]:
    b = LlamaCppBackend(bundled_model, n_ctx=1024)
    yield b
    await b.aclose()


def test_sample_seed_is_stable_and_spreads() -> None:
    assert sample_seed(42, 0) == 42
    seeds = [sample_seed(42, i) for i in range(100)]
    assert seeds == [sample_seed(42, i) for i in range(100)]
    assert len(set(seeds)) == 100 and all(0 <= s < 2**31 for s in seeds)
    assert sample_seed(1, 1) != sample_seed(2, 1)


async def test_missing_model_file_is_model_not_found(tmp_path: Path) -> None:
    b = LlamaCppBackend(tmp_path / "absent.gguf")
    assert b.identity == "llamacpp:absent.gguf:-1"
    with pytest.raises(ModelNotFoundError, match=r"absent\.gguf"):
        await b.complete(req("hi"))


@pytest.mark.slow
async def test_reply_with_usage(backend: LlamaCppBackend, bundled_model: Path) -> None:
    completion = await backend.complete(req("What is the capital of France?"))
    assert completion.text.strip()
    assert completion.usage.prompt_tokens > 0 and 0 < completion.usage.completion_tokens <= 24
    assert completion.finish_reason in {"stop", "length"}
    assert completion.latency_s > 0
    assert backend.identity == f"llamacpp:{bundled_model.name}:{bundled_model.stat().st_size}"


@pytest.mark.slow
async def test_temperature_zero_is_deterministic(backend: LlamaCppBackend) -> None:
    first = await backend.complete(req("Name three colours."))
    await backend.complete(req("Something else entirely, to disturb the KV cache."))
    second = await backend.complete(req("Name three colours."))
    assert first.text == second.text


@pytest.mark.slow
async def test_sampling_is_reproducible_per_sample_index(backend: LlamaCppBackend) -> None:
    prompt = "Invent a name for a new fantasy creature and describe it."
    a = await backend.complete(req(prompt, temperature=1.0, max_tokens=32, sample_index=0))
    a_again = await backend.complete(req(prompt, temperature=1.0, max_tokens=32, sample_index=0))
    b = await backend.complete(req(prompt, temperature=1.0, max_tokens=32, sample_index=1))
    assert a.text == a_again.text
    assert a.text != b.text


@pytest.mark.slow
async def test_two_concurrent_calls_are_serialised_and_both_succeed(backend: LlamaCppBackend) -> None:
    one, two = await asyncio.gather(backend.complete(req("Say hello.")), backend.complete(req("Count to five.")))
    assert one.text.strip() and two.text.strip()


@pytest.mark.slow
async def test_prompt_over_the_context_is_a_context_window_error(bundled_model: Path) -> None:
    b = LlamaCppBackend(bundled_model, n_ctx=256)
    try:
        with pytest.raises(ContextWindowError, match="context window"):
            await b.complete(req("word " * 400))
    finally:
        await b.aclose()


@pytest.mark.slow
async def test_local_spec_through_the_pool_and_cache(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.db")
    try:
        async with ModelPool(cache=cache) as pool:
            llm = pool.llm(parse_model_spec("local"))
            first = await llm.chat([user("Reply with one word: yes or no?")], phase="t", max_tokens=8)
            second = await llm.chat([user("Reply with one word: yes or no?")], phase="t", max_tokens=8)
    finally:
        cache.close()
    assert first.text.strip() and not first.cached
    assert second.cached and second.text == first.text


@pytest.mark.slow
async def test_tokens_per_second(backend: LlamaCppBackend, capsys: pytest.CaptureFixture[str]) -> None:
    await backend.complete(req("warm up", max_tokens=1))  # loads the model outside the measurement
    completion = await backend.complete(
        req("Write a long, detailed story about a lighthouse keeper.", temperature=0.8, seed=3, max_tokens=128)
    )
    tokens = completion.usage.completion_tokens
    assert tokens > 32
    with capsys.disabled():
        print(
            f"\n[llamacpp] {tokens} tokens in {completion.latency_s:.2f}s = "
            f"{tokens / completion.latency_s:.1f} tokens/s (incl. {completion.usage.prompt_tokens}-token prompt)"
        )


@pytest.mark.slow
async def test_pickles_as_configuration(backend: LlamaCppBackend) -> None:
    await backend.complete(req("load the model first", max_tokens=2))
    copy = pickle.loads(pickle.dumps(backend))
    assert copy.identity == backend.identity and (copy.n_ctx, copy.seed) == (1024, 0)
    try:
        assert (await copy.complete(req("hello", max_tokens=4))).usage.completion_tokens > 0
    finally:
        await copy.aclose()
