"""The Python API. Every CLI command is one call here; library users call the same functions."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from autoevol import __version__
from autoevol.config import EvolveSettings, ExecSettings, OptimizeSettings
from autoevol.data.source import DataSource
from autoevol.data.writers import atomic_write_text
from autoevol.errors import (
    AutoevolError,
    BudgetExhausted,
    ConfigError,
    DataError,
    ResumeMismatchError,
    TooManyErrors,
)
from autoevol.evolve.outputs import collector_paused, write_outputs
from autoevol.evolve.pipeline import RoundStats, evolve_dataset, stored_round_stats
from autoevol.evolve.steps import Models
from autoevol.executor import Executor, LocalExecutor
from autoevol.home import cache_path
from autoevol.llm.base import Backend
from autoevol.llm.cache import ResponseCache
from autoevol.llm.client import LLM
from autoevol.llm.pool import ModelPool
from autoevol.llm.spec import ModelSpec
from autoevol.llm.usage import Budget, UsageMeter
from autoevol.methods import load_method
from autoevol.methods.method import EvolvingMethod
from autoevol.optimize.job import OptimizeOutcome, build_optimizer, read_split, write_result
from autoevol.optimize.records import StepRecord
from autoevol.progress import ProgressView
from autoevol.store.invocations import Invocations
from autoevol.store.run import RunDir


@dataclass(frozen=True, slots=True)
class Roles:
    """Which model plays which part; unset roles fall back to the evol LLM."""

    evol: ModelSpec
    responder: ModelSpec | None = None
    optimizer: ModelSpec | None = None
    judge: ModelSpec | None = None

    def resolved(self) -> dict[str, ModelSpec]:
        fallback = self.evol
        return {"evol": fallback, "responder": self.responder or fallback, "optimizer": self.optimizer or fallback,
                "judge": self.judge or fallback}


@dataclass(slots=True)
class EvolveResult:
    run_dir: Path
    summary: dict[str, Any]
    usage: list[dict[str, object]] = field(default_factory=list)
    optimization: OptimizeOutcome | None = None


def open_pool(exec_settings: ExecSettings, *, use_cache: bool = True, meter: UsageMeter | None = None) -> ModelPool:
    cache = ResponseCache(cache_path()) if use_cache else None
    budget = Budget(max_calls=exec_settings.max_calls, max_tokens=exec_settings.max_tokens)
    return ModelPool(cache=cache, meter=meter, budget=budget)


def resolve_methods(method: str | None, settings: EvolveSettings) -> tuple[EvolvingMethod, ...]:
    """The method(s) of the evolve phase; None means the universal initial method."""
    if settings.operations and method is not None:
        # Silently evolving with six other methods than the one asked for would be worse than stopping.
        raise ConfigError(
            f"--method {method} conflicts with the preset's operations ({', '.join(settings.operations)}); "
            "use --preset default --method ... to evolve with one method"
        )
    names = settings.operations or (method or "initial",)
    return tuple(load_method(name) for name in names)


def _workers(specs: Mapping[str, ModelSpec], exec_settings: ExecSettings) -> int:
    # Enough units in progress to keep every endpoint's budget busy; more would only hold memory.
    return exec_settings.workers or max(2, 2 * max(spec.concurrency for spec in specs.values()))


def _executor(s: _Session, exec_settings: ExecSettings) -> Executor:
    """The engine the units run on (checked by `_check_engine` before the run started)."""
    workers = _workers(s.specs, exec_settings)
    if exec_settings.engine == "local":
        return LocalExecutor(workers)
    from autoevol.engines.ray import RayExecutor

    return RayExecutor(s.specs, address=exec_settings.ray_address, workers=exec_settings.ray_workers,
                       in_flight=workers, meter=s.pool.meter, use_cache=s.pool.cache is not None,
                       max_calls=exec_settings.max_calls, max_tokens=exec_settings.max_tokens)


def _check_engine(exec_settings: ExecSettings, backends: Mapping[str, Backend] | None) -> None:
    """Engine problems are usage errors: said before the run directory is opened or written."""
    if exec_settings.engine == "local":
        if exec_settings.ray_address is not None:
            raise ConfigError("--ray-address applies only with --engine ray")
        return
    if backends:
        raise ConfigError("--engine ray builds models from their specs; injected backends run only locally")
    from autoevol.engines.ray import import_ray

    import_ray()


async def _close(executor: Executor) -> None:
    close = getattr(executor, "aclose", None)
    if close is not None:
        await close()


@dataclass(slots=True)
class _Session:
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
class _ProgressEvents:
    """Feeds the progress view on every row and the event log every few seconds."""

    s: _Session
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

    def row(self, row: Any) -> None:
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


def _open_run(
    out: Path, command: str, config: dict[str, Any], operational: dict[str, Any], source: DataSource, *,
    overwrite: bool = False,
) -> RunDir:
    """`RunDir.open`, with a refusal that names the data file when its content is what changed."""
    try:
        return RunDir.open(out, command=command, config=config, operational=operational, overwrite=overwrite)
    except ResumeMismatchError:
        before = RunDir.load_manifest(out).get("config", {}).get("data", {}).get("sha256")
        after = config["data"]["sha256"]
        if before is None or before == after:
            raise
        raise ResumeMismatchError(
            f"{out} cannot resume: the content of {source.path} changed since the run started (sha256 "
            f"{before[:12]}… -> {after[:12]}…); restore the original data to resume, or use a new --out directory"
        ) from None


async def _session(
    command: str, source: DataSource, roles: Roles, out: Path, config: dict[str, Any], exec_settings: ExecSettings,
    backends: Mapping[str, Backend] | None, body: Callable[[_Session], Any],
) -> Any:
    if not source.path.exists():
        raise ConfigError(f"data file not found: {source.path}")
    _check_engine(exec_settings, backends)
    specs = roles.resolved()
    config = {"autoevol": __version__, "data": source.identity(),
              "models": {role: spec.semantic() for role, spec in specs.items()}, **config}
    # The path is not part of the identity: the same bytes elsewhere (another node, a checkout) resume.
    operational = {"data": {"path": str(source.path.resolve()), "detected": source.detected()},
                   "models": {role: spec.model_dump(mode="json") for role, spec in specs.items()}}
    run = _open_run(out, command, config, operational, source, overwrite=exec_settings.overwrite)
    try:
        async with open_pool(exec_settings) as pool:
            invocations = Invocations(run, command, pool.meter)
            invocations.save()  # listed even if killed before the first refresh (when the run has state)
            saver = asyncio.create_task(invocations.keep_saving())
            try:
                return await _session_body(run, pool, specs, exec_settings, backends, invocations, body)
            finally:
                saver.cancel()
                # A status still "running" here means an exception we do not handle (Ctrl-C...).
                status = run.manifest.get("status", "running")
                invocations.save("interrupted" if status == "running" else status)
    finally:
        run.close()


async def _session_body(
    run: RunDir, pool: ModelPool, specs: dict[str, ModelSpec], exec_settings: ExecSettings,
    backends: Mapping[str, Backend] | None, invocations: Invocations, body: Callable[[_Session], Any],
) -> Any:
    with ProgressView(pool.meter, quiet=exec_settings.quiet, interval_s=exec_settings.progress_interval_s) as view:
        try:
            return await body(_Session(run, pool, view, specs, backends or {}, invocations))
        except (BudgetExhausted, TooManyErrors) as error:
            await pool.drain()  # calls already sent finish and are counted before the stop is reported
            run.set_status("stopped", reason=str(error))
            run.events.emit("run_stopped", reason=str(error), usage=pool.meter.snapshot())
            if isinstance(error, BudgetExhausted):
                raise BudgetExhausted(
                    f"{error}; what is done is in {run.output}, and `autoevol resume {run.path}` continues "
                    "(with --max-calls N for another chunk)"
                ) from None
            raise
        except AutoevolError as error:
            # Finished units stay in state.db: the same command resumes once the cause is fixed.
            run.set_status("failed", reason=str(error))
            run.events.emit("run_failed", reason=str(error), usage=pool.meter.snapshot())
            raise


async def _evolve_phase(
    s: _Session, source: DataSource, methods: tuple[EvolvingMethod, ...], settings: EvolveSettings,
    exec_settings: ExecSettings, optimization: OptimizeOutcome | None = None,
) -> EvolveResult:
    optimizer_label = s.specs["optimizer"].label if optimization is not None else _chosen_by(methods)
    models = Models(evol=s.llm("evol"), responder=s.llm("responder"), judge=s.llm("judge"),
                    optimizer_label=optimizer_label)
    ticker = _ProgressEvents(s)
    extra: dict[str, Any] = {}
    if optimization is not None:
        extra["method"] = {"id": optimization.best.id, "lambda": optimization.best_lambda}
    executor = _executor(s, exec_settings)
    try:
        stats = await evolve_dataset(
            source, methods, models, settings, s.run, executor,
            on_row=ticker.row, on_round=ticker.round, max_consecutive_errors=exec_settings.max_consecutive_errors,
            retry_failed=exec_settings.retry_failed,
        )
    except (BudgetExhausted, TooManyErrors) as error:
        # A stop keeps what is done readable: the output files as of now, marked as partial.
        await s.pool.drain()
        stopped = {"reason": str(error), "resumable": True, "resume": f"autoevol resume {s.run.path}"}
        write_outputs(s.run, settings, _stored_stats(s.run, settings),
                      _run_extra(s, ticker, extra, "stopped", stopped=stopped), exec_settings.export)
        raise
    except DataError as error:
        # E.g. every row bad under --on-bad-row skip: what was read stays readable, each bad row in
        # rejected.jsonl with its own error. Fixing the data changes its hash, so this run is over.
        done = _stored_stats(s.run, settings)
        if done:
            stopped = {"reason": str(error), "resumable": False}
            write_outputs(s.run, settings, done, _run_extra(s, ticker, extra, "failed", stopped=stopped),
                          exec_settings.export)
        raise
    finally:
        await _close(executor)
    s.view.start("writing outputs and the report", None, unit="")  # seconds on a big run: still alive
    with collector_paused():
        summary = write_outputs(s.run, settings, stats, _run_extra(s, ticker, extra, "finished"),
                                exec_settings.export)
        s.run.events.emit("run_finished", training_rows=summary["training_rows"], usage=summary["usage"])
        s.run.set_status("finished")
        if not _write_report(s.run):
            summary["files"].pop("report", None)  # say where the report is only if there is one
            atomic_write_text(s.run.output / "summary.json",
                              json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return EvolveResult(run_dir=s.run.path, summary=summary, usage=summary["usage"], optimization=optimization)


def _run_extra(
    s: _Session, ticker: _ProgressEvents, extra: dict[str, Any], status: str, **more: Any
) -> dict[str, Any]:
    """Wall time and usage of the whole run (every invocation, this one as `status`), the list of
    invocations, and this invocation's usage per round."""
    return {**s.invocations.totals(status), "round_usage": ticker.per_round(), **extra, **more}


