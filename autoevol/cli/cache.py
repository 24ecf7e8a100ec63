"""`autoevol cache stats|clear`: the request cache shared by every run under AUTOEVOL_HOME."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from autoevol.cli.support import guarded

app = typer.Typer(help="Inspect or clear the request cache.", no_args_is_help=True)


@app.command("stats")
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


@app.command("clear")
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
