"""The endpoint's concurrency limiter: a freed slot goes to exactly one waiter, first come first
served; a cancelled waiter never keeps or loses a slot; a raised limit admits waiters at once."""

from __future__ import annotations

import asyncio

from autoevol.llm.endpoint import AdaptiveLimiter


async def _hold(limiter: AdaptiveLimiter, name: str, order: list[str], release: asyncio.Event) -> None:
    async with limiter:
        order.append(name)
        await release.wait()


async def test_waiters_are_admitted_in_arrival_order_one_slot_each() -> None:
    limiter, order, release = AdaptiveLimiter(2), [], asyncio.Event()
    tasks = [asyncio.create_task(_hold(limiter, f"t{i}", order, release)) for i in range(6)]
    await asyncio.sleep(0)
    assert order == ["t0", "t1"] and limiter.in_flight == 2
    release.set()
    await asyncio.gather(*tasks)
    assert order == [f"t{i}" for i in range(6)]
    assert limiter.in_flight == 0 and limiter.peak_in_flight == 2


async def test_a_cancelled_waiter_neither_keeps_nor_loses_a_slot() -> None:
    limiter, order, release = AdaptiveLimiter(1), [], asyncio.Event()
    holder = asyncio.create_task(_hold(limiter, "holder", order, release))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(_hold(limiter, "cancelled", order, asyncio.Event()))
    after = asyncio.create_task(_hold(limiter, "after", order, release))
    await asyncio.sleep(0)
    waiting.cancel()  # still queued: it leaves the queue
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(holder, after)
    assert order == ["holder", "after"] and limiter.in_flight == 0

    # Cancelled in the instant after being handed a slot: the slot goes on to the next waiter.
    await limiter.__aenter__()
    unlucky = asyncio.create_task(_hold(limiter, "unlucky", order, asyncio.Event()))
    last = asyncio.create_task(_hold(limiter, "last", order, release))
    await asyncio.sleep(0)
    await limiter.__aexit__()  # never suspends: the slot is handed to `unlucky`, which has not run yet
    unlucky.cancel()
    await last
    assert order[-1] == "last" and "unlucky" not in order and unlucky.cancelled()
    assert limiter.in_flight == 0


async def test_a_raised_limit_admits_waiters_without_a_release() -> None:
    limiter, order, release = AdaptiveLimiter(4), [], asyncio.Event()
    limiter.shrink()  # 4 -> 2
    tasks = [asyncio.create_task(_hold(limiter, f"t{i}", order, release)) for i in range(3)]
    await asyncio.sleep(0)
    assert len(order) == 2
    limiter.success()
    limiter.success()  # two successes at limit 2: the limit rises to 3 and the third waiter goes in
    await asyncio.sleep(0)
    assert len(order) == 3 and limiter.limit == 3
    release.set()
    await asyncio.gather(*tasks)
