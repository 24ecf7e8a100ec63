"""`LLM`: what every phase talks to. One model on a shared `Endpoint`, behind the response cache
and the usage meter, with an optional hard budget. Identical requests in flight at the same time
are made once (single flight), so a re-evaluated incumbent or a duplicated prompt costs one call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from autoevol.errors import BackendError
from autoevol.llm.cache import ResponseCache, request_key
from autoevol.llm.endpoint import Endpoint
from autoevol.llm.usage import Budget, UsageMeter
from autoevol.types import Completion, CompletionRequest, Message


class LLM:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        model: str,
        label: str,
        cache: ResponseCache | None,
        meter: UsageMeter,
        budget: Budget | None = None,
    ) -> None:
        self.endpoint, self.model, self.label = endpoint, model, label
        self.cache, self.meter, self.budget = cache, meter, budget
        self._in_flight: dict[str, asyncio.Future[Completion]] = {}

    def request(self, messages: Sequence[Message], **params: object) -> CompletionRequest:
        return CompletionRequest(messages=tuple(messages), model=self.model, **params)  # type: ignore[arg-type]

    async def chat(self, messages: Sequence[Message], *, phase: str, **params: object) -> Completion:
        return await self.complete(self.request(messages, **params), phase=phase)

    async def complete(self, request: CompletionRequest, *, phase: str) -> Completion:
        key = request_key(self.endpoint.identity, request)
        while (pending := self._in_flight.get(key)) is not None:
            try:
                completion = await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # we were cancelled ourselves
                continue  # the first caller was cancelled, not us: make the request ourselves
            self.meter.record(self.label, phase, _as_cached(completion))
            return _as_cached(completion)
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            completion = await self._fetch(key, request, phase)
            future.set_result(completion)
            return completion
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._in_flight[key]

    async def _fetch(self, key: str, request: CompletionRequest, phase: str) -> Completion:
        cached = self.cache.get(key) if self.cache else None
        if cached is not None:
            self.meter.record(self.label, phase, cached)
            return cached
        try:
            if self.budget:
                with self.budget.spend(self.meter):
                    completion = await self.endpoint.complete(request)
            else:
                completion = await self.endpoint.complete(request)
        except BackendError:
            self.meter.record_error(self.label, phase)
            raise
        if self.cache:
            self.cache.put(key, self.endpoint.identity, completion)
        self.meter.record(self.label, phase, completion)
        return completion


def _as_cached(completion: Completion) -> Completion:
    return replace(completion, cached=True)
