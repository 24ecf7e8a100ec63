"""One endpoint = one model server (or one embedded model): its concurrency budget, retry policy
and per-request deadline. Every phase and every nested loop that talks to that server goes through
the same `Endpoint`, so the number of requests in flight never exceeds the budget however the
work is nested.

Concurrency adapts: sustained congestion halves the live limit (never below 1) and each run of
successes raises it by one again, up to the configured maximum (additive increase, multiplicative
decrease). Congestion is a 429 *or* a request deadline expiring: a server whose queue is longer than
the deadline answers nobody in time, and every abandoned request still costs it the work. Only
answers to requests sent at the current limit count, so one burst of failures from the old, higher
limit halves it once, not once per failure.

Retries of timed-out requests draw on a budget proportional to the work (first attempts): a retry
storm can never outgrow the work itself. Past it, the request fails at once with advice.

Two kinds of server stall stop the run instead of one row at a time (`StalledServerError`, resumable):
a `Retry-After` above `RetryPolicy.max_retry_after_s`, and, with `stall_after_timeouts = K`, K request
deadlines expiring before the server ever answered (it accepts connections and says nothing). Requests
go out `concurrency` at a time, so the second case costs about ceil(K / concurrency) deadlines, at most
K; every request still waiting for a slot then fails at once. A body that is no usable completion
(`MalformedReplyError`) that repeats (the same reason, e.g. invalid UTF-8 at the same place) is asked
again `malformed_retries` times only: from a T = 0 model it is deterministic, and the row fails like a
rejected request. Different malformed bodies (a connection cut at another byte each time) are
transient and get the ordinary retries: failing the row on them would make its outcome depend on luck.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from autoevol.errors import (
    BackendError,
    DeadlineExceeded,
    MalformedReplyError,
    ModelNotFoundError,
    RateLimitError,
    StalledServerError,
    is_retryable,
)
from autoevol.llm.base import Backend
from autoevol.types import Completion, CompletionRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    #: The longest Retry-After we honour; beyond it the server is effectively down and the run stops.
    max_retry_after_s: float = 300.0
    #: Extra attempts for a body that is no usable completion for the same reason again (a model's output).
    malformed_retries: int = 1
    #: Stop everything after this many deadline expiries with no answer yet (None: never; the pool sets it).
    stall_after_timeouts: int | None = None
    #: Congestion signals (429s, deadline expiries) within `window_s` before the live concurrency is halved.
    throttle_after: int = 2
    window_s: float = 10.0
    #: Deadline retries allowed: this share of the requests made so far, plus a fixed allowance.
    deadline_retry_ratio: float = 0.5
    deadline_retry_floor: int = 8

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        # Full jitter on an exponential ramp; a server's Retry-After is a floor, not a suggestion.
        ramp = min(self.max_delay_s, self.base_delay_s * (2**attempt))
        wait = ramp * (0.5 + rng.random() / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after_s))
        return wait


class AdaptiveLimiter:
    """A semaphore whose limit can shrink and grow while tasks hold it.

    Waiters queue in FIFO order and a freed slot is handed to exactly one of them: with hundreds
    waiting, waking them all to re-check a condition (what `asyncio.Condition.notify_all` does)
    would cost O(waiters) per finished request on the event loop.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"concurrency must be >= 1, got {limit}")
        self.max_limit = limit
        self.limit = limit
        self.in_flight = 0
        self.peak_in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._successes = 0
        #: Bumped by every decrease: tells an answer to a request sent before it from a current one.
        self.epoch = 0

    async def __aenter__(self) -> None:
        if self.in_flight < self.limit and not self._waiters:
            self._take()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # resolved by `_hand_over`, which has already counted the slot as ours
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give_back()  # handed a slot at the moment we were cancelled: pass it on
            elif waiter in self._waiters:
                # `_hand_over` may already have popped (and skipped) this cancelled waiter.
                self._waiters.remove(waiter)
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._give_back()

    def _take(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _give_back(self) -> None:
        self.in_flight -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)

    def shrink(self) -> None:
        self.limit = max(1, self.limit // 2)
        self._successes = 0
        self.epoch += 1

    def success(self) -> None:
        if self.limit >= self.max_limit:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._hand_over()


class Endpoint:
    """Wraps a backend with the shared budget, deadline and retries."""

    def __init__(
        self,
        backend: Backend,
        *,
        concurrency: int = 8,
        request_timeout_s: float = 120.0,
        retry: RetryPolicy | None = None,
        seed: int = 0,
    ) -> None:
        self.backend = backend
        self.request_timeout_s = request_timeout_s
        self.retry = retry or RetryPolicy()
        self.limiter = AdaptiveLimiter(concurrency)
        self._rng = random.Random(seed)
        self._congestion: list[float] = []
        self.requests = 0  # first attempts: the work
        self.deadline_retries = 0
        self.answered = 0  # attempts that got a completion
        self._silent_timeouts = 0  # deadline expiries before the first answer
        self._stalled: str | None = None  # why the server counts as silent, once it does
        #: Told of every error about to be retried (the pool counts them by cause in the usage meter).
        self.on_retry: Callable[[BackendError], None] | None = None
        #: Where the key is, for the model list a 404 answers with (set by the pool; the backend keeps it private).
        self.api_key_env: str | None = None
        self._not_found_hint: str | None = None

    @property
    def identity(self) -> str:
        return self.backend.identity

    @property
    def where(self) -> str:
        """The server's URL (credentials are refused in base URLs), or the identity of an embedded model."""
        url = getattr(self.backend, "base_url", None)
        return url if isinstance(url, str) else self.identity

    async def complete(self, request: CompletionRequest, *, on_send: Callable[[], None] | None = None) -> Completion:
        """The completion, with retries. `on_send` runs once the request holds a concurrency slot, right
        before each attempt goes out; whatever it raises is raised here (the slot is given back)."""
        attempt = 0
        malformed: dict[str, int] = {}  # reason -> times seen for this request
        self.requests += 1
        while True:
            try:
                return await self._attempt(request, on_send)
            except BackendError as error:
                if isinstance(error, ModelNotFoundError):
                    raise await self._explain_not_found(error) from None
                if not is_retryable(error):
                    raise
                if attempt >= self.retry.max_retries or _repeats(error, malformed) > self.retry.malformed_retries:
                    # Retried and still failing: say how often and where (with retries off, the error is plain).
                    raise (_gave_up(error, attempt + 1, self.where) if attempt else error) from None
                self._check_stall(error)  # before waiting: a wait that long, or for nobody, stops the run
                if isinstance(error, DeadlineExceeded):
                    allowed = self.retry.deadline_retry_floor + self.retry.deadline_retry_ratio * self.requests
                    if self.deadline_retries >= allowed:
                        raise _gave_up(error, attempt + 1, self.where, (
                            f"the retry budget for timeouts is spent: {self.deadline_retries} retries for "
                            f"{self.requests} requests")) from None
                    self.deadline_retries += 1
                if self.on_retry is not None:
                    self.on_retry(error)
                retry_after = getattr(error, "retry_after", None)
                wait = self.retry.delay(attempt, self._rng, retry_after)
                log.info("retrying after %s (attempt %d, waiting %.2fs)", type(error).__name__, attempt + 1, wait)
                attempt += 1
                await asyncio.sleep(wait)

    def _check_stall(self, error: BackendError) -> None:
        """Raise `StalledServerError` when `error` says the server will not answer in useful time."""
        if self._stalled is not None:
            raise StalledServerError(self._stalled)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after > self.retry.max_retry_after_s:
            raise StalledServerError(
                f"the server asks to wait {retry_after:.0f} s before the next request ({self.where}; autoevol "
                f"waits at most {self.retry.max_retry_after_s:g} s): run the same command again later to resume")
        limit = self.retry.stall_after_timeouts
        if isinstance(error, DeadlineExceeded) and not self.answered and limit is not None:
            self._silent_timeouts += 1
            if self._silent_timeouts >= limit:
                self._stalled = (
                    f"{self.where} accepts connections but answered none of the first {self._silent_timeouts} "
                    f"requests within the {self.request_timeout_s:g}s request deadline; check the server (or "
                    "raise --request-timeout for a slow one), then run the same command again to resume")
                raise StalledServerError(self._stalled)

    async def _explain_not_found(self, error: ModelNotFoundError) -> ModelNotFoundError:
        """A 404 with what the server does serve (asked once per endpoint), e.g. a base URL missing /v1."""
        url = getattr(self.backend, "base_url", None)
        if not isinstance(url, str):
            return error
        if self._not_found_hint is None:
            from autoevol.llm.hints import not_found_hint

            self._not_found_hint = await not_found_hint(url, self.api_key_env)
        if self._not_found_hint and self._not_found_hint not in str(error):
            error.args = (f"{error}; {self._not_found_hint}",)
        return error

    async def _attempt(self, request: CompletionRequest, on_send: Callable[[], None] | None) -> Completion:
        async with self.limiter:
            if self._stalled is not None:
                # Waited for a slot while the server was found silent: do not send.
                raise StalledServerError(self._stalled)
            sent_at_epoch = self.limiter.epoch
            if on_send is not None:
                on_send()
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.request_timeout_s):
                    completion = await self.backend.complete(request)
            except TimeoutError as error:
                self._note_congestion(sent_at_epoch, "request deadlines expiring")
                raise DeadlineExceeded(
                    f"no answer within the {self.request_timeout_s:g}s request deadline from {self.where}; "
                    "if the server is busy, lower --concurrency or raise --request-timeout"
                ) from error
            except RateLimitError:
                self._note_congestion(sent_at_epoch, "rate limiting")
                raise
            self.limiter.success()
            self.answered += 1
        if not completion.latency_s:
            completion = replace(completion, latency_s=time.monotonic() - started)
        return completion

    def _note_congestion(self, sent_at_epoch: int, what: str) -> None:
        if sent_at_epoch != self.limiter.epoch:
            return  # sent under a limit already lowered since: that decrease answered it
        now = time.monotonic()
        self._congestion = [t for t in self._congestion if now - t < self.retry.window_s] + [now]
        if len(self._congestion) >= self.retry.throttle_after:
            self.limiter.shrink()
            self._congestion.clear()
            log.warning("sustained %s from %s: concurrency lowered to %d", what, self.where, self.limiter.limit)

    async def aclose(self) -> None:
        await self.backend.aclose()


def _repeats(error: BackendError, seen: dict[str, int]) -> int:
    """How many times this request has now met this malformed reply (0 for any other error)."""
    if not isinstance(error, MalformedReplyError):
        return 0
    reason = str(error)
    seen[reason] = seen.get(reason, 0) + 1
    return seen[reason]


def _gave_up(error: BackendError, attempts: int, where: str, why: str = "") -> BackendError:
    """`error`, its message saying how many attempts were made and where (same type, same retry hints)."""
    plural = "s" if attempts > 1 else ""
    error.args = (f"{error} (gave up after {attempts} attempt{plural} at {where}{'; ' + why if why else ''})",)
    error.attempts = attempts
    return error