def _stored_stats(run: RunDir, settings: EvolveSettings) -> list[RoundStats]:
    """Per-round counts of the units stored so far (a stopped run's rounds are partial)."""
    stats = (stored_round_stats(run, round_) for round_ in range(1, settings.rounds + 1))
    return [counts for counts in stats if counts.inputs]


#: Above this many stored rows the evolve run does not write report.html by itself: the report
#: holds every row (and its shingle set) in memory, which a million-row run must not
#: pay unasked. `autoevol report RUN` still makes it on demand.
AUTO_REPORT_MAX_ROWS = 20_000


def _write_report(run: RunDir) -> bool:
    """output/report.html; a report that cannot be made must not fail a finished run."""
    from autoevol.evolve.units import PHASE
    from autoevol.report.html import write_report

    rows = run.state.count(PHASE)
    if rows > AUTO_REPORT_MAX_ROWS:
        run.events.emit("report_skipped", rows=rows, reason=f"more than {AUTO_REPORT_MAX_ROWS} rows; "
                        f"run `autoevol report {run.path}` to make it (it reads every row into memory)")
        return False
    try:
        write_report(run.path)
    except Exception as error:  # the data is written; the report is only a view of it
        run.events.emit("report_failed", error=f"{type(error).__name__}: {error}")
        return False
    return True


