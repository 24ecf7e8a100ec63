"""Hosted endpoints' quirks over real HTTP: the fake server playing an OpenAI reasoning model, the
real OpenAIBackend behind the real pool. A refused field is adapted once, remembered per endpoint,
never counted as a failure, and said once; reasoning tokens reach the meter; spec files can declare
the quirks and add request fields."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoevol.errors import BadRequestError
from autoevol.llm.cache import ResponseCache
from autoevol.llm.pool import ModelPool
from autoevol.llm.spec import ModelSpec, parse_model_spec
from autoevol.types import user
from tests.support.fake_openai_server import FakeOpenAIServer, Fault

LOGGER = "autoevol.llm.openai_http"


@pytest.fixture
def reasoning_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        server.reasoning_model = True
        yield server


def spec_for(server: FakeOpenAIServer, **fields: object) -> ModelSpec:
    # max_retries=0: an adaptation must not lean on the Endpoint's retries.
    return ModelSpec(kind="openai", model="o-fake", base_url=server.url, api_key_env="AUTOEVOL_TEST_UNSET_KEY",
                     max_retries=0, **fields)  # type: ignore[arg-type]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


def test_refusals_are_learned_once_per_endpoint(reasoning_server: FakeOpenAIServer,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def go() -> ModelPool:
        async with ModelPool(cache=None) as pool:
            llm = pool.llm(spec_for(reasoning_server))
            first = await llm.chat([user("one two three")], phase="evolve", temperature=0.6, max_tokens=2)
            # Refused for max_tokens, then for temperature, then answered: one call for autoevol.
            assert reasoning_server.requests == 3
            assert first.text == "one two" and first.usage.reasoning_tokens == 7
            await llm.chat([user("four")], phase="evolve", temperature=0.0)
            await llm.chat([user("five")], phase="evolve", temperature=0.6)
            assert reasoning_server.requests == 5  # adapted straight away from then on
            return pool

    pool = asyncio.run(go())
    sent = reasoning_server.bodies
    assert "max_tokens" in sent[0] and sent[0]["temperature"] == 0.6
    assert "max_completion_tokens" in sent[1] and sent[1]["temperature"] == 0.6
    for body in sent[2:]:
        assert "max_tokens" not in body and "temperature" not in body and body["max_completion_tokens"] >= 1
    total = pool.meter.total()
    assert (total.calls, total.errors, total.reasoning_tokens) == (3, 0, 21)
    assert not pool.meter.retries  # not a failure, not a retry
    assert pool.meter.snapshot()[0]["reasoning_tokens"] == 21
    (warning,) = warnings_of(caplog)
    assert "temperature 0.6" in warning and "T = 1" in warning and "\n" not in warning


def test_concurrent_first_requests_adapt_together(reasoning_server: FakeOpenAIServer,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> ModelPool:
        async with ModelPool(cache=None) as pool:
            llm = pool.llm(spec_for(reasoning_server, concurrency=8))
            replies = await asyncio.gather(*(llm.chat([user(f"q{i}")], phase="evolve", temperature=0.6)
                                             for i in range(8)))
            assert [r.text for r in replies] == [f"q{i}" for i in range(8)]
            return pool

    pool = asyncio.run(go())
    assert pool.meter.total().errors == 0
    assert len(warnings_of(caplog)) == 1


def test_declared_quirks_skip_the_refusal(reasoning_server: FakeOpenAIServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    spec = spec_for(reasoning_server, max_tokens_field="max_completion_tokens", fixed_temperature=1.0)

    async def go() -> None:
        async with ModelPool(cache=None) as pool:
            llm = pool.llm(spec)
            await llm.chat([user("a")], phase="evolve", temperature=0.0)
            await llm.chat([user("b")], phase="evolve", temperature=1.0)

    asyncio.run(go())
    assert reasoning_server.requests == 2
    assert all(b["temperature"] == 1.0 and "max_completion_tokens" in b for b in reasoning_server.bodies)
    (warning,) = warnings_of(caplog)
    assert "temperature 0" in warning
    assert spec.semantic()["fixed_temperature"] == 1.0


def test_adapted_answers_are_cached_under_the_request_asked(reasoning_server: FakeOpenAIServer,
                                                            tmp_path: Path) -> None:
    async def once() -> str:
        async with ModelPool(cache=ResponseCache(tmp_path / "cache.db")) as pool:
            reply = await pool.llm(spec_for(reasoning_server)).chat([user("same")], phase="evolve", temperature=0.6)
            return reply.text

    assert asyncio.run(once()) == "same"
    sent = reasoning_server.requests
    assert asyncio.run(once()) == "same"  # a resumed run: served by the cache, nothing sent
    assert reasoning_server.requests == sent


def test_a_refusal_that_cannot_be_adapted_is_still_an_error(reasoning_server: FakeOpenAIServer) -> None:
    reasoning_server.inject(Fault.bad_request("Unsupported parameter: 'logit_bias' is not supported"), times=None)

    async def go() -> None:
        async with ModelPool(cache=None) as pool:
            await pool.llm(spec_for(reasoning_server)).chat([user("x")], phase="evolve")

    with pytest.raises(BadRequestError, match="logit_bias"):
        asyncio.run(go())
    assert reasoning_server.requests == 1


def test_spec_file_extra_body_is_sent_and_keys_the_cache(tmp_path: Path) -> None:
    with FakeOpenAIServer(reply=lambda _body: "Equal") as server:
        path = tmp_path / "judge.toml"
        path.write_text(f'kind = "openai"\nmodel = "qwen"\nbase_url = "{server.url}"\n'
                        'extra_body = {guided_choice = ["Equal", "Not Equal"]}\n', encoding="utf-8")
        spec = parse_model_spec(str(path))
        plain = spec.model_copy(update={"extra_body": {}})

        async def go() -> tuple[str, str]:
            async with ModelPool(cache=None) as pool:
                guided, free = pool.llm(spec), pool.llm(plain)
                assert (await guided.chat([user("same?")], phase="evolve")).text == "Equal"
                await free.chat([user("same?")], phase="evolve")
                return guided.endpoint.identity, free.endpoint.identity

        guided_id, plain_id = asyncio.run(go())
    assert server.bodies[0]["guided_choice"] == ["Equal", "Not Equal"]
    assert "guided_choice" not in server.bodies[1]
    assert guided_id != plain_id and plain_id == "openai:" + str(spec.base_url)  # old caches still match
    assert spec.semantic()["extra_body"] == {"guided_choice": ["Equal", "Not Equal"]}
    assert "extra_body" not in plain.semantic()


def test_extra_body_cannot_override_what_autoevol_sends() -> None:
    with pytest.raises(ValueError, match="temperature"):
        ModelSpec(kind="openai", model="m", extra_body={"temperature": 0.3})
