"""The `autoevol` command line: thin commands, each one call into `autoevol.api`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from autoevol.cli_options import (
    ApiKeyEnvOpt,
    BaseUrlOpt,
    MaxCallsOpt,
    MaxTokensOpt,
    ModelOpt,
    QuietOpt,
    TimeoutOpt,
)
from autoevol.cli_support import describe_outcome, guarded, model_spec, print_outcome

app = typer.Typer(help="Auto Evol-Instruct: evolve instruction data with automatically optimised methods.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
cache_app = typer.Typer(help="Inspect or clear the request cache.", no_args_is_help=True)
methods_app = typer.Typer(help="List and show evolving methods.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
app.add_typer(methods_app, name="methods")

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
    from autoevol.api import ping as api_ping
    from autoevol.cli_jobs import resolve_model

    spec = guarded(lambda: model_spec(resolve_model(model, base_url, api_key_env), base_url, api_key_env, None,
                                      request_timeout))
    reply = guarded(lambda: asyncio.run(api_ping(spec, prompt, max_tokens=max_tokens)), resumable=False)
    typer.echo(reply.text.strip())
    typer.echo(reply.describe())


@cache_app.command("stats")
def cache_stats(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Entries, hits, misses and tokens saved by the request cache."""
    from autoevol.home import cache_path
    from autoevol.llm.cache import ResponseCache

    def read() -> dict[str, object]:
        cache = ResponseCache(cache_path())
        try:
            return cache.stats().to_dict()
        finally:
            cache.close()

    stats = guarded(read)
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    for name, value in stats.items():
        typer.echo(f"{name:>18}: {value:,}" if isinstance(value, int) else f"{name:>18}: {value}")


@cache_app.command("clear")
def cache_clear(yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False) -> None:
    """Delete every cached response."""
    from autoevol.home import cache_path
    from autoevol.llm.cache import ResponseCache

    if not yes:
        if not sys.stdin.isatty():  # a pipe or a script cannot have meant "yes" by accident
            typer.secho(f"error: nothing removed: clearing {cache_path()} needs a terminal to confirm, or --yes",
                        fg="red", err=True)
            raise typer.Exit(2)
        if not typer.confirm(f"clear every cached response in {cache_path()}?"):
            typer.echo("nothing removed")
            raise typer.Exit(1)

    def clear() -> int:
        cache = ResponseCache(cache_path())
        try:
            return cache.clear()
        finally:
            cache.close()

    removed = guarded(clear)
    typer.echo(f"removed {removed:,} cached responses")


@methods_app.command("list")
def methods_list() -> None:
    """The built-in evolving methods."""
    from autoevol.methods import list_builtin

    for method in guarded(list_builtin):
        typer.echo(f"{method.name:<24} {method.id}  {dict(method.metadata).get('description', '')}")


@methods_app.command("show")
def methods_show(
    name: Annotated[str, typer.Argument(help="built-in name, a .txt template or a saved .json method")],
    instruction: Annotated[str, typer.Option(help="example instruction to render with")] = (
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?"
    ),
) -> None:
    """Render a method with an example instruction, as the evol LLM would see it."""
    from autoevol.methods import load_method

    method = guarded(lambda: load_method(name))
    typer.echo(f"# {method.name}  id={method.id}  parent={method.parent_id}")
    typer.echo(method.render(instruction))


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="a run directory made by evolve/optimize/run")],
    quiet: QuietOpt = False,
    max_calls: MaxCallsOpt = None,
    max_tokens: MaxTokensOpt = None,
) -> None:
    """Finish an interrupted run with the configuration recorded in its manifest (budgets may differ)."""
    from autoevol import api
    from autoevol.cli_support import print_summary
    from autoevol.config import ExecSettings

    exec_settings = ExecSettings(quiet=quiet, max_calls=max_calls, max_tokens=max_tokens)
    result = guarded(lambda: api.resume(run_dir, exec_settings))
    if hasattr(result, "summary"):
        print_summary(result.summary, run_dir=result.run_dir, quiet=quiet)
    else:
        print_outcome(result, quiet=quiet)
        path = run_dir / "output" / "best_method.json"
        typer.echo(f"best method {describe_outcome(result)} -> {path}")


def _register_jobs() -> None:
    from autoevol import cli_jobs

    app.command()(cli_jobs.evolve)
    app.command()(cli_jobs.optimize)
    app.command("run")(cli_jobs.run)

    from autoevol import cli_report

    app.command()(cli_report.report)
    app.command()(cli_report.stats)


_register_jobs()
