"""The optimizer's fan-outs (`optimization.fanout.all_of`): a failed branch cancels its siblings
before the failure reaches the caller, which `asyncio.gather` does not do (its other branches go on
paying for model calls after the step has failed), and the failure arrives as itself."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from autoevol.errors import BudgetExhausted
from autoevol.methods import load_method
from autoevol.optimization.fanout import all_of
from autoevol.optimization.propose import Case, Proposer, Trajectory
from autoevol.types import Completion, Message, Usage

TRAJECTORY = Trajectory((Case(0, ("Add 2 and 3.", "Add 2 and 3, then double it.")),))


class Optimizer:
    """Sample 0 fails at once; every other sample waits for an answer that never comes."""

    def __init__(self, failure: BaseException | None) -> None:
        self.failure = failure
        self.waiting: set[int] = set()
        self.cancelled: set[int] = set()
        self.answered: set[int] = set()

    async def chat(self, messages: list[Message], *, phase: str, **params: Any) -> Completion:
        index = params["sample_index"]
        if index == 0 and self.failure is not None:
            await asyncio.sleep(0)  # the siblings are all under way first
            raise self.failure
        self.waiting.add(index)
        try:
            await asyncio.sleep(0.05 if self.failure is None else 3600)
        except asyncio.CancelledError:
            self.cancelled.add(index)
            raise
        self.answered.add(index)
        return Completion(text="", finish_reason="stop", usage=Usage(1, 1), model="opt")


def proposer(optimizer: Optimizer) -> Proposer:
    return Proposer(optimizer, temperature=1.0, top_p=1.0, max_tokens=64, hygiene=True)  # type: ignore[arg-type]


async def test_a_failed_proposal_cancels_the_others_and_is_raised_as_itself() -> None:
    optimizer = Optimizer(BudgetExhausted("max_calls reached"))
    with pytest.raises(BudgetExhausted, match="max_calls reached"):
        await proposer(optimizer).propose(4, TRAJECTORY, load_method("initial"), 1)
    # By the time the caller hears of the failure, the other three have stopped (gather: none has).
    assert optimizer.waiting == {1, 2, 3}
    assert optimizer.cancelled == {1, 2, 3}


async def test_without_a_failure_every_proposal_finishes_in_order() -> None:
    optimizer = Optimizer(None)
    candidates = await proposer(optimizer).propose(4, TRAJECTORY, load_method("initial"), 1)
    assert [c.index for c in candidates] == [0, 1, 2, 3]
    assert [c.rejected for c in candidates] == ["empty_feedback"] * 4
    assert optimizer.cancelled == set() and optimizer.answered == {0, 1, 2, 3}


async def test_results_keep_the_branches_order_not_the_finishing_order() -> None:
    async def after(delay: float, value: int) -> int:
        await asyncio.sleep(delay)
        return value

    assert await all_of([after(0.03, 1), after(0.0, 2), after(0.01, 3)]) == [1, 2, 3]
    assert await all_of([]) == []


@pytest.mark.parametrize("order", [(KeyError, ValueError), (ValueError, KeyError)])
async def test_of_two_failures_in_one_moment_the_first_is_the_one_raised(order: tuple[type[Exception], ...]) -> None:
    async def fail(error: type[Exception]) -> None:
        raise error("no await before it: both branches fail in the same loop iteration")

    with pytest.raises(order[0]):
        await all_of([fail(order[0]), fail(order[1])])
