"""Screening (SPEC §7.3) must select exactly what full dev scoring selects.

The worlds here give each method an explicit set of failing dev items, chosen so that the ranking
on the screening slice (the first `screen_size` dev items) disagrees with the ranking on the whole
dev set. In the nested world of the other loop tests the two rankings always agree, so a shortcut
that drops the true argmin cannot be seen there.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from autoevol.api import Roles, optimize_async
from autoevol.config import EvolveSettings, ExecSettings, OptimizeSettings, evolve_settings, optimize_settings
from autoevol.data.source import DataSource
from autoevol.llm.spec import parse_model_spec
from autoevol.optimization.job import OptimizeOutcome, read_split
from autoevol.optimization.score import Score
from autoevol.optimization.select import Entry, screen, select
from tests.support.optimize_script import Child, scripted_world, write_data

ROLES = Roles(
    evol=parse_model_spec("openai:evol", base_url="http://127.0.0.1:9/v1"),
    optimizer=parse_model_spec("openai:opt", base_url="http://127.0.0.1:9/v1"),
)
DEV, SCREEN = 10, 5
SMALL = {"dev_size": DEV, "batch_size": 3, "steps": 1, "candidates": 4}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_data(tmp_path / "data.jsonl", 40)


def dev_questions(data: Path, settings: OptimizeSettings, seed: int) -> tuple[list[int], list[int]]:
    """(slice, rest): the question numbers of the dev set, split where screening cuts it."""
    split = read_split(DataSource(data), settings, seed)
    numbers = [int(re.search(r"Question (\d+):", s.instruction).group(1)) for s in split.dev]  # type: ignore[union-attr]
    return numbers[:SCREEN], numbers[SCREEN:]


def run(
    data: Path, out: Path, monkeypatch: pytest.MonkeyPatch, plan: Mapping[str, Sequence[Child]],
    failing: Mapping[str, Sequence[int]], settings: OptimizeSettings, evolve: EvolveSettings,
) -> tuple[int, OptimizeOutcome, dict[str, Any]]:
    monkeypatch.setenv("AUTOEVOL_HOME", str(out.parent / f"home-{out.name}"))  # every call is paid
    world = scripted_world(plan, failing=failing)
    outcome = asyncio.run(optimize_async(
        DataSource(data), roles=ROLES, out=out, settings=settings, evolve_settings=evolve,
        exec_settings=ExecSettings(quiet=True), backends=world.backends,
    ))
    step = json.loads((out / "output" / "optimization.json").read_text(encoding="utf-8"))["steps"][0]
    return world.evol.calls, outcome, step


def compare(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plan: Mapping[str, Sequence[Child]],
    failing: Mapping[str, Sequence[int]], preset: str,
) -> tuple[tuple[int, OptimizeOutcome, dict[str, Any]], tuple[int, OptimizeOutcome, dict[str, Any]]]:
    results = []
    for name, size in (("full", None), ("screen", SCREEN)):
        settings = optimize_settings(preset, **(SMALL | {"screen_size": size}))
        results.append(run(data, tmp_path / name, monkeypatch, plan, failing, settings, evolve_settings(preset)))
    return results[0], results[1]


PLAN = {"e0": [Child("a"), Child("b"), Child("c"), Child("d", length=120)]}


def test_screening_keeps_the_argmin_when_the_incumbent_competes(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, r = dev_questions(data, optimize_settings("default", **SMALL), seed=0)
    failing = {
        "e0": s[:1] + r[:3],  # slice 1, full 4
        "a": r[:5],           # slice 0, full 5
        "b": s[:1] + r[:1],   # slice 1, full 2: worse than e0 nowhere, but no better on the slice
        "c": s + r[:1],       # slice 5, full 6: can be dropped after the slice
        "d": s[:2],           # slice 2, full 2: worse than e0 on the slice, ties b on λ, longer answers
    }
    (full_calls, full, full_step), (calls, screened, step) = compare(
        data, tmp_path, monkeypatch, PLAN, failing, "default")
    assert full_step["selected"] == 3 and full_step["lambda"] == 0.2  # d wins b's tie on length ratio
    assert (step["selected"], step["lambda"], screened.best.id) == (3, 0.2, full.best.id)
    # c is dropped: its slice failures alone (5) exceed e0's full count (4). d is not dropped
    # although its slice failures (2) equal the best full count then known (b's 2): it could tie.
    assert [x["index"] for x in step["screened_out"]] == [2]
    assert calls < full_calls


def test_screening_keeps_the_argmin_when_the_incumbent_does_not_compete(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, r = dev_questions(data, optimize_settings("paper", **SMALL), seed=0)
    failing = {
        "e0": s[:1],          # slice 1: not in the competition, so it must not be the bar
        "a": s[:1] + r,       # slice 1, full 6
        "b": s[:3],           # slice 3, full 3: the argmin
        "c": s,               # slice 5, full 5: dropped once b's full count is known
        "d": s[1:4],          # slice 3, full 3: ties b, loses on the index
    }
    (full_calls, full, full_step), (calls, screened, step) = compare(
        data, tmp_path, monkeypatch, PLAN, failing, "paper")
    assert full_step["selected"] == 1 and full_step["lambda"] == 0.3
    assert (step["selected"], step["lambda"], screened.best.id) == (1, 0.3, full.best.id)
    assert [x["index"] for x in step["screened_out"]] == [2]
    assert calls < full_calls


def test_screening_spends_fewer_calls_in_the_nested_world_too(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nested world (item i fails iff i % 10 < q): good (q0) is scored first and its 0 failures
    # drop every candidate that fails any slice item.
    plan = {"e0": [Child("bad1", 10), Child("good", 0), Child("bad2", 10, length=44), Child("meh", 3)]}
    results = {}
    for name, size in (("full", None), ("screen", 3)):
        settings = OptimizeSettings(**(SMALL | {"screen_size": size}))
        results[name] = run(data, tmp_path / name, monkeypatch, plan, {}, settings, EvolveSettings())
    (full_calls, full, full_step), (calls, screened, step) = results["full"], results["screen"]
    assert screened.best.id == full.best.id and step["selected"] == full_step["selected"] == 1
    assert screened.best_lambda == full.best_lambda == 0.0
    dropped = {x["index"]: x for x in step["screened_out"]}
    assert {0, 2} <= set(dropped) and all(x["bound"] == 0 for x in dropped.values())
    assert dropped[0]["slice_failures"] == 3 and dropped[0]["slice_size"] == 3
    assert full_step["screened_out"] == []
    survivors = len(step["scores"]) - 1  # full-scored candidates, without the incumbent
    # Full: trajectory 3 + (4 candidates + incumbent) x 10 dev x 2 calls. Screening: the incumbent's
    # full dev set, the slice (3 items) for every candidate, the other 7 only for the survivors.
    assert full_calls == 3 + 5 * 10 * 2
    assert calls == 3 + 10 * 2 + 4 * 3 * 2 + survivors * 7 * 2 < full_calls
    reasons = {c["index"]: (c["outcome"], c["why"]) for c in step["candidates"]}
    assert reasons[0][0] == "screened_out" and "failed 3 of the first 3 dev items" in reasons[0][1]
    assert reasons[1][0] == "selected"


def test_screening_without_a_competing_incumbent_selects_the_best_candidate(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Paper preset, every candidate worse than e0 on the slice: e0 is not the bar, so the
    # candidates are still full-scored and the step selects the argmin among them.
    plan = {"e0": [Child("a", 10), Child("b", 9, length=41), Child("c", 10, length=42)]}
    paper = optimize_settings("paper", **(SMALL | {"candidates": 3, "screen_size": 3}))
    _, outcome, step = run(data, tmp_path / "run", monkeypatch, plan, {}, paper, evolve_settings("paper"))
    assert "-1" not in step["scores"]
    best = min((v["lambda"], int(k)) for k, v in step["scores"].items())  # the paper's tie-break: index
    assert (step["lambda"], step["selected"]) == best
    assert outcome.best.id == step["candidates"][step["selected"]]["method_id"]


def test_screening_benchmark_runs_and_reports_the_ratio(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bench.screening import main

    monkeypatch.setenv("AUTOEVOL_HOME", str(tmp_path / "untouched"))
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.count("call ratio screening/full: 0.") == 2  # both presets saved calls
    assert out.count("selection equals full scoring: yes") == 2 and "NO" not in out
    assert os.environ["AUTOEVOL_HOME"] == str(tmp_path / "untouched")  # the benchmark restores it


def _score(failures: int, n: int, ratio: float = 1.0) -> Score:
    return Score("m", failures, n, 0.0, 1.0, ratio)


@pytest.mark.parametrize("tie_break", ["index", "length_ratio"])
@pytest.mark.parametrize("incumbent", [True, False])
def test_branch_and_bound_selects_what_full_scoring_selects(tie_break: str, incumbent: bool) -> None:
    rng = random.Random(f"{tie_break}{incumbent}")
    saved = 0
    for _ in range(400):
        n, m = rng.randint(2, 12), rng.randint(1, 6)
        k = rng.randint(1, n - 1)  # slice size
        fails = [{i for i in range(n) if rng.random() < rng.random()} for _ in range(m + 1)]
        ratios = [rng.choice([1.0, 2.0]) for _ in range(m + 1)]  # few values: ties on the proxy too
        full_scores = {j: _score(len(f), n, r) for j, (f, r) in enumerate(zip(fails, ratios, strict=True))}
        slices = {j: _score(len({i for i in fails[j] if i < k}), k) for j in range(m)}
        asked: list[int] = []

        async def full(indexes: Sequence[int], table: Mapping[int, Score] = full_scores,
                       log: list[int] = asked) -> list[Score]:
            log.extend(indexes)
            return [table[i] for i in indexes]

        inc = Entry(-1, full_scores[m]) if incumbent else None
        entries, dropped = asyncio.run(screen(slices, full, inc.score.failures if inc else None))
        everyone = [Entry(j, full_scores[j]) for j in range(m)] + ([inc] if inc else [])
        got = select(entries + ([inc] if inc else []), tie_break)
        want = select(everyone, tie_break)
        assert got == want
        assert sorted(asked + [d.index for d in dropped]) == list(range(m))  # each once, scored or dropped
        assert all(d.slice_failures > d.bound for d in dropped)
        saved += len(dropped)
    assert saved > 0
