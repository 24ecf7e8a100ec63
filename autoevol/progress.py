"""What a person watches: a Rich progress display (done/total, rate, ETA, tokens, cache hits,
failures by category). `quiet=True` prints nothing; machines read the run's events.jsonl instead.
"""

from __future__ import annotations

from collections import Counter
from types import TracebackType
from typing import Any

from autoevol.llm.usage import UsageMeter


class ProgressView:
    def __init__(self, meter: UsageMeter, *, quiet: bool = False) -> None:
        self.meter = meter
        self.quiet = quiet
        self.failures: Counter[str] = Counter()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressView:
        import sys

        # A live bar in a log file is noise: without a terminal, events.jsonl carries the progress.
        if not self.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=16), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                TextColumn("{task.fields[stats]}"), transient=False, console=Console(stderr=True),
            )
            self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, description: str, total: int | None) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(description, total=total, rate="", stats="")

    def advance(self, status: str = "accepted", category: str | None = None) -> None:
        if status != "accepted":
            self.failures[category or status] += 1
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[self._task]
        rate = f"{task.speed:.1f}/s" if task.speed else ""
        self._progress.update(self._task, advance=1, rate=rate, stats=self.stats_line())

    def stats_line(self) -> str:
        total = self.meter.total()
        fails = ", ".join(f"{name} {n}" for name, n in self.failures.most_common(4))
        line = f"tokens {total.prompt_tokens + total.completion_tokens:,} · cache hits {total.cached_calls:,}"
        return line + (f" · failures: {fails}" if fails else "")
