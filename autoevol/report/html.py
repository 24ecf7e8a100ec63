"""`autoevol report`: one self-contained HTML file per run (no script, no network, no font).

Jinja2 escapes every value (autoescape on for the whole environment), and the page also forbids
scripts and remote loads with a Content-Security-Policy, so a hostile instruction from the data
or a model stays text even if a template forgot something. Charts are our own SVG (report/charts.py),
inlined; they escape their labels themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from autoevol.files import atomic_write_text
from autoevol.quality.contamination import Benchmark
from autoevol.report.build import context
from autoevol.report.collect import read_run

REPORT_NAME = "report.html"


def _env() -> Environment:
    env = Environment(loader=PackageLoader("autoevol.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return env


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _trust_charts(ctx: dict[str, Any]) -> dict[str, Any]:
    """Mark the SVG of report/charts.py (it escapes its own text) as safe markup; nothing else in the context is."""
    for section in ("optimisation", "evolution", "quality"):
        part = ctx.get(section)
        if isinstance(part, dict):
            for key, value in part.items():
                if key.endswith("chart") and isinstance(value, str):
                    part[key] = Markup(value)
    return ctx


def render(ctx: dict[str, Any]) -> str:
    return _env().get_template("report.html.j2").render(**_trust_charts(ctx))


def write_report(run_dir: Path, out: Path | None = None, *, benchmarks: Sequence[Benchmark] | None = None,
                 tags: Mapping[str, Any] | None = None) -> Path:
    """Write the report of `run_dir` (default RUN/output/report.html) and return its path."""
    run = read_run(run_dir)
    target = out or run_dir / "output" / REPORT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, render(context(run, benchmarks=benchmarks, tags=tags)))
    return target
