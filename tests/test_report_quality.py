"""quality.py's memo: a finished run asks the same question twice (summary.json, then the report)
and must pay for it once, however the caller spells the arguments."""

from __future__ import annotations

from typing import Any

import pytest

import autoevol.quality.figures as quality


def test_one_question_spelt_two_ways_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = quality.contamination

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(quality, "contamination", counted)
    rows = [{"id": "r1", "instruction": "A question asked only by this test, spelt two ways."}]
    first = quality.contaminated(rows)
    assert quality.contaminated(rows, None) == first
    assert quality.contaminated(rows, benchmarks=None) == first
    assert len(calls) == 1
    first["overlaps"].clear()  # a caller's edit does not reach the remembered answer
    assert quality.contaminated(rows)["overlaps"]
