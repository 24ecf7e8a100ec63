"""Checking a model before a run: which model a bare base URL means, and one timed question.

Neither touches a run directory or the response cache.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from autoevol.errors import BackendError, ConfigError, DeadlineExceeded
from autoevol.llm.pool import ModelPool
from autoevol.llm.spec import ModelSpec
from autoevol.types import Completion, user


def served_model_spec(base_url: str, api_key_env: str | None = None) -> str:
    """The model spec meant by a base URL alone: `openai:NAME` for the server's only model.

    A base URL means an OpenAI-compatible server, never the embedded model; a server with several
    models (or none) is a ConfigError naming them, since guessing would silently pick one.
    """
    from autoevol.llm.spec import list_served_models, read_api_key

    names = list_served_models(base_url, read_api_key(api_key_env or "OPENAI_API_KEY"))
    if len(names) == 1:
        return f"openai:{names[0]}"
    listed = ", ".join(names) if names else "none"
    raise ConfigError(
        f"{base_url} serves {len(names)} models ({listed}); choose one with --model openai:NAME"
    )


@dataclass(frozen=True, slots=True)
class PingResult:
    label: str
    completion: Completion
    load_s: float | None  # the embedded model's load, apart from generation; None for a server

    @property
    def text(self) -> str:
        return self.completion.text

    def describe(self) -> str:
        """'-- LABEL: load 8.1s, generation 0.30s, prompt P tokens, completion C tokens (N tokens/s)'."""
        reply = self.completion
        load = f"load {self.load_s:.2f}s, generation " if self.load_s is not None else ""
        speed = reply.usage.completion_tokens / max(reply.latency_s, 1e-9)
        return (f"-- {self.label}: {load}{reply.latency_s:.2f}s, prompt {reply.usage.prompt_tokens} tokens, "
                f"completion {reply.usage.completion_tokens} tokens ({speed:.1f} tokens/s)"
                f"{' [cached]' if reply.cached else ''}")


async def ping(spec: ModelSpec, prompt: str, *, max_tokens: int = 64) -> PingResult:
    """One uncached completion, to check a model answers, within the spec's request timeout overall.

    The spec's retries still apply (a 429 is worth waiting for), but a ping is a question with a
    deadline: a closed port must not take the whole retry ramp (about 23 s) to say so. It goes to
    the endpoint directly (nothing to cache or budget), so the deadline cancels the retries too.
    """
    async with ModelPool(cache=None) as pool:
        llm = pool.llm(spec)
        last: list[BackendError] = []

        def remember(error: BackendError) -> None:
            last[:] = [error]
            pool.meter.record_retry(error)

        llm.endpoint.on_retry = remember
        try:
            async with asyncio.timeout(spec.request_timeout):
                reply = await llm.endpoint.complete(llm.request([user(prompt)], max_tokens=max_tokens))
        except TimeoutError:
            because = f" (last error: {last[0]})" if last else ""
            raise DeadlineExceeded(
                f"no answer from {llm.endpoint.where} within the {spec.request_timeout:g}s request timeout{because}"
            ) from None
        return PingResult(spec.label, reply, getattr(llm.endpoint.backend, "load_s", None))
