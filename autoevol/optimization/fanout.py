"""Concurrent fan-out for the optimizer's steps: every branch runs at once, and a failed branch
cancels its siblings.

`asyncio.gather` returns the first failure but leaves the other branches running, still paying for
model calls and still writing to the run's state after the step has failed. An `asyncio.TaskGroup`
cancels them and waits until they have stopped; `all_of` puts it behind gather's face (results in
order, the first failure raised as itself) so a caller's `except BudgetExhausted` still matches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


async def all_of(branches: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """The results of `branches`, in order. The first branch to fail cancels the others; once they
    have stopped its exception is raised, unwrapped from the TaskGroup's ExceptionGroup."""
    error: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(branch) for branch in branches]
    except BaseExceptionGroup as grouped:
        error = _first(grouped)
    if error is not None:
        # Raised outside the handler, so the group is not chained on as "during handling of...".
        raise error
    return [task.result() for task in tasks]


def _first(grouped: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first failure in a (possibly nested) group: the TaskGroup records them as they happen."""
    first = grouped.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
