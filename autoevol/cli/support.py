"""Helpers every command shares: error handling at the edge, model specs, printed summaries."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from autoevol.errors import AutoevolError, BackendError
from autoevol.llm.spec import ModelSpec, parse_model_spec

if TYPE_CHECKING:  # the CLI imports this module at start-up; the optimizer stack loads only when used
    from autoevol.data.source import DataSource
    from autoevol.optimization.records import StepRecord
    from autoevol.plan import DryRun

T = TypeVar("T")
#: C0 controls but tab and newline, DEL, and C1 controls: ESC starts the sequences that set a window
#: title, write the clipboard (OSC 52) or hide text, and C1's CSI/OSC do the same in one character.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_text(text: str) -> str:
    """`text` safe to print to a terminal: model-written text (a method the optimiser proposed, which
    seed text can steer) loses every control character except newline and tab (review B15)."""
    return _CONTROLS.sub("", text)


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
        if resumable and isinstance(error, BackendError) and error.attempts is not None:
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
    from autoevol.optimization.records import StepRecord

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
    """The end-of-optimisation table and diff (`autoevol.cli.explain`), loaded only when used."""
    from autoevol.cli.explain import print_outcome as explain

    explain(outcome, quiet=quiet)


def describe_outcome(outcome: Any) -> str:
    """'m-… (dev λ=0.125)' for an optimisation outcome."""
    value = outcome.best_lambda
    return f"{outcome.best.id} (dev λ={'n/a' if value is None else f'{value:.3f}'})"


def load_config(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """`--config FILE.toml`: its keys become this command's defaults, so the command line still wins.

    Keys are option names, with dashes or underscores (`on-bad-row = "skip"`). Top-level keys serve
    every command that takes them, and a `[evolve]`, `[optimize]` or `[run]` section overrides them
    for that command, so one file serves all three. An unknown key (or section) is an error naming
    the file, the section and the key, since a misspelt setting silently ignored would change a paid run.
    """
    import tomllib

    if value is None or ctx.resilient_parsing:
        return value
    try:
        loaded = tomllib.loads(value.read_text(encoding="utf-8"))
    except OSError as error:
        raise typer.BadParameter(f"cannot read {value}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise typer.BadParameter(f"{value} is not valid TOML ({error})") from None
    takes = _config_commands(ctx)
    command = ctx.info_name or ""
    shared = _keys(value, None, {k: v for k, v in loaded.items() if not isinstance(v, dict)},
                   set().union(*takes.values()))
    sections = {str(k): v for k, v in loaded.items() if isinstance(v, dict)}
    for name, section in sections.items():
        if name not in takes:
            raise typer.BadParameter(f"unknown section [{name}] in {value}; sections: {', '.join(sorted(takes))}")
        _keys(value, name, section, takes[name])
    mine = {k: v for k, v in shared.items() if k in takes.get(command, set())}
    ctx.default_map = {**(ctx.default_map or {}), **mine, **_keys(value, command, sections.get(command, {}),
                                                                 takes.get(command, set()))}
    return value


def _config_commands(ctx: typer.Context) -> dict[str, set[str]]:
    """The option names of each command that takes --config (this one, when it runs on its own)."""
    def names(command: Any) -> set[str]:
        return {p.name for p in command.params if p.name and p.name not in ("config", "help")}

    group = ctx.parent.command if ctx.parent is not None else None
    commands = dict(getattr(group, "commands", None) or {ctx.info_name or "": ctx.command})
    return {name: names(c) for name, c in commands.items() if any(p.name == "config" for p in c.params)}


def _keys(path: Path, section: str | None, table: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    values = {str(key).replace("-", "_"): item for key, item in table.items()}
    unknown = sorted(key for key in values if key not in known)
    if unknown:
        where = f"section [{section}] of {path}" if section else str(path)
        takes = f"`autoevol {section}` takes" if section else "the commands take"
        raise typer.BadParameter(f"unknown key {unknown[0]!r} in {where}; {takes}: {', '.join(sorted(known))}")
    return values


def print_data(seeds: DataSource) -> None:
    """What the run reads, before it starts: auto-detection must never be a silent choice."""
    typer.echo(data_line(seeds.describe(), seeds.detected(), seeds.count()))


def data_line(described: Mapping[str, Any], detected: Mapping[str, Any], rows: int, bad: int | None = None) -> str:
    schema = detected.get("schema") or "?"
    field = f', field "{detected["field"]}"' if detected.get("field") else ""
    split = f" · split {described['split']}" if described.get("split") else ""
    bad_rows = f" ({bad:,} bad)" if bad else ""
    return (f"data: {described['path']}{split} · schema {schema}{field} ({detected.get('how')}) · "
            f"{rows:,} rows{bad_rows}")


def print_dry_run(plan: DryRun, price_in: float | None, price_out: float | None) -> None:
    """`--dry-run`: the data as read, the optimisation split and the estimate; then the run stops."""
    typer.echo(data_line(plan.data, plan.detected, plan.rows, plan.bad_rows))
    if plan.split is not None:
        left_out = f", {plan.split.dev_duplicates} left out as copies of dev items" if plan.split.dev_duplicates else ""
        typer.echo(f"optimisation split: dev {len(plan.split.dev)}, train {len(plan.split.train)}{left_out}")
    for line in plan.estimate.lines(price_in, price_out):
        typer.echo(f"estimate: {line}")
    typer.echo("dry run: no request was made")
