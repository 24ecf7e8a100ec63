"""Two bugs of the untyped manifest, each in the world where it fired: the report of an
`optimize`-only run lost its seed texts (it looked for the data path where the manifest no longer
keeps it), and `resume` forgot the run's `--export` formats (nothing recorded them)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from autoevol.api import evolve_async, optimize_async, resume_async
from autoevol.config import EvolveSettings, ExecSettings, OptimizeSettings
from autoevol.data.source import DataSource
from autoevol.errors import BudgetExhausted
from autoevol.llm.spec import Roles, parse_model_spec
from autoevol.methods import load_method
from autoevol.report.collect import read_run
from autoevol.store.manifest import Manifest
from tests.support.optimize_script import Child, scripted_world, write_data

PLAN = {"e0": [Child("a", 3), Child("b", 8)]}


def roles() -> Roles:
    return Roles(evol=parse_model_spec("openai:evol", base_url="http://127.0.0.1:9/v1"),
                 optimizer=parse_model_spec("openai:opt", base_url="http://127.0.0.1:9/v1"))


def lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


async def _optimize_run(tmp_path: Path) -> Path:
    """A finished one-step `optimize` run on 30 seeds in `tmp_path/run`; returns its data file."""
    data = write_data(tmp_path / "data.jsonl", 30)
    await optimize_async(DataSource(data), roles=roles(), out=tmp_path / "run",
                         settings=OptimizeSettings(dev_size=10, batch_size=3, steps=1, candidates=2),
                         evolve_settings=EvolveSettings(), exec_settings=ExecSettings(quiet=True),
                         backends=scripted_world(PLAN).backends)
    return data


async def test_the_report_of_an_optimize_run_shows_every_seed_text(tmp_path: Path) -> None:
    data = await _optimize_run(tmp_path)
    seeds = read_run(tmp_path / "run").seeds
    texts = [json.loads(line)["instruction"] for line in data.read_text(encoding="utf-8").splitlines()]
    assert list(seeds.values()) == texts


async def test_the_report_of_an_optimize_run_whose_data_moved_is_still_made(tmp_path: Path) -> None:
    data = await _optimize_run(tmp_path)
    data.unlink()
    assert read_run(tmp_path / "run").seeds == {}  # nothing to show, and no error


@pytest.mark.parametrize("again", [(), ("alpaca",)], ids=["recorded", "given-again"])
async def test_a_resumed_run_keeps_its_exports(tmp_path: Path, again: tuple[str, ...]) -> None:
    data = write_data(tmp_path / "data.jsonl", 12)
    out = tmp_path / "run"
    world = scripted_world(PLAN)
    with pytest.raises(BudgetExhausted):
        await evolve_async(DataSource(data), methods=(load_method("initial"),), roles=roles(), out=out,
                           settings=EvolveSettings(),
                           exec_settings=ExecSettings(quiet=True, max_calls=6, export=("alpaca",)),
                           backends=world.backends)
    result = await resume_async(out, ExecSettings(quiet=True, export=again), backends=world.backends)
    evolved, alpaca = out / "output" / "evolved.jsonl", out / "output" / "evolved.alpaca.jsonl"
    assert lines(evolved) == lines(alpaca) > 0
    summary = json.loads((out / "output" / "summary.json").read_text(encoding="utf-8"))
    assert summary["files"]["export_alpaca"] and result.summary["files"] == summary["files"]
    assert "export_sharegpt" not in summary["files"]


async def test_a_resumed_run_started_without_exports_writes_none(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.jsonl", 12)
    out = tmp_path / "run"
    world = scripted_world(PLAN)
    with pytest.raises(BudgetExhausted):
        await evolve_async(DataSource(data), methods=(load_method("initial"),), roles=roles(), out=out,
                           settings=EvolveSettings(), exec_settings=ExecSettings(quiet=True, max_calls=6),
                           backends=world.backends)
    result = await resume_async(out, ExecSettings(quiet=True), backends=world.backends)
    assert not list((out / "output").glob("evolved.*.jsonl"))
    assert not [name for name in result.summary["files"] if name.startswith("export_")]


def test_exports_are_not_part_of_the_configuration(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.jsonl", 3)
    plain = Manifest.new("evolve", DataSource(data), roles(), EvolveSettings(), methods=(load_method("initial"),))
    exporting = replace(plain, exports=("alpaca", "sharegpt"))
    assert exporting.config_hash == plain.config_hash
    assert exporting.operational()["exports"] == ["alpaca", "sharegpt"]
    assert replace(plain, evolve=EvolveSettings(rounds=2)).config_hash != plain.config_hash
