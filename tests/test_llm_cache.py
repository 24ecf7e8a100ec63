"""The response cache through `LLM`: hits, misses, key contents, secrets, concurrent writers, cost."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from autoevol.llm.cache import ResponseCache, request_key
from autoevol.llm.client import LLM
from autoevol.llm.endpoint import Endpoint
from autoevol.llm.fake import FakeBackend
from autoevol.llm.openai_http import OpenAIBackend
from autoevol.llm.pool import ModelPool
from autoevol.llm.spec import parse_model_spec
from autoevol.llm.usage import UsageMeter
from autoevol.types import Completion, CompletionRequest, Usage, user
from tests.support.fake_openai_server import FakeOpenAIServer

CANARY = "sk-canary-1234567890-do-not-store"


@pytest.fixture
def cache(tmp_path: Path) -> Any:
    c = ResponseCache(tmp_path / "cache.db")
    yield c
    c.close()


def make_llm(backend: Any, cache: ResponseCache | None, meter: UsageMeter | None = None) -> LLM:
    return LLM(Endpoint(backend), model="m", label="fake", cache=cache, meter=meter or UsageMeter())


async def test_second_identical_request_is_a_free_hit(cache: ResponseCache) -> None:
    backend = FakeBackend(["the first and only answer"])  # a second backend call would fail loudly
    meter = UsageMeter()
    llm = make_llm(backend, cache, meter)
    first = await llm.chat([user("what is 2+2?")], phase="evolve")
    second = await llm.chat([user("what is 2+2?")], phase="evaluate")
    assert len(backend.history) == 1
    assert (first.cached, second.cached) == (False, True)
    assert second.text == first.text and second.usage == first.usage
    paid, free = meter.total(phase="evolve"), meter.total(phase="evaluate")
    assert paid.paid_tokens == first.usage.total_tokens > 0 and paid.cached_calls == 0
    assert (free.calls, free.cached_calls, free.paid_calls, free.paid_tokens) == (1, 1, 0, 0)


async def test_sample_indexes_are_separate_entries(cache: ResponseCache) -> None:
    backend = FakeBackend(["sample zero", "sample one"])
    llm = make_llm(backend, cache)
    a = await llm.chat([user("q")], phase="p", temperature=0.8, sample_index=0)
    b = await llm.chat([user("q")], phase="p", temperature=0.8, sample_index=1)
    again = await llm.chat([user("q")], phase="p", temperature=0.8, sample_index=1)
    assert (a.text, b.text, again.text) == ("sample zero", "sample one", "sample one")
    assert again.cached and cache.stats().entries == 2


async def test_other_base_url_or_temperature_is_a_miss(cache: ResponseCache) -> None:
    here = FakeBackend(["A", "A at T=0.7"], identity="openai:http://127.0.0.1:8000/v1")
    there = FakeBackend(["B"], identity="openai:http://127.0.0.1:9000/v1")
    await make_llm(here, cache).chat([user("q")], phase="p")
    assert (await make_llm(there, cache).chat([user("q")], phase="p")).text == "B"
    assert (await make_llm(here, cache).chat([user("q")], phase="p", temperature=0.7)).text == "A at T=0.7"
    assert (await make_llm(here, cache).chat([user("q")], phase="p")).cached
    assert (len(here.history), len(there.history), cache.stats().entries) == (2, 1, 3)


def test_key_follows_base_url_and_ignores_the_api_key() -> None:
    request = CompletionRequest(messages=(user("q"),), model="m")
    a = request_key(OpenAIBackend("http://h:1/v1", "sk-one").identity, request)
    b = request_key(OpenAIBackend("http://h:1/v1/", "sk-two").identity, request)
    c = request_key(OpenAIBackend("http://h:2/v1", "sk-one").identity, request)
    assert a == b != c and a.startswith("v1:")


async def test_api_key_never_reaches_the_cache_files(
    tmp_path: Path, fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    cache = ResponseCache(tmp_path / "cache.db")
    spec = parse_model_spec("openai:fake-model", base_url=fake_server.url)
    async with ModelPool(cache=cache) as pool:
        llm = pool.llm(spec)
        for i in range(5):
            await llm.chat([user(f"prompt number {i}")], phase="evolve")
        assert (await llm.chat([user("prompt number 0")], phase="evolve")).cached
    assert fake_server.headers[0]["authorization"] == f"Bearer {CANARY}"  # the key was really in use

    def leaked() -> list[str]:
        files = [p for p in tmp_path.iterdir() if p.name.startswith("cache.db")]
        assert files
        return [p.name for p in files if CANARY.encode() in p.read_bytes()]

    assert leaked() == []  # with the -wal file still holding fresh pages
    cache.close()
    assert leaked() == []  # after the checkpoint folded them into the main file


def _write_entries(path: str, worker: int, count: int, barrier: Any) -> None:
    cache = ResponseCache(Path(path))
    barrier.wait()
    for i in range(count):
        completion = Completion(text=f"w{worker}-{i}", usage=Usage(3, 4), model="m")
        cache.put(f"v1:worker{worker}:{i}", "fake", completion)
    cache.close()


def _open_fresh(path: str, barrier: Any) -> None:
    barrier.wait()
    ResponseCache(Path(path)).close()


# fork starts workers in milliseconds (they open their own connections after the fork); spawn elsewhere.
_MP = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def _run(target: Any, args_list: list[tuple[Any, ...]]) -> list[int | None]:
    ctx = _MP
    procs = [ctx.Process(target=target, args=args) for args in args_list]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    return [proc.exitcode for proc in procs]


def test_two_processes_write_400_entries(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    ResponseCache(path).close()
    barrier = _MP.Barrier(2)
    assert _run(_write_entries, [(str(path), w, 200, barrier) for w in (0, 1)]) == [0, 0]
    cache = ResponseCache(path)
    try:
        assert cache.stats().entries == 400
        for worker in (0, 1):
            for i in range(200):
                hit = cache.get(f"v1:worker{worker}:{i}")
                assert hit is not None and hit.text == f"w{worker}-{i}"
    finally:
        cache.close()


def test_processes_opening_a_fresh_cache_at_once(tmp_path: Path) -> None:
    for round_ in range(10):
        path, barrier = tmp_path / f"fresh{round_}.db", _MP.Barrier(4)
        assert _run(_open_fresh, [(str(path), barrier)] * 4) == [0] * 4, f"round {round_}"


async def test_stats_counters(cache: ResponseCache) -> None:
    llm = make_llm(FakeBackend(["one two three", "four"]), cache)
    first = await llm.chat([user("a")], phase="p")
    await llm.chat([user("a")], phase="p")
    await llm.chat([user("a")], phase="p")
    await llm.chat([user("b")], phase="p")
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.misses) == (2, 2, 2)
    assert stats.tokens_saved == 2 * first.usage.total_tokens
    assert stats.prompt_tokens == 2 and stats.completion_tokens == 4
    assert stats.size_bytes > 0 and stats.path == str(cache.path)
    assert stats.to_dict()["entries"] == 2
    assert cache.clear() == 2
    assert (cache.stats().entries, cache.stats().hits) == (0, 0)


async def test_hit_cost(cache: ResponseCache, capsys: pytest.CaptureFixture[str]) -> None:
    backend = FakeBackend(["a cached answer of a few words"])
    llm = make_llm(backend, cache)
    request = llm.request([user("a prompt that is asked over and over again " * 20)])
    await llm.complete(request, phase="warm")
    n = 1000
    started = time.perf_counter()
    for _ in range(n):
        assert (await llm.complete(request, phase="hit")).cached
    per_hit_llm = (time.perf_counter() - started) / n
    key = request_key(llm.endpoint.identity, request)
    started = time.perf_counter()
    for _ in range(n):
        cache.get(key)
    per_get = (time.perf_counter() - started) / n
    assert len(backend.history) == 1
    with capsys.disabled():
        print(
            f"\n[cache] hit cost over {n} hits: LLM.complete {per_hit_llm * 1e6:.0f} us/hit, "
            f"ResponseCache.get {per_get * 1e6:.0f} us/hit"
        )
    assert per_hit_llm < 0.05  # generous bound: a hit must stay far below any real model call


async def test_waiter_survives_first_caller_cancellation(cache: ResponseCache) -> None:
    """Single flight must not pass one caller's cancellation on to identical requests."""
    import asyncio

    from autoevol.llm.fake import ScriptedBackend

    backend = ScriptedBackend(lambda request: "answer", delay_s=0.3)
    llm = make_llm(backend, cache)
    first = asyncio.create_task(llm.chat([user("same")], phase="p"))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(llm.chat([user("same")], phase="p"))
    await asyncio.sleep(0.05)
    first.cancel()
    completion = await second
    assert completion.text == "answer"
    assert first.cancelled()
