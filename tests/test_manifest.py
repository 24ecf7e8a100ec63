"""Run directories written before the typed manifest (tests/data/old_runs, made at 3b49d14) still read
to the configuration hash they were written with, and resume to the bytes an uninterrupted run of
the same command writes today."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from autoevol.api import EvolveResult, evolve_async, resume_async, run_async
from autoevol.config import EvolveSettings, ExecSettings, OptimizeSettings, config_hash
from autoevol.data.source import DataSource
from autoevol.errors import ResumeMismatchError
from autoevol.llm.spec import Roles, parse_model_spec
from autoevol.methods import load_method
from autoevol.store.manifest import Manifest
from tests.support.optimize_script import Child, scripted_world

OLD_RUNS = Path(__file__).parent / "data" / "old_runs"
#: The generator's plan (tests/data/old_runs/make_fixtures.py.txt): the same replies, so the same rows.
PLAN = {"e0": [Child("a", 3), Child("b", 8)], "a": [Child("c", 1), Child("d", 6)]}
EXPORTS = {"run": ("alpaca",), "evolve": ("alpaca", "sharegpt")}
SEEDS = {"run": 24, "evolve": 12}


def roles() -> Roles:
    return Roles(evol=parse_model_spec("openai:evol", base_url="http://127.0.0.1:9/v1"),
                 optimizer=parse_model_spec("openai:opt", base_url="http://127.0.0.1:9/v1"))


def recorded(run_dir: Path) -> dict[str, object]:
    found: dict[str, object] = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return found


@pytest.mark.parametrize("name", ["run", "evolve"])
def test_an_old_manifest_reads_to_the_hash_it_was_written_with(name: str) -> None:
    run_dir = OLD_RUNS / name / "run"
    manifest, raw = Manifest.load(run_dir), recorded(run_dir)
    assert manifest.config() == raw["config"]
    assert config_hash(manifest.config()) == raw["config_hash"]
    assert (manifest.command, manifest.status, manifest.exports) == (name, "stopped", ())
    assert manifest.operational()["models"] == raw["operational"]["models"]  # type: ignore[index]


def copy_fixture(name: str, tmp_path: Path) -> Path:
    """The fixture in tmp, its recorded data path (a tmp path of the machine that made it) pointed here."""
    where = tmp_path / name
    shutil.copytree(OLD_RUNS / name, where)
    raw = recorded(where / "run")
    raw["operational"]["data"]["path"] = str(where / "data.jsonl")  # type: ignore[index]
    (where / "run" / "manifest.json").write_text(json.dumps(raw, indent=2), encoding="utf-8")
    return where


async def fresh(name: str, data: Path, out: Path) -> EvolveResult:
    """The fixture's command, uninterrupted, with today's code."""
    source, backends = DataSource(data), scripted_world(PLAN).backends
    exec_settings = ExecSettings(quiet=True, export=EXPORTS[name])
    if name == "run":
        return await run_async(source, roles=roles(), out=out,
                               settings=OptimizeSettings(dev_size=8, batch_size=3, steps=2, candidates=2),
                               evolve_settings=EvolveSettings(rounds=2), exec_settings=exec_settings,
                               backends=backends)
    return await evolve_async(source, methods=(load_method("initial"),), roles=roles(), out=out,
                              settings=EvolveSettings(rounds=2), exec_settings=exec_settings, backends=backends)


def outputs(run_dir: Path, name: str) -> dict[str, bytes]:
    names = ["evolved.jsonl", "rejected.jsonl", *(f"evolved.{fmt}.jsonl" for fmt in EXPORTS[name])]
    return {file: (run_dir / "output" / file).read_bytes() for file in names}


@pytest.mark.parametrize("name", ["run", "evolve"])
async def test_an_old_stopped_run_resumes_to_the_bytes_of_an_uninterrupted_one(name: str, tmp_path: Path) -> None:
    where = copy_fixture(name, tmp_path)
    # Manifests of that time do not record --export (the bug this manifest fixes): it is given again.
    again = ExecSettings(quiet=True, export=EXPORTS[name])
    result = await resume_async(where / "run", again, backends=scripted_world(PLAN).backends)
    assert isinstance(result, EvolveResult)
    first = result.summary["rounds"][0]
    assert first["inputs"] == SEEDS[name] == first["accepted"] + first["rejected"] + first["failed"]
    assert (Manifest.load(where / "run").status, Manifest.load(where / "run").exports) == ("finished", EXPORTS[name])
    assert {f"export_{fmt}" for fmt in EXPORTS[name]} <= set(result.summary["files"])
    uninterrupted = await fresh(name, where / "data.jsonl", tmp_path / "fresh")
    assert outputs(where / "run", name) == outputs(uninterrupted.run_dir, name)


async def test_an_old_run_whose_data_changed_refuses_naming_the_file(tmp_path: Path) -> None:
    where = copy_fixture("evolve", tmp_path)
    with open(where / "data.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"instruction": "one more"}\n')
    with pytest.raises(ResumeMismatchError, match=r"the content of .*data\.jsonl changed since the run started"):
        await resume_async(where / "run", ExecSettings(quiet=True), backends=scripted_world(PLAN).backends)


@pytest.mark.parametrize("damage", ["missing", "not-json", "no-models"])
def test_a_manifest_that_cannot_be_read_says_why(damage: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(OLD_RUNS / "evolve" / "run", run_dir)
    path = run_dir / "manifest.json"
    if damage == "missing":
        path.unlink()
        expected = "is not an autoevol run directory (no manifest.json)"
    elif damage == "not-json":
        path.write_text('{"schema_version": 2, "comm', encoding="utf-8")
        expected = "is damaged (not a JSON object)"
    else:
        raw = recorded(run_dir)
        del raw["operational"]
        path.write_text(json.dumps(raw), encoding="utf-8")
        expected = "is damaged (KeyError"
    with pytest.raises(ResumeMismatchError, match=re.escape(expected)):
        Manifest.load(run_dir)