def _chosen_by(methods: tuple[EvolvingMethod, ...]) -> str | None:
    """The optimizer recorded in a `best_method.json` lineage, when every method carries the same one."""
    labels = set()
    for method in methods:
        lineage = method.metadata.get("lineage")
        models = lineage.get("selected_on", {}).get("models", {}) if isinstance(lineage, Mapping) else {}
        optimizer = models.get("optimizer") if isinstance(models, Mapping) else None
        labels.add(optimizer.get("model") if isinstance(optimizer, Mapping) else None)
    return labels.pop() if len(labels) == 1 else None


async def evolve_async(
    source: DataSource,
    *,
    methods: tuple[EvolvingMethod, ...],
    roles: Roles,
    out: Path,
    settings: EvolveSettings,
    exec_settings: ExecSettings | None = None,
    backends: Mapping[str, Backend] | None = None,
) -> EvolveResult:
    """Evolve a dataset with a method (several: one picked per row and round) into `out`, resumably."""
    exec_settings = exec_settings or ExecSettings()
    config = {"methods": [m.to_dict() for m in methods], "evolve": settings.model_dump(mode="json")}

    async def body(s: _Session) -> EvolveResult:
        return await _evolve_phase(s, source, methods, settings, exec_settings)

    return await _session("evolve", source, roles, out, config, exec_settings, backends, body)


