"""What a person watches while a run works.

On a terminal: a live Rich line (bar, done/total, rate with its unit, elapsed, ETA, row outcomes,
calls, tokens, cache hits and retries by cause). Without one (nohup, Slurm, CI, `| tee`): the same
facts as a plain line every `interval_s` seconds (default 10, or `$AUTOEVOL_PROGRESS_INTERVAL`), so a
log shows the run is alive. `quiet=True` prints nothing; machines read the run's events.jsonl.

Two kinds of work are shown: evolve rounds (rows) and optimisation steps (phases reported by the
loop's `LoopEvent`s). Rates and ETAs count paid work only: rows a resumed run kept count as done from
the start, and rows answered from the cache count as done without speeding up the estimate.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from autoevol.llm.usage import UsageMeter

if TYPE_CHECKING:
    from autoevol.optimization.loop import LoopEvent

INTERVAL_ENV = "AUTOEVOL_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 10.0
_LIVE_REFRESH_S = 0.5
_PHASES = {"trajectory": "trajectory: evolving", "proposing": "optimizer proposing", "scoring": "scoring",
           "step_done": "step done"}


def progress_interval(value: float | None = None) -> float:
    """Seconds between plain progress lines: `value`, else the environment, else 10."""
    if value is not None:
        return value
    try:
        return max(0.05, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class _Work:
    """One unit of display: an evolve round (rows) or the optimisation (steps, then dev verdicts)."""

    def __init__(self, title: str, total: int | None, unit: str, done: int = 0, *, optimise: bool = False) -> None:
        self.title, self.total, self.unit, self.optimise = title, total, unit, optimise
        self.done = done
        self.started = time.monotonic()
        # Paid work only: the first and last paid completion, and how many there were.
        self.paid = 0
        self.paid_first: float | None = None
        self.paid_last = 0.0

    def paid_one(self, now: float) -> None:
        if self.paid_first is None:
            self.paid_first = self.started  # the wait for the first paid answer is part of the rate
        self.paid += 1
        self.paid_last = now

    def rate(self) -> float | None:
        if not self.paid or self.paid_first is None:
            return None
        return self.paid / max(self.paid_last - self.paid_first, 1e-6)

    def eta(self) -> float | None:
        rate = self.rate()
        if self.total is None or rate is None:
            return None
        return max(0, self.total - self.done) / rate


class ProgressView:
    def __init__(self, meter: UsageMeter, *, quiet: bool = False, interval_s: float | None = None,
                 stream: IO[str] | None = None) -> None:
        self.meter = meter
        self.quiet = quiet
        self.interval_s = progress_interval(interval_s)
        self.stream = stream or sys.stderr
        self.failures: Counter[str] = Counter()
        self.status: Counter[str] = Counter()
        self._work: _Work | None = None
        self._opt: dict[str, Any] = {}  # the optimisation's step, phase and paid step times
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: Any = None
        self._task: Any = None
        self._paid_calls = 0
        self._opt_key: tuple[int, str] | None = None
        self._opt_task: Any = None

    @property
    def live(self) -> bool:
        return self._progress is not None

    def __enter__(self) -> ProgressView:
        if self.quiet:
            return self
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=30), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"),
                TextColumn("{task.fields[stats]}"), transient=False,
                console=Console(file=self.stream, stderr=self.stream is sys.stderr),
            )
            self._progress.start()
        self._thread = threading.Thread(target=self._tick, name="autoevol-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._progress is not None:
            self._refresh()
            self._progress.stop()

    # -- what the run reports -------------------------------------------------------------------
    def start(self, description: str, total: int | None, *, done: int = 0,
              kept: Counter[str] | None = None, unit: str = "rows") -> None:
        """A new round: `done` rows (with outcomes `kept`) were finished by an earlier invocation."""
        with self._lock:
            self._work = _Work(description, total, unit, done)
            self.status = Counter(kept or {})
            self._paid_calls = self.meter.total().paid_calls
            if self._progress is not None:
                self._task = self._progress.add_task(description, total=total, completed=done, rate="", eta="?",
                                                     stats="")
        self._refresh()

    def advance(self, status: str = "accepted", category: str | None = None) -> None:
        with self._lock:
            self.status[status] += 1
            if status != "accepted":
                self.failures[category or status] += 1
            work = self._work
            if work is not None:
                work.done += 1
                # A row that made no paid call since the last one was served from the cache (or was
                # a bad input row): done, but it says nothing about how fast the rest will go.
                if self._paid_since_last():
                    work.paid_one(time.monotonic())
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1)

    def loop_event(self, event: LoopEvent) -> None:
        """An optimisation loop's progress (see `autoevol.optimization.loop.LoopEvent`)."""
        now = time.monotonic()
        title = f"optimise step {event.step}/{event.steps}"
        total = event.total if event.phase == "scoring" else None
        with self._lock:
            opt = self._opt
            if opt.get("step") != event.step:
                opt.update(step=event.step, steps=event.steps, step_started=now)
            opt.update(phase=event.phase, detail=event.detail)
            if event.phase == "step_done":
                if not event.replayed:
                    opt.setdefault("paid_steps", []).append(now - opt["step_started"])
                opt["finished"] = event.step
            if self._opt_key != (event.step, event.phase):
                self._opt_key = (event.step, event.phase)
                self._work = _Work(title, total, "dev verdicts" if event.phase == "scoring" else "", event.done,
                                   optimise=True)
            elif self._work is not None:
                if event.done > self._work.done and self._paid_since_last():
                    self._work.paid_one(now)  # stored or cached verdicts come in a burst: not a rate
                self._work.done, self._work.total = event.done, total
        if self._progress is not None:
            # The live bar counts steps (a scoring step partly done by its verdicts); the verdicts
            # themselves are in the description.
            steps_done = float(event.step) if event.phase == "step_done" else event.step - 1 + (
                event.done / event.total if event.phase == "scoring" and event.total else 0.0)
            if self._opt_task is None:
                self._opt_task = self._progress.add_task(title, total=event.steps, completed=steps_done, rate="",
                                                         eta="?", stats="")
            else:
                self._progress.update(self._opt_task, total=event.steps, completed=steps_done)
            self._task = self._opt_task
        self._refresh()

    def _paid_since_last(self) -> bool:
        paid = self.meter.total().paid_calls
        grew, self._paid_calls = paid > self._paid_calls, paid
        return grew

    # -- rendering ------------------------------------------------------------------------------
    def stats_line(self) -> str:
        """Outcomes of the rows (from the first row on), calls, tokens, cache hits, retries by cause."""
        total = self.meter.total()
        parts = []
        if self._work is not None and self._work.unit == "rows":
            parts.append(f"accepted {self.status['accepted']:,}, rejected {self.status['rejected']:,}, "
                         f"failed {self.status['failed']:,}")
        parts.append(f"calls {total.calls:,}")
        tokens = f"tokens {total.prompt_tokens + total.completion_tokens:,}"
        # Reasoning models bill thinking as completion tokens nobody sees: say how much of it there was.
        parts.append(tokens + (f" (reasoning {total.reasoning_tokens:,})" if total.reasoning_tokens else ""))
        parts.append(f"cache hits {total.cached_calls:,}")
        retries = sum(self.meter.retries.values())
        causes = ", ".join(f"{cause} {n}" for cause, n in self.meter.retries.most_common())
        parts.append(f"retries {retries}" + (f" ({causes})" if causes else ""))
        fails = ", ".join(f"{name} {n}" for name, n in self.failures.most_common(4))
        return " · ".join(parts) + (f" · failures: {fails}" if fails else "")

    def _eta(self) -> float | None:
        work = self._work
        if work is None:
            return None
        if not work.optimise:
            return work.eta()
        # Optimisation: the mean paid step times the steps left (minus the current step's time so far).
        opt = self._opt
        paid = opt.get("paid_steps") or []
        if not paid:
            return work.eta()
        mean = sum(paid) / len(paid)
        left = opt["steps"] - opt.get("finished", opt["step"] - 1)
        in_step = time.monotonic() - opt["step_started"] if opt.get("phase") != "step_done" else 0.0
        return max(0.0, left * mean - in_step)

    def _rate(self) -> str:
        work = self._work
        rate = work.rate() if work is not None else None
        if work is None or rate is None or not work.unit:
            return ""
        return f"{rate:.1f} {work.unit}/s"

    def _headline(self) -> str:
        work = self._work
        if work is None:
            return ""
        if not work.optimise:
            return work.title
        opt = self._opt
        what = _PHASES.get(opt.get("phase", ""), opt.get("phase", ""))
        detail = opt.get("detail")
        return f"{work.title} · {what}" + (f" {detail}" if detail else "")

    def plain_line(self) -> str:
        with self._lock:
            work = self._work
            if work is None:
                return ""
            count = ""
            if work.total is not None:
                pct = f" ({100 * work.done / work.total:.0f}%)" if work.total else ""
                count = f"{work.done:,}/{work.total:,} {work.unit}{pct}"
            elif work.unit:
                count = f"{work.done:,} {work.unit}"
            elapsed = _clock(time.monotonic() - work.started)
            eta = self._eta()
            shown_eta = f"ETA {_clock(eta)}" if eta is not None or work.total is not None or work.optimise else ""
            fields = [f for f in (count, self._rate(), f"elapsed {elapsed}", shown_eta, self.stats_line()) if f]
            return f"[{time.strftime('%H:%M:%S')}] {self._headline()}: " + " · ".join(fields)

    def _refresh(self) -> None:
        if self._progress is None or self._task is None:
            return
        with self._lock:
            work = self._work
            counted = (f" {work.done}/{work.total}" if work is not None and work.unit == "dev verdicts"
                       and work.total else "")
            fields = {"rate": self._rate(), "eta": _clock(self._eta()), "stats": self.stats_line(),
                      "description": self._headline() + counted}
        self._progress.update(self._task, **fields)

    def _tick(self) -> None:
        last_line = time.monotonic()
        while not self._stop.wait(_LIVE_REFRESH_S if self.live else min(self.interval_s, _LIVE_REFRESH_S)):
            if self.live:
                self._refresh()
                continue
            now = time.monotonic()
            if now - last_line >= self.interval_s:
                last_line = now
                line = self.plain_line()
                if line:
                    print(line, file=self.stream, flush=True)
