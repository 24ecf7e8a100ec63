"""The fault-and-kill suite, CI-sized (the full one: `python -m bench.killsuite`, 20 kills).

`autoevol run` against the fake server failing 20 % of requests with HTTP 500, 20 % with 429, 5 % with
a truncated body and 3 % by hanging, SIGKILLed at seeded moments in the optimisation and in the evolve
phase, ends byte-identical to an uninterrupted run and re-pays at most the calls in flight at the kills.
"""

from __future__ import annotations

from pathlib import Path

from bench.killsuite import Settings, run_suite


def test_run_under_faults_and_sigkills_ends_identical_without_repaying(tmp_path: Path) -> None:
    report = run_suite(tmp_path, Settings(kills=3, seeds=12, steps=1, concurrency=8, request_timeout=1.0))
    print("\n".join(report.lines()))
    assert {k.phase for k in report.kills} == {"optimize", "evolve"}
    assert report.identical == {"evolved.jsonl": True, "rejected.jsonl": True, "best_method.json": True}
    assert 0 <= report.repaid <= report.in_flight_bound
    assert all(k.in_flight <= 8 for k in report.kills)  # never more than the endpoint's concurrency
    # summary.json counts every process: each resumed one, and the killed ones up to their last save.
    assert report.invocations >= len(report.kills) + report.completion_runs - 1
    assert report.summary_paid_calls >= report.reference_answers - report.in_flight_bound
