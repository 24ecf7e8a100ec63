"""The three job commands: `evolve`, `optimize` and `run` (optimise, then evolve everything).

Every option is declared once (`autoevol.cli.options`, its help from `autoevol.config`); a command
is the list of options it takes, and its signature is made from that list, since typer reads a
command's options from its signature. All three share one body, `run_job`: `autoevol.entry` turns
the values into a job, and one call into `autoevol.api` runs it here, at the edge, under `guarded`
(one line per error, an exit code). `--dry-run` makes `plan.dry_run` the call instead: the data is
read and checked, nothing is sent.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from autoevol.cli import options as o
from autoevol.cli.support import (
    describe_outcome,
    guarded,
    print_data,
    print_dry_run,
    print_outcome,
    print_step,
    print_summary,
)

if TYPE_CHECKING:  # the API stack loads only when a command runs, so `--help` stays fast
    from autoevol.config import Export
    from autoevol.entry import Job, Kind
    from autoevol.plan import DryRun

_REQUIRED = inspect.Parameter.empty

#: Every job option: its typer declaration and its default (None: not given, the preset decides).
OPTIONS: dict[str, tuple[Any, Any]] = {
    "data": (o.DataArg, _REQUIRED), "out": (o.OutOpt, _REQUIRED), "method": (o.MethodOpt, None),
    "model": (o.ModelOpt, None), "optimizer_model": (o.OptimizerOpt, None),
    "responder_model": (o.ResponderOpt, None), "judge_model": (o.JudgeOpt, None),
    "base_url": (o.BaseUrlOpt, None), "api_key_env": (o.ApiKeyEnvOpt, None),
    "concurrency": (o.ConcurrencyOpt, None), "request_timeout": (o.TimeoutOpt, None),
    "preset": (o.PresetOpt, "default"),
    "steps": (o.StepsOpt, None), "candidates": (o.CandidatesOpt, None), "dev_size": (o.DevSizeOpt, None),
    "batch_size": (o.BatchOpt, None), "pool_size": (o.PoolOpt, None), "patience": (o.PatienceOpt, None),
    "screen_size": (o.ScreenOpt, None), "initial_method": (o.InitialOpt, None),
    "trajectory_rounds": (o.TrajectoryOpt, None), "optimizer_temperature": (o.OptimizerTemperatureOpt, None),
    "optimizer_top_p": (o.OptimizerTopPOpt, None), "optimizer_max_tokens": (o.OptimizerMaxTokensOpt, None),
    "rounds": (o.RoundsOpt, None), "mix": (o.MixOpt, None), "rule_set": (o.RuleSetOpt, None),
    "math_answers": (o.MathOpt, None), "evol_temperature": (o.EvolTemperatureOpt, None),
    "evol_max_tokens": (o.EvolMaxTokensOpt, None), "respond_temperature": (o.RespondTemperatureOpt, None),
    "respond_max_tokens": (o.RespondMaxTokensOpt, None), "parse_retries": (o.ParseRetriesOpt, None),
    "cut_answers": (o.CutAnswersOpt, None), "judge_max_tokens": (o.JudgeMaxTokensOpt, None),
    "score_parse_retries": (o.ScoreParseRetriesOpt, None), "evaluator_feedback": (o.EvaluatorFeedbackOpt, None),
    "seed": (o.SeedOpt, None),
    "schema": (o.SchemaOpt, "auto"), "field": (o.FieldOpt, None), "id_field": (o.IdFieldOpt, None),
    "on_bad_row": (o.BadRowOpt, "fail"), "encoding": (o.EncodingOpt, None), "split": (o.SplitOpt, None),
    "limit": (o.LimitOpt, None),
    "export": (o.ExportOpt, None), "push_to_hub": (o.PushOpt, None), "hub_private": (o.HubPrivateOpt, False),
    "quiet": (o.QuietOpt, False), "max_calls": (o.MaxCallsOpt, None), "max_tokens": (o.MaxTokensOpt, None),
    "retry_failed": (o.RetryFailedOpt, False), "overwrite": (o.OverwriteOpt, False),
    "engine": (o.EngineOpt, "local"), "ray_address": (o.RayAddressOpt, None),
    "dry_run": (o.DryRunOpt, False), "price_in": (o.PriceInOpt, None), "price_out": (o.PriceOutOpt, None),
    "config": (o.ConfigOpt, None),
}

_CONNECTION = ("base_url", "api_key_env", "concurrency", "request_timeout", "preset")
_OPTIMIZE = ("steps", "candidates", "dev_size", "batch_size", "pool_size", "patience", "screen_size",
             "initial_method", "trajectory_rounds", "optimizer_temperature", "optimizer_top_p", "optimizer_max_tokens",
             "score_parse_retries", "evaluator_feedback")
# What only the final pass uses: its rounds, its mix and its judge.
_EVOLVE_SHAPE = ("rounds", "mix", "judge_max_tokens")
# What the optimisation uses of the evolve settings too: its trajectories are rewritten and answered.
_EVOLVE_CALLS = ("rule_set", "math_answers", "evol_temperature", "evol_max_tokens", "respond_temperature",
                 "respond_max_tokens", "cut_answers", "parse_retries", "seed")
_DATA = ("schema", "field", "id_field", "on_bad_row", "encoding", "split", "limit")
_OUTPUTS = ("export", "push_to_hub", "hub_private")
_BUDGET = ("quiet", "max_calls", "max_tokens")
_ENGINE = ("overwrite", "engine", "ray_address", "dry_run", "price_in", "price_out", "config")

COMMANDS: dict[Kind, tuple[str, ...]] = {
    "evolve": ("data", "out", "method", "model", "responder_model", "judge_model", *_CONNECTION, *_EVOLVE_SHAPE,
               *_EVOLVE_CALLS, *_DATA, *_OUTPUTS, *_BUDGET, "retry_failed", *_ENGINE),
    "optimize": ("data", "out", "model", "optimizer_model", "responder_model", "judge_model", *_CONNECTION,
                 *_OPTIMIZE, *_EVOLVE_CALLS, *_DATA, *_BUDGET, *_ENGINE),
    "run": ("data", "out", "model", "optimizer_model", "responder_model", "judge_model", *_CONNECTION, *_OPTIMIZE,
            *_EVOLVE_SHAPE, *_EVOLVE_CALLS, *_DATA, *_OUTPUTS, *_BUDGET, "retry_failed", *_ENGINE),
}


def command(kind: Kind, doc: str) -> Callable[..., None]:
    """The typer command `kind`: its signature lists the options of `COMMANDS[kind]`, its body is `run_job`."""

    def job_command(**values: Any) -> None:
        run_job(kind, values)

    names = COMMANDS[kind]
    kind_of = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter(n, kind_of, default=OPTIONS[n][1], annotation=OPTIONS[n][0]) for n in names]
    job_command.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
    job_command.__annotations__ = {name: OPTIONS[name][0] for name in names} | {"return": None}
    job_command.__name__ = job_command.__qualname__ = kind
    job_command.__doc__ = doc
    return job_command


def run_job(kind: Kind, values: dict[str, Any]) -> None:
    """The one body of the three commands: build the job, check, dry-run or run it, print the outcome."""
    from autoevol import entry

    config = values.get("config")
    given = {**values, "export": exports(values.get("export")), "config": None if config is None else str(config)}
    job = guarded(lambda: entry.job(kind, given))
    check_push(job.push.push_to_hub)
    if job.plan.dry_run:
        return print_dry_run(guarded(lambda: _dry_run(job)), job.plan.price_in, job.plan.price_out)
    _finish(job, guarded(lambda: _go(job)))


def _dry_run(job: Job) -> DryRun:
    from autoevol import api, plan

    if job.kind == "evolve":
        api.resolve_methods(job.method, job.evolve)  # a wrong --method is found now, before any estimate
    return plan.dry_run(job.source, job.optimize, job.evolve, with_evolve=job.kind != "optimize")


def _go(job: Job) -> Any:
    from autoevol import api, plan
    from autoevol.entry import roles

    models = roles(job.models, announce=lambda line: typer.echo(line, err=True))
    if not job.exec.quiet:
        print_data(job.source)
        if job.optimize is not None:
            estimate = plan.estimate_for(job.source, job.optimize, job.evolve, with_evolve=job.kind == "run")
            print_estimate(estimate.lines(job.plan.price_in, job.plan.price_out))
    common: dict[str, Any] = {"roles": models, "out": job.out, "exec_settings": job.exec}
    if job.optimize is None:
        return asyncio.run(api.evolve_async(job.source, methods=api.resolve_methods(job.method, job.evolve),
                                            settings=job.evolve, **common))
    call = api.optimize_async if job.kind == "optimize" else api.run_async
    return asyncio.run(call(job.source, settings=job.optimize, evolve_settings=job.evolve,
                            on_step=None if job.exec.quiet else print_step, **common))


def _finish(job: Job, result: Any) -> None:
    from autoevol.api import EvolveResult

    quiet = job.exec.quiet
    if not isinstance(result, EvolveResult):  # `optimize`: the outcome is the best method
        print_outcome(result, quiet=quiet)
        typer.echo(f"best method {describe_outcome(result)} -> {job.out / 'output' / 'best_method.json'}")
        return
    if result.optimization is not None:
        print_outcome(result.optimization, quiet=quiet)
        typer.echo(f"selected method {describe_outcome(result.optimization)}")
    print_summary(result.summary, quiet=quiet, run_dir=result.run_dir)
    push(result.run_dir, job.push.push_to_hub, job.push.hub_private)


evolve = command("evolve", "Evolve every seed with one method, answer it, filter failures; resumable in --out.")
optimize = command(
    "optimize", "Search for the evolving method with the lowest dev failure rate; writes output/best_method.json.")
run = command("run", "Optimise an evolving method, then evolve the whole dataset with it (one resumable run).")


def check_push(repo: str | None) -> None:
    """Before anything is spent: a run must not finish only to find it cannot be pushed."""
    if repo is not None:
        from autoevol.report.publish import check_push as check

        guarded(lambda: check(repo))


def push(run_dir: Path, repo: str | None, private: bool) -> None:
    """After the outputs are written; a refusal is one line and exit code 8, the run stays finished."""
    if repo is not None:
        from autoevol import api

        url = guarded(lambda: api.push_to_hub(run_dir, repo, private=private))
        typer.echo(f"pushed to the Hub: {url}")


def exports(formats: list[o.ExportFormat] | None) -> tuple[Export, ...]:
    return tuple("alpaca" if f is o.ExportFormat.alpaca else "sharegpt" for f in formats or ())


def print_estimate(lines: list[str]) -> None:
    for line in lines:
        typer.echo(f"estimate: {line}")
