"""A small finished `run` (2 optimisation steps, 2 evolution rounds) made with the scripted world,
whose data carries HTML-injection strings, for the report tests and the screenshot."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from autoevol.api import Roles, run_async
from autoevol.config import EvolveSettings, ExecSettings, OptimizeSettings
from autoevol.data.source import DataSource
from autoevol.llm.spec import parse_model_spec
from tests.support.optimize_script import Child, scripted_world

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PLAN = {"e0": [Child("a", 3), Child("b", 8), Child(kind="no_block")], "a": [Child("c", 1), Child("d", 6)]}


def write_data(path: Path, n: int = 30) -> Path:
    """`Question i: ...` rows (the scripted world's shape); two carry injection strings."""
    rows = []
    for i in range(n):
        extra = f" {SCRIPT}" if i == 1 else (f" {IMG}" if i == 2 else "")
        rows.append({"instruction": f"Question {i}: Tom has {i + 3} apples and eats 2.{extra} How many are left?",
                     "output": f"{i + 1} apples."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_run(tmp: Path) -> Path:
    """The run directory; AUTOEVOL_HOME should point into `tmp` (the response cache lives there)."""
    data = write_data(tmp / "data.jsonl")
    out = tmp / "run"
    roles = Roles(evol=parse_model_spec("openai:evol", base_url="http://127.0.0.1:9/v1"),
                  optimizer=parse_model_spec("openai:opt", base_url="http://127.0.0.1:9/v1"))
    world = scripted_world(PLAN)
    asyncio.run(run_async(
        DataSource(data), roles=roles, out=out,
        settings=OptimizeSettings(dev_size=10, batch_size=3, steps=2, candidates=3),
        evolve_settings=EvolveSettings(rounds=2), exec_settings=ExecSettings(quiet=True), backends=world.backends,
    ))
    return out
