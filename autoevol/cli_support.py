"""Helpers every command shares: error handling at the edge, model specs, printed summaries."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from autoevol.errors import AutoevolError
from autoevol.llm.spec import ModelSpec, parse_model_spec

T = TypeVar("T")


def guarded(fn: Callable[[], T]) -> T:
    """Turn an AutoevolError into one clear line and an exit code (traceback with AUTOEVOL_DEBUG=1)."""
    try:
        return fn()
    except AutoevolError as error:
        if os.environ.get("AUTOEVOL_DEBUG"):
            raise
        typer.secho(f"error: {error}", fg="red", err=True)
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


def print_summary(summary: dict[str, Any], *, quiet: bool = False) -> None:
    for item in summary["rounds"]:
        cats = ", ".join(f"{k} {v}" for k, v in item["categories"].items()) or "none"
        typer.echo(
            f"round {item['round']}: {item['inputs']} in -> accepted {item['accepted']}, "
            f"rejected {item['rejected']}, failed {item['failed']} (reasons: {cats})"
        )
    typer.echo(f"training rows: {summary['training_rows']} -> {summary['files']['evolved']}")
    typer.echo(f"rejected/failed rows: {summary['rejected_or_failed_rows']} -> {summary['files']['rejected']}")
    if not quiet:
        typer.echo(f"wall time: {summary.get('seconds', 0):.1f}s")


def print_step(record: dict[str, Any]) -> None:
    score = record["score"]
    rejected = [c["rejected"] for c in record["candidates"] if c["rejected"]]
    lam = f"λ={score['lambda']:.3f} (95% CI {score['ci95'][0]:.2f}-{score['ci95'][1]:.2f})" if score else "λ=n/a"
    who = "incumbent kept" if record["selected"] == -1 else f"candidate {record['selected']}"
    extra = f"; discarded: {', '.join(rejected)}" if rejected else ""
    typer.echo(f"step {record['step']}: {lam}, {who}, method {record['method']['id']}{extra}")


def describe_outcome(outcome: Any) -> str:
    """'m-… (dev λ=0.125)' for an optimisation outcome."""
    value = outcome.best_lambda
    return f"{outcome.best.id} (dev λ={'n/a' if value is None else f'{value:.3f}'})"
