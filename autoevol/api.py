"""The Python API. Every CLI command is one call here; library users call the same functions.

`Roles` (which model plays which part) is re-exported from `autoevol.llm.spec` for them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from autoevol.config import EvolveSettings, ExecSettings, OptimizeSettings
from autoevol.data.source import DataSource
from autoevol.errors import (
    BudgetExhausted,
    ConfigError,
    DataError,
    TooManyErrors,
)
from autoevol.evolution.outputs import collector_paused, write_outputs
from autoevol.evolution.pipeline import RoundStats, evolve_dataset, stored_round_stats
from autoevol.evolution.steps import Models
from autoevol.files import atomic_write_text
from autoevol.llm.base import Backend
from autoevol.llm.spec import Roles
from autoevol.methods import load_method
from autoevol.methods.method import EvolvingMethod
from autoevol.optimization.job import OptimizeOutcome, build_optimizer, read_split, write_result
from autoevol.optimization.records import StepRecord
from autoevol.session import RowProgress, Session, executor_for, manifest_for, run_session
from autoevol.store.manifest import Manifest
from autoevol.store.run import RunDir

T = TypeVar("T")


@dataclass(slots=True)
class EvolveResult:
    run_dir: Path
    summary: dict[str, Any]
    usage: list[dict[str, object]] = field(default_factory=list)
    optimization: OptimizeOutcome | None = None


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


async def _evolve_phase(
    s: Session, source: DataSource, methods: tuple[EvolvingMethod, ...], settings: EvolveSettings,
    exec_settings: ExecSettings, optimization: OptimizeOutcome | None = None,
) -> EvolveResult:
    optimizer_label = s.specs["optimizer"].label if optimization is not None else _chosen_by(methods)
    models = Models(evol=s.llm("evol"), responder=s.llm("responder"), judge=s.llm("judge"),
                    optimizer_label=optimizer_label)
    ticker = RowProgress(s)
    extra: dict[str, Any] = {}
    if optimization is not None:
        extra["method"] = {"id": optimization.best.id, "lambda": optimization.best_lambda}
    executor = executor_for(s, exec_settings)
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
        await executor.aclose()
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
    s: Session, ticker: RowProgress, extra: dict[str, Any], status: str, **more: Any
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
    from autoevol.evolution.units import PHASE
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
    where = ("lineage", "selected_on", "models", "optimizer", "model")
    labels = {_dig(method.metadata, where) for method in methods}
    return labels.pop() if len(labels) == 1 else None


def _dig(value: object, keys: tuple[str, ...]) -> str | None:
    """`value[k1][k2]...`, or None where the path ends early (a method file may come from anywhere)."""
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, str) else None


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
    manifest = manifest_for("evolve", source, roles, exec_settings, settings, methods=methods, backends=backends)
    return await _evolving(manifest, out, exec_settings, backends)


async def _evolving(
    manifest: Manifest, out: Path, exec_settings: ExecSettings, backends: Mapping[str, Backend] | None
) -> EvolveResult:
    async def body(s: Session) -> EvolveResult:
        return await _evolve_phase(s, manifest.source(), manifest.methods, manifest.evolve, exec_settings)

    return await run_session(manifest, out, exec_settings, backends, body)


async def _optimize_phase(
    s: Session, manifest: Manifest, on_step: Callable[[StepRecord], None] | None, exec_settings: ExecSettings,
) -> OptimizeOutcome:
    source, opt, evo = manifest.source(), manifest.optimize_settings(), manifest.evolve
    split = read_split(source, opt, evo.seed)
    s.run.events.emit("split", dev=[x.seed_id for x in split.dev], train=len(split.train),
                      dev_duplicates_left_out=split.dev_duplicates)
    optimizer = build_optimizer(s.llm("evol"), s.llm("optimizer"), split, s.run, opt, evo, on_step=on_step,
                                on_progress=s.view.loop_event)
    if exec_settings.engine != "local":
        optimizer.executor = executor_for(s, exec_settings)  # dev scoring; proposals stay in this process
    initial = load_method(opt.initial_method)
    try:
        state = await optimizer.run_loop(initial)
    finally:
        if optimizer.executor is not None:
            await optimizer.executor.aclose()
    models = {role: spec.semantic() for role, spec in s.specs.items()}
    return replace(write_result(s.run, state, models, source.describe()), initial=initial)


#: What an optimising command does once its method is found: `optimize` stops, `run` evolves with it.
After = Callable[[Session, Manifest, ExecSettings, OptimizeOutcome], Awaitable[T]]


async def _finish(
    s: Session, manifest: Manifest, exec_settings: ExecSettings, outcome: OptimizeOutcome
) -> OptimizeOutcome:
    s.run.set_status("finished")
    _write_report(s.run)
    return outcome


async def _evolve_with_best(
    s: Session, manifest: Manifest, exec_settings: ExecSettings, outcome: OptimizeOutcome
) -> EvolveResult:
    return await _evolve_phase(s, manifest.source(), (outcome.best,), manifest.evolve, exec_settings, outcome)


async def _optimizing(
    manifest: Manifest, out: Path, exec_settings: ExecSettings, backends: Mapping[str, Backend] | None,
    on_step: Callable[[StepRecord], None] | None, after: After[T],
) -> T:
    """The `optimize` and `run` commands: one session, the loop, then `after`."""
    async def body(s: Session) -> T:
        outcome = await _optimize_phase(s, manifest, on_step, exec_settings)
        return await after(s, manifest, exec_settings, outcome)

    return await run_session(manifest, out, exec_settings, backends, body)


async def _optimize_command(
    command: str, after: After[T], source: DataSource, roles: Roles, out: Path, settings: OptimizeSettings,
    evolve_settings: EvolveSettings, exec_settings: ExecSettings | None, backends: Mapping[str, Backend] | None,
    on_step: Callable[[StepRecord], None] | None,
) -> T:
    exec_settings = exec_settings or ExecSettings()
    manifest = manifest_for(command, source, roles, exec_settings, evolve_settings, optimize=settings,
                            backends=backends)
    return await _optimizing(manifest, out, exec_settings, backends, on_step, after)


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
    return await _optimize_command("optimize", _finish, source, roles, out, settings, evolve_settings,
                                   exec_settings, backends, on_step)


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
    return await _optimize_command("run", _evolve_with_best, source, roles, out, settings, evolve_settings,
                                   exec_settings, backends, on_step)


async def resume_async(
    run_dir: Path, exec_settings: ExecSettings | None = None, backends: Mapping[str, Backend] | None = None
) -> EvolveResult | OptimizeOutcome:
    """Finish a run with exactly the configuration its manifest recorded (an `optimize` run gives its outcome).

    Output options recorded by the run (its exports) are kept; exports given here are added to them.
    """
    recorded = Manifest.load(run_dir)
    exec_settings = exec_settings or ExecSettings()
    exports = tuple(dict.fromkeys((*recorded.exports, *exec_settings.export)))
    exec_settings = ExecSettings.model_validate(exec_settings.model_dump() | {"export": exports})
    manifest = manifest_for(recorded.command, recorded.source(), recorded.roles(), exec_settings, recorded.evolve,
                            optimize=recorded.optimize, methods=recorded.methods, backends=backends)
    if manifest.command == "evolve":
        return await _evolving(manifest, run_dir, exec_settings, backends)
    after: After[EvolveResult | OptimizeOutcome] = _finish if manifest.command == "optimize" else _evolve_with_best
    return await _optimizing(manifest, run_dir, exec_settings, backends, None, after)


def push_to_hub(run_dir: Path, repo: str, *, private: bool = False) -> str:
    """Push a finished run's `evolved.parquet` and a dataset card to the Hub; returns the repository URL."""
    from autoevol.report.publish import push_run  # huggingface_hub loads only for a push

    return push_run(run_dir, repo, private=private)
