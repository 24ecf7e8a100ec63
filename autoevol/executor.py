"""The one concurrency layer every phase shares.

`LocalExecutor.run` pulls work items lazily from an iterator (so ten million seeds never sit in
memory as tasks), keeps at most `workers` of them in progress and hands each result to a
callback as it finishes. Workers only bound memory and scheduling: the real limit on requests in
flight is each model endpoint's own budget (`autoevol.llm.endpoint`), which nested work shares.

An item function reports per-item problems as data in its result; whatever it raises is
systemic (bad credentials, a spent budget) and stops the whole run after in-flight items are
cancelled.

Another engine (`autoevol.engines.ray`) runs items in other processes or machines. A closure over
this process's model clients cannot travel there, so a phase hands the executor a `Work`: the
local function plus a `Recipe`, picklable configuration from which a worker rebuilds the same
function around its own model clients. The driver keeps the run directory: items go out, results
come back to `on_result` here, exactly as with the local engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
T_in = TypeVar("T_in", contravariant=True)
R_out = TypeVar("R_out", covariant=True)

#: A worker's model client for a role ("evol", "responder", "judge", "optimizer").
Clients = Callable[[str], Any]


class Recipe(Protocol[T_in, R_out]):
    """Picklable configuration that rebuilds a phase's work function inside a worker, around the
    worker's own model clients; the rebuilt function must compute what the local one computes."""

    def build(self, clients: Clients) -> Callable[[T_in], Awaitable[R_out]]: ...


@dataclass(frozen=True, slots=True)
class Work(Generic[T, R]):
    """A work function that can also run elsewhere: `local` here, `recipe` on a remote engine."""

    local: Callable[[T], Awaitable[R]]
    recipe: Recipe[T, R]

    async def __call__(self, item: T) -> R:
        return await self.local(item)


class Executor(Protocol):
    async def run(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], on_result: Callable[[T, R], None]
    ) -> None: ...

    async def aclose(self) -> None:
        """Release what the engine holds (actors, connections); the local engine holds nothing."""
        ...


class LocalExecutor:
    def __init__(self, workers: int = 64) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    async def run(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], on_result: Callable[[T, R], None]
    ) -> None:
        source = iter(items)

        async def worker() -> None:
            # One shared iterator: next() never awaits, so workers never receive the same item.
            for item in source:
                on_result(item, await fn(item))

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.workers):
                    group.create_task(worker())
        except BaseExceptionGroup as group_error:
            raise first_cause(group_error) from None

    async def aclose(self) -> None:
        return None


def first_cause(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return first_cause(first) if isinstance(first, BaseExceptionGroup) else first
