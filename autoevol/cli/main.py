"""The `autoevol` app: its sub-apps, `ping`, `methods`, `resume`, and the commands of the sibling modules."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from autoevol.cli import cache, jobs, report
from autoevol.cli.options import (
    ApiKeyEnvOpt,
    BaseUrlOpt,
    HubPrivateOpt,
    MaxCallsOpt,
    MaxTokensOpt,
    ModelOpt,
    QuietOpt,
    TimeoutOpt,
)
from autoevol.cli.support import describe_outcome, guarded, model_spec, print_outcome

# rich_markup_mode=None: click's plain help wraps long option names instead of truncating them at 80 columns.
app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)
methods_app = typer.Typer(help="List and show evolving methods.", no_args_is_help=True)
app.add_typer(cache.app, name="cache")
app.add_typer(methods_app, name="methods")


def _version(value: bool) -> None:
    if value:
        from autoevol._version import __version__

        typer.echo(f"autoevol {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                          help="print the version and exit")] = False,
) -> None:
    """Auto Evol-Instruct: evolve instruction data with automatically optimised methods."""


@app.command()
def presets() -> None:
    """Every preset's resolved settings: the defaults --preset gives the options left unset."""
    from autoevol.config import PRESETS, EvolveSettings, OptimizeSettings, evolve_settings, optimize_settings

    names = list(PRESETS)
    for section, model, resolve in (("evolve", EvolveSettings, evolve_settings),
                                    ("optimize", OptimizeSettings, optimize_settings)):
        resolved = [resolve(name).model_dump(mode="json") for name in names]
        typer.echo(f"{section:<24}" + "".join(f"{name:>15}" for name in names))
        for field_name in model.model_fields:
            cells = [_cell(values[field_name]) for values in resolved]
            typer.echo(f"  {field_name:<22}" + "".join(f"{cell:>15}" for cell in cells))
        typer.echo("")
    typer.echo("an option given on the command line (or in --config) overrides its preset value")


def _cell(value: object) -> str:
    if isinstance(value, list):  # evol-instruct's six operations would not fit a column
        return f"{len(value)} methods" if value else "-"
    return "-" if value is None else str(value)

@app.command()
def ping(
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    request_timeout: TimeoutOpt = None,
    prompt: Annotated[str, typer.Option(help="what to ask")] = "Say hello in one short sentence.",
    max_tokens: Annotated[int, typer.Option(help="token cap for the reply")] = 64,
) -> None:
    """Check that a model answers: prints the reply, latency and token counts."""
    from autoevol.entry import resolve_model
    from autoevol.probe import ping as api_ping

    def announce(line: str) -> None:
        typer.echo(line, err=True)

    spec = guarded(lambda: model_spec(resolve_model(model, base_url, api_key_env, announce), base_url, api_key_env,
                                      None, request_timeout))
    reply = guarded(lambda: asyncio.run(api_ping(spec, prompt, max_tokens=max_tokens)), resumable=False)
    typer.echo(reply.text.strip())
    typer.echo(reply.describe())


@methods_app.command("list")
def methods_list() -> None:
    """The built-in evolving methods."""
    from autoevol.methods import list_builtin

    for method in guarded(list_builtin):
        typer.echo(f"{method.name:<24} {method.id}  {dict(method.metadata).get('description', '')}")


@methods_app.command("show")
def methods_show(
    name: Annotated[str, typer.Argument(metavar="NAME", help="built-in name, a .txt template or a saved .json method")],
    instruction: Annotated[str, typer.Option(help="example instruction to render with")] = (
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?"
    ),
) -> None:
    """Render a method with an example instruction, as the evol LLM would see it."""
    from autoevol.cli.support import terminal_text
    from autoevol.methods import load_method

    method = guarded(lambda: load_method(name))
    typer.echo(terminal_text(f"# {method.name}  id={method.id}  parent={method.parent_id}"))
    typer.echo(terminal_text(method.render(instruction)))


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="a run directory made by evolve/optimize/run")],
    quiet: QuietOpt = False,
    max_calls: MaxCallsOpt = None,
    max_tokens: MaxTokensOpt = None,
) -> None:
    """Finish an interrupted run with the configuration recorded in its manifest (budgets may differ)."""
    from autoevol.api import EvolveResult, resume_async
    from autoevol.cli.support import print_summary
    from autoevol.config import ExecSettings

    exec_settings = ExecSettings(quiet=quiet, max_calls=max_calls, max_tokens=max_tokens)
    result = guarded(lambda: asyncio.run(resume_async(run_dir, exec_settings)))
    if isinstance(result, EvolveResult):
        print_summary(result.summary, run_dir=result.run_dir, quiet=quiet)
    else:
        print_outcome(result, quiet=quiet)
        path = run_dir / "output" / "best_method.json"
        typer.echo(f"best method {describe_outcome(result)} -> {path}")


@app.command("push")
def push_command(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="a finished run directory made by evolve or run")],
    repo: Annotated[str, typer.Argument(metavar="ORG/NAME", help="Hugging Face dataset repository (created if new)")],
    hub_private: HubPrivateOpt = False,
) -> None:
    """Push a finished run's evolved.parquet and a dataset card to the Hub (token from $HF_TOKEN)."""
    jobs.push(run_dir, repo, hub_private)


app.command()(jobs.evolve)
app.command()(jobs.optimize)
app.command("run")(jobs.run)
app.command()(report.report)
app.command()(report.stats)
