"""One real optimisation step on the embedded model (SmolLM2-135M): m = 2, dev = 4, batch 2.

A 135M model mostly fails at this, so the test checks the plumbing, not the quality: the step
record exists, each candidate has feedback or a recorded reason it was discarded, λ is a rate.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from autoevol.api import Roles, optimize_async
from autoevol.config import EvolveSettings, ExecSettings, OptimizeSettings
from autoevol.data.source import DataSource
from autoevol.llm.spec import parse_model_spec
from autoevol.store.manifest import Manifest

QUESTIONS = [
    "Tom has 5 apples and buys 3 more. How many apples does he have?",
    "A train travels 60 km in one hour. How far does it go in 3 hours?",
    "Sara reads 12 pages a day. How many pages does she read in a week?",
    "A box holds 6 eggs. How many eggs are in 4 boxes?",
    "Mia had 20 dollars and spent 7. How much money is left?",
    "There are 3 cats and each has 4 legs. How many legs are there in total?",
    "A baker makes 24 rolls and sells half. How many rolls are left?",
    "Ben runs 2 miles every morning. How many miles does he run in 5 days?",
]


@pytest.mark.slow
def test_one_step_on_the_embedded_model(tmp_path: Path, bundled_model: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": q}) + "\n" for q in QUESTIONS), encoding="utf-8")
    local = parse_model_spec("local")
    settings = OptimizeSettings(steps=1, candidates=2, dev_size=4, batch_size=2, optimizer_max_tokens=256)
    evolve = EvolveSettings(evol_max_tokens=160, respond_max_tokens=48)
    outcome = asyncio.run(optimize_async(
        DataSource(data), roles=Roles(evol=local, optimizer=local), out=tmp_path / "run", settings=settings,
        evolve_settings=evolve, exec_settings=ExecSettings(quiet=True),
    ))

    run = tmp_path / "run"
    report = json.loads((run / "output" / "optimization.json").read_text(encoding="utf-8"))
    assert [s["step"] for s in report["steps"]] == [1]
    with closing(sqlite3.connect(f"file:{run / 'state.db'}?mode=ro", uri=True)) as db:
        kv = dict(db.execute("SELECT name, value FROM kv WHERE name IN ('opt/1/record', 'opt/1/trajectory')"))
    record, trajectory = json.loads(kv["opt/1/record"]), json.loads(kv["opt/1/trajectory"])
    assert len(trajectory) == 2
    assert Manifest.load(run).status == "finished"
    candidates = record["candidates"]
    assert [c["index"] for c in candidates] == [0, 1]
    for candidate in candidates:
        # Either the optimizer proposed a usable method (with the feedback that led to it) or the
        # candidate was discarded and the reason recorded.
        assert (candidate["method"] is not None and candidate["feedback"]) or candidate["rejected"]
    # The incumbent competes, so there is always at least one score and a selected λ.
    assert "-1" in record["scores"]
    for score in record["scores"].values():
        assert 0.0 <= score["lambda"] <= 1.0 and score["n"] == 4
        low, high = score["ci95"]
        assert 0.0 <= low <= score["lambda"] <= high <= 1.0
    assert record["lambda"] is not None and 0.0 <= record["lambda"] <= 1.0
    assert outcome.best_lambda == record["lambda"]
    assert (run / "output" / "best_method.json").exists()
