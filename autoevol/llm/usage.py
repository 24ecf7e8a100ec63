"""Usage accounting: calls, tokens, cached vs paid, per model and per phase.

Kept in memory by the process; runs persist snapshots in their event stream. Later stages read
it for progress bars and budgets (`Budget.check`).
"""

from __future__ import annotations

import asyncio
import collections
from collections import defaultdict
from dataclasses import asdict, dataclass

from autoevol.errors import BudgetExhausted, DeadlineExceeded, RateLimitError, ServerError, TransportError
from autoevol.types import Completion


@dataclass(slots=True)
class Counter:
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    errors: int = 0
    #: Included in completion_tokens already (OpenAI's convention); shown apart because nothing shows them.
    reasoning_tokens: int = 0

    @property
    def paid_calls(self) -> int:
        return self.calls - self.cached_calls

    @property
    def paid_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens - self.cached_tokens

    def add(self, completion: Completion) -> None:
        self.calls += 1
        self.prompt_tokens += completion.usage.prompt_tokens
        self.completion_tokens += completion.usage.completion_tokens
        self.reasoning_tokens += completion.usage.reasoning_tokens
        if completion.cached:
            self.cached_calls += 1
            self.cached_tokens += completion.usage.total_tokens

    def to_dict(self) -> dict[str, int]:
        return asdict(self) | {"paid_calls": self.paid_calls, "paid_tokens": self.paid_tokens}


def retry_cause(error: BaseException) -> str:
    """The short name a retry is counted under: what a user can act on (back off, fix the server...)."""
    if isinstance(error, RateLimitError):
        return "429"
    if isinstance(error, ServerError):
        return "5xx"
    if isinstance(error, DeadlineExceeded):
        return "timeout"
    if isinstance(error, TransportError):
        return "bad_body" if "malformed" in str(error) else "transport"
    return type(error).__name__


class UsageMeter:
    """Totals keyed by (model, phase), and retries by cause (an endpoint retries for every role on it)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Counter] = defaultdict(Counter)
        self.retries: collections.Counter[str] = collections.Counter()

    def record_retry(self, error: BaseException) -> None:
        """A failed attempt that is retried: invisible in the totals (the call succeeds or fails once)."""
        self.retries[retry_cause(error)] += 1

    def record(self, model: str, phase: str, completion: Completion) -> None:
        self._by_key[(model, phase)].add(completion)

    def record_error(self, model: str, phase: str) -> None:
        self._by_key[(model, phase)].errors += 1

    def total(self, *, model: str | None = None, phase: str | None = None) -> Counter:
        out = Counter()
        for (m, p), c in self._by_key.items():
            if (model is None or m == model) and (phase is None or p == phase):
                for name in ("calls", "cached_calls", "prompt_tokens", "completion_tokens", "reasoning_tokens"):
                    setattr(out, name, getattr(out, name) + getattr(c, name))
                out.cached_tokens += c.cached_tokens
                out.errors += c.errors
        return out

    def snapshot(self) -> list[dict[str, object]]:
        return [{"model": m, "phase": p, **c.to_dict()} for (m, p), c in sorted(self._by_key.items())]


class Budget:
    """Hard limits on paid calls and tokens, shared by every role; None means unlimited.

    A call counts from the moment it is sent, i.e. once it holds its endpoint's concurrency slot
    (`admit`), not while it waits for one: queued work cannot use up the budget, and calls sent
    concurrently cannot overshoot `max_calls`. Tokens are only known afterwards, so a token budget
    can be exceeded by what the calls in flight spend.

    A refused call should wait for `settled()` before it stops the run: the calls already sent
    finish, and so do the work units that were waiting for them.
    """

    def __init__(self, max_calls: int | None = None, max_tokens: int | None = None) -> None:
        self.max_calls, self.max_tokens = max_calls, max_tokens
        self.in_flight = 0  # sent, not yet recorded in the meter
        self.unsettled = 0  # sent, and the caller has not had the answer yet
        self._settled: asyncio.Event | None = None

    def check(self, meter: UsageMeter) -> None:
        total = meter.total()
        sent = total.paid_calls + self.in_flight
        if self.max_calls is not None and sent >= self.max_calls:
            raise BudgetExhausted(f"call budget reached: {sent} paid calls (max {self.max_calls})")
        if self.max_tokens is not None and total.paid_tokens >= self.max_tokens:
            raise BudgetExhausted(
                f"token budget reached: {total.paid_tokens} paid tokens (max {self.max_tokens})"
            )

    def admit(self, meter: UsageMeter) -> None:
        """A call is about to be sent: raise BudgetExhausted if it would pass a limit, else count it."""
        self.check(meter)
        self.in_flight += 1
        self.unsettled += 1
        self._event().clear()

    def release(self) -> None:
        """An admitted call is over: recorded in the meter as paid (just before this), or failed."""
        self.in_flight -= 1

    def settle(self) -> None:
        """The caller of an admitted call has its answer (or error), or is gone."""
        self.unsettled -= 1
        if self.unsettled == 0:
            self._event().set()

    async def settled(self) -> None:
        """Wait until every admitted call has been answered to its caller."""
        await self._event().wait()

    def _event(self) -> asyncio.Event:
        if self._settled is None:
            self._settled = asyncio.Event()
            self._settled.set()
        return self._settled
