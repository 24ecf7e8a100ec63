"""One run's lifetime, the same for every command: the run directory (with its lock and
invocations), one model pool, the progress view and the engine the units run on, opened in that
order and closed the same way on every exit, with the run's status (finished, stopped, failed,
interrupted) recorded whatever happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from autoevol.config import EvolveSettings, ExecSettings, OptimizeSettings
from autoevol.data.records import OutputRow
from autoevol.data.source import DataSource
from autoevol.errors import AutoevolError, BudgetExhausted, ConfigError, TooManyErrors
from autoevol.evolution.pipeline import RoundStats
from autoevol.executor import Executor, LocalExecutor
from autoevol.home import cache_path
from autoevol.llm.base import Backend
from autoevol.llm.cache import ResponseCache
from autoevol.llm.client import LLM
from autoevol.llm.pool import ModelPool
from autoevol.llm.spec import ModelSpec, Roles
from autoevol.llm.usage import Budget, UsageMeter
from autoevol.methods.method import EvolvingMethod
from autoevol.progress import ProgressView
from autoevol.store.invocations import Invocations
from autoevol.store.manifest import Manifest
from autoevol.store.run import RunDir

T = TypeVar("T")


def open_pool(exec_settings: ExecSettings, *, use_cache: bool = True, meter: UsageMeter | None = None) -> ModelPool:
    cache = ResponseCache(cache_path()) if use_cache else None
    budget = Budget(max_calls=exec_settings.max_calls, max_tokens=exec_settings.max_tokens)
    return ModelPool(cache=cache, meter=meter, budget=budget)


def _workers(specs: Mapping[str, ModelSpec], exec_settings: ExecSettings) -> int:
    # Enough units in progress to keep every endpoint's budget busy; more would only hold memory.
    return exec_settings.workers or max(2, 2 * max(spec.concurrency for spec in specs.values()))


def executor_for(s: Session, exec_settings: ExecSettings) -> Executor:
    """The engine the units run on (checked by `check_engine` before the run started)."""
    workers = _workers(s.specs, exec_settings)
    if exec_settings.engine == "local":
        return LocalExecutor(workers)
    from autoevol.engines.ray import RayExecutor

    return RayExecutor(s.specs, address=exec_settings.ray_address, workers=exec_settings.ray_workers,
                       in_flight=workers, meter=s.pool.meter, use_cache=s.pool.cache is not None,
                       max_calls=exec_settings.max_calls, max_tokens=exec_settings.max_tokens)


def check_engine(exec_settings: ExecSettings, backends: Mapping[str, Backend] | None) -> None:
    """Engine problems are usage errors: said before the run directory is opened or written."""
    if exec_settings.engine == "local":
        if exec_settings.ray_address is not None:
            raise ConfigError("--ray-address applies only with --engine ray")
        return
    if backends:
        raise ConfigError("--engine ray builds models from their specs; injected backends run only locally")
    from autoevol.engines.ray import import_ray

    import_ray()


@dataclass(slots=True)
class Session:
    """One run directory + one model pool + one progress view, torn down the same way every time."""

    run: RunDir
    pool: ModelPool
    view: ProgressView
    specs: dict[str, ModelSpec]
    backends: Mapping[str, Backend]
    invocations: Invocations

    def llm(self, role: str) -> LLM:
        fallback = self.backends.get("evol")
        return self.pool.llm(self.specs[role], backend=self.backends.get(role, fallback))


@dataclass(slots=True)
class RowProgress:
    """Feeds the progress view on every row and the event log every few seconds."""

    s: Session
    every_s: float = 5.0
    done: int = 0
    total: int = 0
    last: float = field(default_factory=time.monotonic)
    # (round, started at, usage totals then): summary.json's per-round usage and wall time
    marks: list[tuple[int, float, Any]] = field(default_factory=list)

    def round(self, round_: int, total: int, kept: RoundStats) -> None:
        # Rows a resumed run keeps are done from the start (with their outcomes), not re-counted.
        self.done, self.total = kept.inputs, total
        self.marks.append((round_, time.monotonic(), self.s.pool.meter.total()))
        self.s.view.start(f"evolve round {round_}", total, done=kept.inputs, kept=kept.status)

    def per_round(self) -> dict[int, dict[str, Any]]:
        ends = [*self.marks[1:], (0, time.monotonic(), self.s.pool.meter.total())]
        out = {}
        for (round_, start, before), (_, end, after) in zip(self.marks, ends, strict=True):
            usage = {name: getattr(after, name) - getattr(before, name)
                     for name in ("calls", "cached_calls", "prompt_tokens", "completion_tokens", "errors")}
            out[round_] = {"seconds": round(end - start, 2), "usage": usage}
        return out

    def row(self, row: OutputRow) -> None:
        self.done += 1
        self.s.view.advance(row.status, row.failure_category)
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            totals = self.s.pool.meter.total()
            self.s.run.events.emit(
                "progress", round=row.round, done=self.done, total=self.total, failures=dict(self.s.view.failures),
                calls=totals.calls, cached_calls=totals.cached_calls,
                tokens=totals.prompt_tokens + totals.completion_tokens,
            )


async def run_session(
    manifest: Manifest, out: Path, exec_settings: ExecSettings, backends: Mapping[str, Backend] | None,
    body: Callable[[Session], Awaitable[T]],
) -> T:
    """Open the run directory, the model pool and the progress view, run `body`, and record how it
    ended (finished, stopped, failed or interrupted) on every way out."""
    check_engine(exec_settings, backends)  # cheap, and the run directory must not be touched before it
    run = RunDir.open(out, manifest, overwrite=exec_settings.overwrite)
    specs = manifest.models.resolved()
    try:
        async with open_pool(exec_settings) as pool:
            invocations = Invocations(run, manifest.command, pool.meter)
            invocations.save()  # listed even if killed before the first refresh (when the run has state)
            saver = asyncio.create_task(invocations.keep_saving())
            try:
                return await _session_body(run, pool, specs, exec_settings, backends, invocations, body)
            finally:
                saver.cancel()
                # A status still "running" here means an exception we do not handle (Ctrl-C...).
                status = run.manifest.status
                invocations.save("interrupted" if status == "running" else status)
    finally:
        run.close()


def manifest_for(
    command: str, source: DataSource, roles: Roles, exec_settings: ExecSettings, evolve: EvolveSettings, *,
    optimize: OptimizeSettings | None = None, methods: tuple[EvolvingMethod, ...] = (),
    backends: Mapping[str, Backend] | None = None,
) -> Manifest:
    """The manifest of a run of `command` starting now (the data file must exist: it is fingerprinted)."""
    if not source.path.exists():
        raise ConfigError(f"data file not found: {source.path}")
    check_engine(exec_settings, backends)  # a usage error is said before the data is hashed
    return Manifest.new(command, source, roles, evolve, optimize=optimize, methods=methods,
                        exports=tuple(exec_settings.export))


async def _session_body(
    run: RunDir, pool: ModelPool, specs: dict[str, ModelSpec], exec_settings: ExecSettings,
    backends: Mapping[str, Backend] | None, invocations: Invocations, body: Callable[[Session], Awaitable[T]],
) -> T:
    with ProgressView(pool.meter, quiet=exec_settings.quiet, interval_s=exec_settings.progress_interval_s) as view:
        try:
            return await body(Session(run, pool, view, specs, backends or {}, invocations))
        except (BudgetExhausted, TooManyErrors) as error:
            await pool.drain()  # calls already sent finish and are counted before the stop is reported
            run.set_status("stopped", str(error))
            run.events.emit("run_stopped", reason=str(error), usage=pool.meter.snapshot())
            if isinstance(error, BudgetExhausted):
                raise BudgetExhausted(
                    f"{error}; what is done is in {run.output}, and `autoevol resume {run.path}` continues "
                    "(with --max-calls N for another chunk)"
                ) from None
            raise
        except AutoevolError as error:
            # Finished units stay in state.db: the same command resumes once the cause is fixed.
            run.set_status("failed", str(error))
            run.events.emit("run_failed", reason=str(error), usage=pool.meter.snapshot())
            raise
