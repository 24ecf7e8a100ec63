"""Test doubles: a queue-driven fake, an echo backend and a scripted function backend."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterable

from autoevol.types import Completion, CompletionRequest, Usage


def _usage(request: CompletionRequest, text: str) -> Usage:
    prompt = sum(len(m.content.split()) for m in request.messages)
    return Usage(prompt_tokens=prompt, completion_tokens=len(text.split()))


class FakeBackend:
    """Answers from a queue of texts or exceptions; records every request in `history`."""

    def __init__(self, replies: Iterable[str | BaseException] = (), *, identity: str = "fake") -> None:
        self._replies: deque[str | BaseException] = deque(replies)
        self._identity = identity
        self.history: list[CompletionRequest] = []

    @property
    def identity(self) -> str:
        return self._identity

    def enqueue(self, *replies: str | BaseException) -> None:
        self._replies.extend(replies)

    async def complete(self, request: CompletionRequest) -> Completion:
        self.history.append(request)
        if not self._replies:
            raise AssertionError(f"FakeBackend has no reply queued for request #{len(self.history)}")
        reply = self._replies.popleft()
        if isinstance(reply, BaseException):
            raise reply
        return Completion(text=reply, usage=_usage(request, reply), model=request.model)

    async def aclose(self) -> None:
        return None


class EchoBackend:
    """Returns the request as JSON, to assert exactly what a model would have seen."""

    identity = "echo"

    async def complete(self, request: CompletionRequest) -> Completion:
        text = json.dumps(request.canonical(), ensure_ascii=False)
        return Completion(text=text, usage=_usage(request, text), model=request.model)

    async def aclose(self) -> None:
        return None


class ScriptedBackend:
    """Answers with `fn(request)`; optional delay models server latency. Deterministic by design."""

    def __init__(
        self,
        fn: Callable[[CompletionRequest], str],
        *,
        identity: str = "scripted",
        delay_s: float = 0.0,
    ) -> None:
        self._fn, self._identity, self._delay = fn, identity, delay_s
        self.calls = 0
        self.in_flight = 0
        self.peak_in_flight = 0

    @property
    def identity(self) -> str:
        return self._identity

    async def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self._delay:
                await asyncio.sleep(self._delay)
            text = self._fn(request)
        finally:
            self.in_flight -= 1
        return Completion(text=text, usage=_usage(request, text), model=request.model)

    async def aclose(self) -> None:
        return None
