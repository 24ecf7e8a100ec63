"""Helpers every command shares: error handling at the edge, model specs, printed summaries."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from autoevol.errors import AutoevolError, BackendError
from autoevol.llm.spec import ModelSpec, parse_model_spec

if TYPE_CHECKING:  # the CLI imports this module at start-up; the optimizer stack loads only when used
    from autoevol.optimize.records import StepRecord

T = TypeVar("T")


def guarded(fn: Callable[[], T], *, resumable: bool = True) -> T:
    """Turn an AutoevolError into one clear line and an exit code (traceback with AUTOEVOL_DEBUG=1).

    `resumable`: the command keeps finished work, so a model error whose retries ran out says that
    running it again resumes (`ping` has nothing to resume).
    """
    try:
        return fn()
    except AutoevolError as error:
        if os.environ.get("AUTOEVOL_DEBUG"):
            raise
        message = str(error)
        if resumable and isinstance(error, BackendError) and getattr(error, "attempts", None) is not None:
            message += "; finished work is kept: run the same command again to resume"
        typer.secho(f"error: {message}", fg="red", err=True)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        typer.secho("interrupted: run the same command again to resume", fg="yellow", err=True)
        raise typer.Exit(130) from None


def model_spec(
    text: str, base_url: str | None, api_key_env: str | None, concurrency: int | None, timeout: float | None
) -> ModelSpec:
    return parse_model_spec(
        text, base_url=base_url, api_key_env=api_key_env, concurrency=concurrency, request_timeout=timeout
    )


def print_summary(summary: dict[str, Any], *, quiet: bool = False, run_dir: Path | None = None) -> None:
    """`run_dir` resolves summary.json's paths, which are relative to the run directory."""
    files = {name: str(run_dir / path) if run_dir else path for name, path in summary["files"].items()}
    for item in summary["rounds"]:
        cats = ", ".join(f"{k} {v}" for k, v in item["categories"].items()) or "none"
        typer.echo(
            f"round {item['round']}: {item['inputs']} in -> accepted {item['accepted']}, "
            f"rejected {item['rejected']}, failed {item['failed']} (reasons: {cats})"
        )
    typer.echo(f"training rows: {summary['training_rows']} -> {files['evolved']}")
    typer.echo(f"rejected/failed rows: {summary['rejected_or_failed_rows']} -> {files['rejected']}")
    if "report" in files:
        typer.echo(f"report: {files['report']}")
    if not quiet:
        typer.echo(f"wall time: {summary.get('seconds', 0):.1f}s")


def print_step(record: StepRecord | Mapping[str, Any]) -> None:
    """One line per finished step; takes the typed record or its stored form (what `on_step` gets)."""
    from autoevol.optimize.records import StepRecord

    if not isinstance(record, StepRecord):
        record = StepRecord.from_dict(record)
    score = record.score
    rejected = [c.rejected for c in record.candidates if c.rejected]
    lam = f"λ={score.rate:.3f} (95% CI {score.low:.2f}-{score.high:.2f})" if score else "λ=n/a"
    who = f"candidate {record.selected}" if record.selected is not None else str(record.selected_label)
    extra = f"; discarded: {', '.join(rejected)}" if rejected else ""
    screened = f"; screened out: {len(record.screened_out)}" if record.screened_out else ""
    typer.echo(f"step {record.step}: {lam}, {who}, method {record.method.id}{extra}{screened}")


def print_outcome(outcome: Any, *, quiet: bool = False) -> None:
    """The end-of-optimisation table and diff (`autoevol.optimize.explain`), loaded only when used."""
    from autoevol.optimize.explain import print_outcome as explain

    explain(outcome, quiet=quiet)


def describe_outcome(outcome: Any) -> str:
    """'m-… (dev λ=0.125)' for an optimisation outcome."""
    value = outcome.best_lambda
    return f"{outcome.best.id} (dev λ={'n/a' if value is None else f'{value:.3f}'})"
