"""Budgets count a call when it is sent: `--max-calls N` makes exactly N requests (counted by the fake
server), calls in flight at the stop finish and are cached, the stop leaves readable partial outputs,
and `autoevol resume` continues, in budgeted chunks if asked, without paying for anything twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoevol.errors import BudgetExhausted
from autoevol.llm.cache import ResponseCache
from autoevol.llm.pool import ModelPool
from autoevol.llm.spec import parse_model_spec
from autoevol.llm.usage import Budget
from autoevol.types import user
from tests.fixtures.evolve_server import reply, run_cli, write_seeds
from tests.support.fake_openai_server import FakeOpenAIServer

SEEDS = 10


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    # Some latency, so the calls admitted by the budget are still in flight when it runs out.
    with FakeOpenAIServer(reply, latency_s=0.2) as running:
        yield running


def summary(run_dir: Path) -> dict[str, object]:
    return json.loads((run_dir / "output" / "summary.json").read_text(encoding="utf-8"))


def test_max_calls_makes_exactly_that_many_calls_and_resumes_in_chunks(
    tmp_path: Path, server: FakeOpenAIServer, autoevol_home: Path
) -> None:
    data = write_seeds(tmp_path / "seeds.jsonl", SEEDS)
    run_dir = tmp_path / "run"
    args = ["evolve", str(data), "--out", str(run_dir), "--model", "openai:fake", "--base-url", server.url, "-q"]

    first = run_cli([*args, "--max-calls", "3"], home=autoevol_home, cwd=tmp_path)
    assert first.returncode == 5, first.stderr
    assert server.requests == 3
    assert first.stderr.startswith("error: call budget reached: 3 paid calls (max 3); what is done is in ")
    assert f"`autoevol resume {run_dir}` continues" in first.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "stopped" and manifest["reason"].startswith("call budget reached")
    # Partial outputs, marked as such; the three calls sent were cached although their rows were cut off.
    stopped = summary(run_dir)
    assert stopped["stopped"]["resumable"] is True and "budget" in stopped["stopped"]["reason"]
    assert (run_dir / "output" / "evolved.jsonl").exists() and (run_dir / "output" / "rejected.jsonl").exists()
    # Three rewrites in flight at once, none of them answered: nothing could be finished within 3 calls.
    assert stopped["training_rows"] == stopped["rejected_or_failed_rows"] == 0
    cache = ResponseCache(autoevol_home / "cache.db")
    assert cache.stats().entries == 3
    cache.close()

    chunk = run_cli(["resume", str(run_dir), "-q", "--max-calls", "4"], home=autoevol_home, cwd=tmp_path)
    assert chunk.returncode == 5, chunk.stderr
    assert server.requests == 3 + 4  # the three cached rewrites were free
    # The units whose calls were in flight at the stop finished and were stored (their answers were sent).
    assert summary(run_dir)["training_rows"] == 3
    cache = ResponseCache(autoevol_home / "cache.db")
    assert cache.stats().entries == 7
    cache.close()

    done = run_cli(["resume", str(run_dir), "-q"], home=autoevol_home, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert server.requests == 2 * SEEDS  # a rewrite and an answer per seed, none paid twice
    final = summary(run_dir)
    assert "stopped" not in final and final["training_rows"] == SEEDS
    assert json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))["status"] == "finished"


async def test_a_cancelled_caller_does_not_lose_a_request_already_sent(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    spec = parse_model_spec("openai:fake", base_url=server.url, concurrency=1)
    async with ModelPool(cache=ResponseCache(tmp_path / "cache.db"), budget=Budget(max_calls=10)) as pool:
        llm = pool.llm(spec)
        sent = asyncio.create_task(llm.chat([user("sent")], phase="test"))
        queued = asyncio.create_task(llm.chat([user("queued")], phase="test"))
        while server.stats()["in_flight"] == 0:
            await asyncio.sleep(0.01)
        sent.cancel()
        queued.cancel()  # still waiting for the one concurrency slot: never sent
        await asyncio.gather(sent, queued, return_exceptions=True)
        await pool.drain()
        assert pool.meter.total().paid_calls == 1 == server.requests
        assert pool.budget is not None and (pool.budget.in_flight, pool.budget.unsettled) == (0, 0)
        again = await llm.chat([user("sent")], phase="test")
        assert again.cached and server.requests == 1


async def test_a_budget_stop_lets_sent_requests_finish_and_drops_queued_ones(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    spec = parse_model_spec("openai:fake", base_url=server.url, concurrency=2)
    async with ModelPool(cache=ResponseCache(tmp_path / "cache.db"), budget=Budget(max_calls=3)) as pool:
        llm = pool.llm(spec)

        answered = 0

        async def ask(i: int) -> None:
            nonlocal answered
            await llm.chat([user(f"question {i}")], phase="test")
            answered += 1

        with pytest.raises(ExceptionGroup) as caught:
            async with asyncio.TaskGroup() as group:
                for i in range(6):
                    group.create_task(ask(i))
        assert {type(e) for e in caught.value.exceptions} == {BudgetExhausted}
        # Two were sent at once (concurrency 2), the third after one finished; the 4th was refused, and
        # waited for the third to be answered before stopping the group: three callers got their answer.
        assert pool.meter.total().paid_calls == 3 == server.requests
        assert answered == 3
        assert pool.budget is not None and pool.budget.in_flight == 0
        assert pool.cache is not None and pool.cache.stats().entries == 3