async def _optimize_phase(
    s: _Session, source: DataSource, opt: OptimizeSettings, evo: EvolveSettings,
    on_step: Callable[[StepRecord], None] | None, exec_settings: ExecSettings,
) -> OptimizeOutcome:
    split = read_split(source, opt, evo.seed)
    s.run.events.emit("split", dev=[x.seed_id for x in split.dev], train=len(split.train),
                      dev_duplicates_left_out=split.dev_duplicates)
    optimizer = build_optimizer(s.llm("evol"), s.llm("optimizer"), split, s.run, opt, evo, on_step=on_step,
                                on_progress=s.view.loop_event)
    if exec_settings.engine != "local":
        optimizer.executor = _executor(s, exec_settings)  # dev scoring; proposals stay in this process
    initial = load_method(opt.initial_method)
    try:
        state = await optimizer.run_loop(initial)
    finally:
        if optimizer.executor is not None:
            await _close(optimizer.executor)
    models = {role: spec.semantic() for role, spec in s.specs.items()}
    return replace(write_result(s.run, state, models, source.describe()), initial=initial)


async def optimize_async(
    source: DataSource,
    *,
    roles: Roles,
    out: Path,
    settings: OptimizeSettings,
    evolve_settings: EvolveSettings,
    exec_settings: ExecSettings | None = None,
    backends: Mapping[str, Backend] | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
) -> OptimizeOutcome:
    """Search for the evolving method with the lowest dev failure rate; writes best_method.json."""
    exec_settings = exec_settings or ExecSettings()
    config = {"optimize": settings.model_dump(mode="json"), "evolve": evolve_settings.model_dump(mode="json")}

    async def body(s: _Session) -> OptimizeOutcome:
        outcome = await _optimize_phase(s, source, settings, evolve_settings, on_step, exec_settings)
        s.run.set_status("finished")
        _write_report(s.run)
        return outcome

    return await _session("optimize", source, roles, out, config, exec_settings, backends, body)


async def run_async(
    source: DataSource,
    *,
    roles: Roles,
    out: Path,
    settings: OptimizeSettings,
    evolve_settings: EvolveSettings,
    exec_settings: ExecSettings | None = None,
    backends: Mapping[str, Backend] | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
) -> EvolveResult:
    """Optimise a method, then evolve the whole dataset with it: one resumable run."""
    exec_settings = exec_settings or ExecSettings()
    config = {"optimize": settings.model_dump(mode="json"), "evolve": evolve_settings.model_dump(mode="json")}

    async def body(s: _Session) -> EvolveResult:
        outcome = await _optimize_phase(s, source, settings, evolve_settings, on_step, exec_settings)
        return await _evolve_phase(s, source, (outcome.best,), evolve_settings, exec_settings, outcome)

    return await _session("run", source, roles, out, config, exec_settings, backends, body)


async def resume_async(
    run_dir: Path, exec_settings: ExecSettings | None = None, backends: Mapping[str, Backend] | None = None
) -> EvolveResult | OptimizeOutcome:
    """Finish a run with exactly the configuration its manifest recorded (an `optimize` run gives its outcome)."""
    manifest = RunDir.load_manifest(run_dir)
    config, models = manifest["config"], manifest.get("operational", {}).get("models", {})
    data = config["data"]
    path = manifest.get("operational", {}).get("data", {}).get("path") or data.get("path")
    if path is None:
        raise ResumeMismatchError(f"{run_dir}/manifest.json does not say where the data file is")
    source = DataSource(Path(path), schema=data["schema"], field=data["field"], id_field=data["id_field"],
                        on_bad_row=data["on_bad_row"], limit=data["limit"], encoding=data.get("encoding"),
                        split=data.get("split"))
    specs = {role: ModelSpec(**spec) for role, spec in models.items()}
    roles = Roles(evol=specs["evol"], responder=specs.get("responder"), optimizer=specs.get("optimizer"),
                  judge=specs.get("judge"))
    evo = EvolveSettings(**config["evolve"])
    if manifest["command"] == "evolve":
        methods = tuple(EvolvingMethod.from_dict(m) for m in config["methods"])
        return await evolve_async(source, methods=methods, settings=evo, roles=roles, out=run_dir,
                                  exec_settings=exec_settings, backends=backends)
    opt = OptimizeSettings(**config["optimize"])
    call = optimize_async if manifest["command"] == "optimize" else run_async
    return await call(source, settings=opt, evolve_settings=evo, roles=roles, out=run_dir,
                      exec_settings=exec_settings, backends=backends)


def push_to_hub(run_dir: Path, repo: str, *, private: bool = False) -> str:
    """Push a finished run's `evolved.parquet` and a dataset card to the Hub; returns the repository URL."""
    from autoevol.data.publish import push_run  # huggingface_hub loads only for a push

    return push_run(run_dir, repo, private=private)
