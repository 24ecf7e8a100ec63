"""`--engine ray`: the same work units computed by Ray actors, on one machine or a cluster.

The driver (the `autoevol` process) keeps everything a run owns: the run directory, state.db,
events, outputs, progress and the usage totals. Workers only compute. Each is an async Ray actor
that builds its own model clients from the run's `ModelSpec`s (plain pydantic data, so they pickle)
and rebuilds the phase's work function from its `Recipe`; items go out in small batches and rows
come back to the driver's `on_result`, which stores them exactly as the local engine does. So the
rows, their lineage, the run directory and resume are the local engine's: a kill loses at most the
batches in flight, and a rerun skips every unit the driver stored.

Budgets are divided, never multiplied: each of W workers gets `concurrency // W` requests in flight
per endpoint (at least 1), and `--max-calls` / `--max-tokens` split the same way. Each worker uses
the response cache of the machine it runs on (`AUTOEVOL_HOME` there).

Ray is optional (`pip install 'autoevol[ray]'`) and imported only when this engine is chosen.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from itertools import islice
from typing import Any, TypeVar

from autoevol.errors import AutoevolError, ConfigError
from autoevol.executor import Recipe, Work, first_cause
from autoevol.llm.spec import ModelSpec
from autoevol.llm.usage import Counter, UsageMeter

T = TypeVar("T")
R = TypeVar("R")

MISSING = "--engine ray needs Ray: pip install 'autoevol[ray]'"
#: Items per actor call: enough to amortise Ray's per-call cost (about a millisecond), few enough
#: that a kill loses little and the batch's slowest request holds up only a few rows.
BATCH = 8
_USAGE_FIELDS = ("calls", "cached_calls", "prompt_tokens", "completion_tokens", "cached_tokens", "errors",
                 "reasoning_tokens")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(MISSING) from None
    return ray


def share(spec: ModelSpec, workers: int) -> ModelSpec:
    """One worker's part of a role's per-endpoint concurrency."""
    return spec.model_copy(update={"concurrency": max(1, spec.concurrency // workers)})


def split_limit(limit: int | None, workers: int) -> int | None:
    return None if limit is None else max(1, math.ceil(limit / workers))


class _Worker:
    """The body of one Ray actor: its own model pool, cache and meter; the driver adds up its usage."""

    def __init__(self, specs: Mapping[str, dict[str, Any]], use_cache: bool, max_calls: int | None,
                 max_tokens: int | None) -> None:
        self._specs = {role: ModelSpec(**spec) for role, spec in specs.items()}
        self._use_cache, self._limits = use_cache, (max_calls, max_tokens)
        self._pool: Any = None
        self._clients: dict[str, Any] = {}
        self._fns: dict[int, Callable[[Any], Awaitable[Any]]] = {}
        self._reported: dict[tuple[str, str], dict[str, int]] = {}

    def _client(self, role: str) -> Any:
        # Built on first use inside the actor's event loop; roles on one server share an endpoint.
        if self._pool is None:
            from autoevol.home import cache_path
            from autoevol.llm.cache import ResponseCache
            from autoevol.llm.pool import ModelPool
            from autoevol.llm.usage import Budget

            cache = ResponseCache(cache_path()) if self._use_cache else None
            self._pool = ModelPool(cache=cache, budget=Budget(max_calls=self._limits[0], max_tokens=self._limits[1]))
        if role not in self._clients:
            self._clients[role] = self._pool.llm(self._specs.get(role) or self._specs["evol"])
        return self._clients[role]

    async def prepare(self, key: int, recipe: Recipe[Any, Any]) -> None:
        # Keyed: the optimizer scores several methods at once, each run with its own recipe.
        self._fns[key] = recipe.build(self._client)

    async def compute(self, key: int, items: list[Any]) -> tuple[list[Any], list[dict[str, Any]], Exception | None]:
        """Every item's result, this worker's new usage, and the first systemic error if any. An
        error is returned, not raised, so the items of its batch that did finish (and the calls
        paid for them) still reach the driver, as they would with the local engine."""
        outcomes = await asyncio.gather(*(self._fns[key](item) for item in items), return_exceptions=True)
        error = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if error is not None and not isinstance(error, Exception):
            raise error  # (CancelledError, KeyboardInterrupt: not a result of the items)
        results = [None if isinstance(o, BaseException) else o for o in outcomes]
        return results, self._usage_since_last(), error

    async def forget(self, key: int) -> None:
        self._fns.pop(key, None)

    def _usage_since_last(self) -> list[dict[str, Any]]:
        """What this worker's meter gained since it last reported (one event loop: no race), so
        the driver can add reports in any order."""
        if self._pool is None:
            return []
        out = []
        for entry in self._pool.meter.snapshot():
            key = (str(entry["model"]), str(entry["phase"]))
            before = self._reported.get(key, {})
            delta = {name: int(entry[name]) - before.get(name, 0) for name in _USAGE_FIELDS}
            self._reported[key] = {name: int(entry[name]) for name in _USAGE_FIELDS}
            if any(delta.values()):
                out.append({"model": key[0], "phase": key[1], **delta})
        return out

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


class RayExecutor:
    """An `Executor` whose items run on Ray actors; `run` accepts only a `Work` (it needs the recipe)."""

    def __init__(self, specs: Mapping[str, ModelSpec], *, address: str | None = None, workers: int | None = None,
                 in_flight: int = 128, meter: UsageMeter | None = None, use_cache: bool = True,
                 max_calls: int | None = None, max_tokens: int | None = None) -> None:
        self._ray = import_ray()
        self._started = False
        if not self._ray.is_initialized():
            # address None: a private local instance (bound to this machine, no dashboard);
            # "auto" or "ray://host:10001": an existing cluster.
            # Ray's start-up notices would break the CLI's one-line-per-problem output; errors still show.
            self._ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                           **({"_node_ip_address": "127.0.0.1"} if address is None else {}))
            self._started = True
        self.workers = workers or max(1, int(self._ray.cluster_resources().get("CPU", 1)))
        self._in_flight, self._meter = max(in_flight, self.workers), meter
        shared = {role: share(spec, self.workers).model_dump(mode="json") for role, spec in specs.items()}
        actor = self._ray.remote(num_cpus=0)(_Worker)
        limits = split_limit(max_calls, self.workers), split_limit(max_tokens, self.workers)
        self._actors = [actor.remote(shared, use_cache, *limits) for _ in range(self.workers)]
        self._runs = 0

    async def run(self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], on_result: Callable[[T, R], None]) -> None:
        if not isinstance(fn, Work):
            raise ConfigError("this phase cannot run on --engine ray (its work has no recipe)")
        source = iter(items)
        key = self._runs = self._runs + 1
        await self._call(*(a.prepare.remote(key, fn.recipe) for a in self._actors))
        # Feeders per actor so that about `in_flight` items are out at once, BATCH per call.
        feeders = max(1, self._in_flight // (self.workers * BATCH))

        async def feed(index: int) -> None:
            actor = self._actors[index]
            # islice never awaits: feeders share one iterator without ever taking the same item.
            while batch := list(islice(source, BATCH)):
                results, usage, error = await self._call(actor.compute.remote(key, batch))
                self._add_usage(usage)
                for item, result in zip(batch, results, strict=True):
                    if result is not None:
                        on_result(item, result)
                if error is not None:
                    raise error

        try:
            async with asyncio.TaskGroup() as group:
                for index in range(self.workers):
                    for _ in range(feeders):
                        group.create_task(feed(index))
        except BaseExceptionGroup as group_error:
            raise first_cause(group_error) from None
        finally:
            for actor in self._actors:
                actor.forget.remote(key)

    async def _call(self, *refs: Any) -> Any:
        """Await object refs; a worker's own exception comes back as itself (BudgetExhausted stays
        BudgetExhausted, so the driver stops and reports as it would locally)."""
        exceptions = self._ray.exceptions
        try:
            results = await asyncio.gather(*refs)
        except exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            raise (cause if isinstance(cause, BaseException) else error) from None
        except exceptions.RayError as error:
            raise AutoevolError(
                f"a Ray worker was lost ({type(error).__name__}); finished units are kept: "
                "run the same command again to resume"
            ) from None
        return results[0] if len(refs) == 1 else results

    def _add_usage(self, deltas: list[dict[str, Any]]) -> None:
        """Add a worker's new usage to the driver's meter, so the progress view, summary.json and
        the events count remote calls as if they were local."""
        if self._meter is not None:
            for entry in deltas:
                add_counts(self._meter, (entry["model"], entry["phase"]), {n: entry[n] for n in _USAGE_FIELDS})

    async def aclose(self) -> None:
        try:
            await self._call(*(a.close.remote() for a in self._actors))
        finally:
            for actor in self._actors:
                self._ray.kill(actor)
            self._actors = []
            if self._started:
                self._ray.shutdown()


def add_counts(meter: UsageMeter, key: tuple[str, str], delta: Mapping[str, int]) -> None:
    """Counts computed elsewhere, added to a meter (the meter has no public way to take them)."""
    counter: Counter = meter._by_key[key]
    for name, value in delta.items():
        setattr(counter, name, getattr(counter, name) + value)
