"""`LLM`: what every phase talks to. One model on a shared `Endpoint`, behind the response cache
and the usage meter, with an optional hard budget. Identical requests in flight at the same time
are made once (single flight), so a re-evaluated incumbent or a duplicated prompt costs one call.

A request that has been sent is paid for even if its caller is cancelled (a budget stop cancels the
run's other work): it runs to its end, its answer is cached and counted, and `drain()` waits for it.
A request still waiting for a concurrency slot is simply dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from autoevol.errors import BackendError, BudgetExhausted
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
        self._detached: set[asyncio.Task[Completion]] = set()

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
        ticket = _Ticket(self.budget, self.meter)
        task = asyncio.create_task(self._send(key, request, phase, ticket))
        detached = False
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if ticket.sent:
                # Sent means paid: let it finish so the answer is cached and counted (`drain` waits for it).
                detached = True
                self._detached.add(task)
                task.add_done_callback(_forget(self._detached, ticket))
            else:
                task.cancel()  # still waiting for a slot: nothing was spent
            raise
        except BudgetExhausted:
            if self.budget is not None:
                # Stop only once the calls already sent are answered: their work units can then finish.
                await self.budget.settled()
            raise
        finally:
            if not detached:
                ticket.settle()

    async def _send(self, key: str, request: CompletionRequest, phase: str, ticket: _Ticket) -> Completion:
        try:
            completion = await self.endpoint.complete(request, on_send=ticket.admit)
        except BaseException as error:
            if isinstance(error, BackendError):
                self.meter.record_error(self.label, phase)
            ticket.release()
            raise
        if self.cache:
            self.cache.put(key, self.endpoint.identity, completion)
        # Recorded as paid, then out of the in-flight count: the budget sees it exactly once throughout.
        self.meter.record(self.label, phase, completion)
        ticket.release()
        return completion

    async def drain(self) -> None:
        """Wait for requests sent by callers that were cancelled since (a budget stop, an error elsewhere)."""
        while self._detached:
            await asyncio.gather(*self._detached, return_exceptions=True)


class _Ticket:
    """One logical call against the budget: admitted when its first attempt is sent (retries are the
    same call), released once recorded or failed, settled once its caller has the outcome."""

    def __init__(self, budget: Budget | None, meter: UsageMeter) -> None:
        self.budget, self.meter = budget, meter
        self.sent = False
        self._in_flight = self._unsettled = False

    def admit(self) -> None:
        if self.sent:
            return
        if self.budget is not None:
            self.budget.admit(self.meter)
            self._in_flight = self._unsettled = True
        self.sent = True

    def release(self) -> None:
        if self._in_flight and self.budget is not None:
            self.budget.release()
        self._in_flight = False

    def settle(self) -> None:
        if self._unsettled and self.budget is not None:
            self.budget.settle()
        self._unsettled = False


def _forget(tasks: set[asyncio.Task[Completion]], ticket: _Ticket) -> Callable[[asyncio.Task[Completion]], None]:
    def done(task: asyncio.Task[Completion]) -> None:
        tasks.discard(task)
        ticket.settle()
        if not task.cancelled():
            task.exception()  # retrieved: its caller is gone, and a failure was recorded in the meter
    return done


def _as_cached(completion: Completion) -> Completion:
    return replace(completion, cached=True)
