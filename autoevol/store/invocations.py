"""Every process that worked on a run directory, with its wall time and usage.

A run resumed after kills, stops or failures is several invocations. `summary.json` must account for
all of them (cost, retries, time), not for the last process alone, so each invocation keeps its
figures in the run's state (`kv` key "invocations") and refreshes them every 0.25 s while it runs: a
SIGKILL loses at most that much accounting. A run directory that holds nothing computed gets no
record, so a configuration mistake before the first unit still starts over cleanly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from autoevol.llm.usage import UsageMeter
from autoevol.store.run import RunDir

KEY = "invocations"
SAVE_EVERY_S = 0.25
#: Usage fields that identify an entry rather than count something.
_LABELS = ("model", "phase")


def merge_usage(snapshots: Iterable[Iterable[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Sum `UsageMeter.snapshot()` lists entry by entry (same model and phase); every numeric field
    is summed, so counters added to the meter later accumulate too."""
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    for snapshot in snapshots:
        for entry in snapshot:
            key = tuple(str(entry.get(label)) for label in _LABELS)
            _add(merged.setdefault(key, {label: entry.get(label) for label in _LABELS}), entry)
    return [merged[key] for key in sorted(merged)]


def _add(into: dict[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    for name, value in entry.items():
        if name not in _LABELS and isinstance(value, int | float) and not isinstance(value, bool):
            into[name] = into.get(name, 0) + value
    return into


class Invocations:
    """This process's record among the run's invocations; `totals()` sums them all."""

    def __init__(self, run: RunDir, command: str, meter: UsageMeter) -> None:
        self.run, self.meter = run, meter
        self._started = time.monotonic()
        self._index = len(self._stored())  # a killed process that never saved leaves no gap
        self._record: dict[str, Any] = {
            "command": command, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "status": "running", "seconds": 0.0, "usage": [],
        }

    def _stored(self) -> list[dict[str, Any]]:
        stored = self.run.state.read(KEY, [])
        return stored if isinstance(stored, list) else []

    def save(self, status: str | None = None) -> None:
        """Refresh this invocation's figures in the run's state."""
        if status is not None:
            self._record["status"] = status
        self._record["seconds"] = round(time.monotonic() - self._started, 2)
        self._record["usage"] = self.meter.snapshot()
        self._record["retries"] = dict(self.meter.retries)
        if self.run.state.is_empty():
            return
        records = self._stored()[: self._index]
        self.run.state.set(KEY, [*records, self._record])

    async def keep_saving(self, every_s: float = SAVE_EVERY_S) -> None:
        while True:
            await asyncio.sleep(every_s)
            self.save()

    def totals(self, status: str) -> dict[str, Any]:
        """Wall time and usage of every invocation so far (this one as `status`), and the list of them."""
        self.save(status)
        records = [*self._stored()[: self._index], self._record]
        listed = []
        retries: dict[str, int] = {}
        for i, record in enumerate(records):
            # We hold the run's lock: an earlier record still "running" is a process that was killed.
            state = "killed" if record.get("status") == "running" and i < self._index else record.get("status")
            counts: dict[str, Any] = {}
            for entry in record.get("usage", []):
                _add(counts, entry)  # all models and phases of the invocation together
            _add(retries, record.get("retries") or {})
            listed.append({"command": record.get("command"), "started_at": record.get("started_at"),
                           "status": state, "seconds": record.get("seconds", 0.0), **counts,
                           "retries": record.get("retries") or {}})
        return {
            "seconds": round(sum(float(r.get("seconds", 0.0)) for r in records), 2),
            "usage": merge_usage(r.get("usage", []) for r in records),
            # Attempts that failed and were retried, by cause (429, 5xx, timeout, transport, bad_body):
            # `usage` counts each call once, so a slow, flaky endpoint shows here and nowhere else.
            "retries": dict(sorted(retries.items())),
            "invocations": listed,
        }
