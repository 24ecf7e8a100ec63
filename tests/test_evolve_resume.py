"""Resumable evolve runs: a changed configuration refuses to resume, the same one skips finished
units, and a real `autoevol evolve` process killed with SIGKILL mid-run finishes, when run again,
with output identical to an uninterrupted run's.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autoevol.api import Roles, evolve_async
from autoevol.config import EvolveSettings, ExecSettings, config_hash
from autoevol.data.source import DataSource
from autoevol.errors import BudgetExhausted, ConfigError, DataError, ResumeMismatchError
from autoevol.llm.fake import ScriptedBackend
from autoevol.methods import load_method
from autoevol.methods.method import EvolvingMethod
from autoevol.store.manifest import SCHEMA_VERSION, Manifest
from autoevol.store.run import RunDir, StateDB
from tests.fixtures.evolve_server import CLI, REPO, cli_env, fake_server, run_cli, write_seeds
from tests.support.manifests import small_manifest
from tests.test_evolve_pipeline import EVOL, Script, run, write_jsonl

SEEDS = [{"id": f"r{i}", "instruction": f"Add {i} and {2 * i}", "output": str(3 * i)} for i in range(10)]


def files(run_dir: Path) -> dict[str, bytes]:
    out = run_dir / "output"
    return {name: (out / name).read_bytes() for name in ("evolved.jsonl", "rejected.jsonl")}


# -- configuration changes ----------------------------------------------------------------------------


async def test_changed_configuration_refuses_to_resume_naming_the_field(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "seeds.jsonl", SEEDS[:3])
    out = tmp_path / "run"
    await run(data, out, Script(), EvolveSettings(rounds=1))

    with pytest.raises(ResumeMismatchError) as caught:
        await run(data, out, Script(), EvolveSettings(rounds=2))
    message = str(caught.value)
    assert message == (f"{out} was started with a different configuration (changed: evolve.rounds 1 -> 2); "
                       "use the original settings to resume, or a new --out directory")

    with pytest.raises(ResumeMismatchError, match=r"\(changed: methods\);"):
        await run(data, out, Script(), methods=(load_method("weak"),))
    other_model = EVOL.model_copy(update={"model": "other"})
    with pytest.raises(ResumeMismatchError, match=r'changed: models\.evol\.model "openai:fake" -> "openai:other", '):
        await run(data, out, Script(), roles=Roles(evol=other_model))
    with pytest.raises(ResumeMismatchError, match=r'changed: data\.on_bad_row "fail" -> "skip"\)'):
        await run(data, out, Script(), on_bad_row="skip")
    # Operational knobs are not part of the configuration: a new deadline or concurrency resumes fine.
    faster = EVOL.model_copy(update={"concurrency": 2, "request_timeout": 5.0})
    backend = ScriptedBackend(Script())
    await run(data, out, backend, roles=Roles(evol=faster))
    assert backend.calls == 0


def test_run_dir_refuses_another_command_or_schema(tmp_path: Path) -> None:
    manifest = small_manifest(tmp_path / "seeds.jsonl")
    run_dir = RunDir.open(tmp_path / "run", manifest)
    run_dir.state.put("evolve|m|s|1", phase="evolve", round=1, seq=0, payload={})
    run_dir.close()
    with pytest.raises(ResumeMismatchError, match="holds an `autoevol evolve` run, not `optimize`"):
        RunDir.open(tmp_path / "run", replace(manifest, command="optimize"))
    manifest_path = tmp_path / "run" / "manifest.json"
    recorded = json.loads(manifest_path.read_text())
    assert (recorded["config_hash"], recorded["schema_version"]) == (config_hash(manifest.config()), SCHEMA_VERSION)
    manifest_path.write_text(json.dumps(recorded | {"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ResumeMismatchError, match=f"run schema {SCHEMA_VERSION + 1}"):
        RunDir.open(tmp_path / "run", manifest)
    with pytest.raises(ResumeMismatchError, match="not an autoevol run directory"):
        Manifest.load(tmp_path)


async def test_a_run_that_computed_nothing_starts_over_with_a_new_configuration(tmp_path: Path) -> None:
    empty = tmp_path / "seeds.jsonl"
    empty.write_text("")
    out = tmp_path / "run"
    with pytest.raises(DataError, match="no rows"):
        await run(empty, out, Script())
    backend = ScriptedBackend(Script())
    with pytest.raises(ConfigError, match="no evolving method given"):
        await run(write_jsonl(empty, SEEDS[:2]), out, backend, methods=())
    assert backend.calls == 0  # refused before paying for anything
    result = await run(empty, out, backend)  # the data and the settings changed, but nothing was lost
    assert result.summary["rounds"][0]["accepted"] == 2
    with pytest.raises(ResumeMismatchError):  # now there is something to protect
        await run(empty, out, backend, EvolveSettings(rounds=2))


async def test_rerun_retries_rows_that_failed_on_a_model_error_only(tmp_path: Path) -> None:
    rows = [*SEEDS[:3], {"id": "down", "instruction": "Explain snow [error]"},
            {"id": "stag", "instruction": "Name a bird [stagnant]"}]
    data = write_jsonl(tmp_path / "seeds.jsonl", rows)
    first = await run(data, tmp_path / "run", Script())
    assert first.summary["rounds"][0]["categories"] == {"model_error": 1, "stagnant_complexity": 1}

    class Recovered(Script):  # the server is back
        def evolve(self, method: EvolvingMethod, instruction: str) -> str:
            return super().evolve(method, instruction.replace("[error]", "[fixed]")).replace("[fixed]", "[error]")

    backend = ScriptedBackend(Recovered())
    second = await run(data, tmp_path / "run", backend)
    assert backend.calls == 2  # one rewrite + one answer for the failed row; the rejected one stays rejected
    assert second.summary["rounds"][0] == {"round": 1, "inputs": 5, "accepted": 4, "rejected": 1, "failed": 0,
                                           "categories": {"stagnant_complexity": 1}, "answer_cut": 0,
                                           "judge_unparsable": 0}
    evolved = [json.loads(line) for line in (tmp_path / "run/output/evolved.jsonl").read_text().splitlines()]
    assert [r["seed_id"] for r in evolved] == ["r0", "r1", "r2", "down"]


# -- same configuration ------------------------------------------------------------------------------


async def test_same_configuration_resumes_and_skips_finished_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_jsonl(tmp_path / "seeds.jsonl", SEEDS)
    settings = EvolveSettings(rounds=2, mix="all")
    reference = await run(data, tmp_path / "reference", Script(), settings)

    # A budget stops the first attempt part-way (cleanly, like any systemic error would). One request at a
    # time, so the 7 calls finish units instead of starting 7 units that each still need an answer.
    monkeypatch.setenv("AUTOEVOL_HOME", str(tmp_path / "home-1"))
    out = tmp_path / "run"
    first = ScriptedBackend(Script())
    one_at_a_time = Roles(evol=EVOL.model_copy(update={"concurrency": 1}))
    with pytest.raises(BudgetExhausted):
        await evolve_async(DataSource(data), methods=(load_method("initial"),), roles=one_at_a_time, out=out,
                           settings=settings, exec_settings=ExecSettings(quiet=True, max_calls=7),
                           backends={"evol": first})
    stored = StateDB(out / "state.db").count("evolve")
    assert 0 < stored < 2 * len(SEEDS)
    assert json.loads((out / "manifest.json").read_text())["status"] == "stopped"

    # A fresh response cache: only the state can spare the finished units.
    monkeypatch.setenv("AUTOEVOL_HOME", str(tmp_path / "home-2"))
    second = ScriptedBackend(Script())
    resumed = await run(data, out, second, settings)
    assert second.calls == 2 * (2 * len(SEEDS) - stored)  # every unit here is one rewrite + one answer
    assert files(out) == files(reference.run_dir)
    assert resumed.summary["rounds"] == reference.summary["rounds"]
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"

    third = ScriptedBackend(Script())
    await run(data, out, third, settings)
    assert third.calls == 0 and files(out) == files(reference.run_dir)


# -- kill -9 a real process -------------------------------------------------------------------------

N_SEEDS = 30
GATED_FROM = 12  # seeds from here on wait at the server until the gate file exists


def seed_tags(i: int) -> str:
    tags = ["[gated]"] if i >= GATED_FROM else []
    if i % 7 == 3:
        tags.append("[reject]")
    if i % 11 == 5:
        tags.append("[parse]")
    return " ".join(tags)


def evolve_args(url: str, out: str) -> list[str]:
    return ["evolve", "seeds.jsonl", "--model", "openai:fake", "--base-url", url, "--out", out,
            "--concurrency", "4", "--rounds", "2", "--quiet"]


def unit_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM units").fetchone()[0])
    except sqlite3.OperationalError:  # created but not migrated yet
        return 0


def start_and_kill(args: list[str], *, home: Path, cwd: Path, db: Path, at_least: int) -> int:
    """Start `autoevol ARGS`, SIGKILL it once `db` holds `at_least` units; returns the units stored."""
    log = (cwd / f"killed-{db.parent.name}.log").open("w")
    proc = subprocess.Popen([*CLI, *args], cwd=cwd, env=cli_env(home), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while unit_count(db) < at_least:
            if proc.poll() is not None:
                pytest.fail(f"autoevol exited ({proc.returncode}) before it could be killed: "
                            f"{(cwd / log.name).read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {at_least} units in {db} after 90 s")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        log.close()
    assert proc.returncode == -signal.SIGKILL
    return unit_count(db)


@dataclass(frozen=True)
class Reference:
    files: dict[str, bytes]
    parquet: pa.Table
    summary: dict[str, Any]
    paid_requests: int


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The uninterrupted run, with its own cache and server (so nothing is replayed from it)."""
    tmp = tmp_path_factory.mktemp("reference")
    write_seeds(tmp / "seeds.jsonl", N_SEEDS, seed_tags)
    with fake_server(latency=0.01) as server:
        done = run_cli(evolve_args(server.url, "runs/full"), home=tmp / "home", cwd=tmp)
        assert done.returncode == 0, done.stderr
    out = tmp / "runs" / "full" / "output"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rounds"][0]["inputs"] == N_SEEDS and summary["rounds"][0]["rejected"] > 0
    return Reference(files(out.parent), pq.read_table(out / "evolved.parquet"), summary, server.stats["requests"])


def test_sigkill_mid_run_then_rerun_matches_an_uninterrupted_run(tmp_path: Path, reference: Reference) -> None:
    write_seeds(tmp_path / "seeds.jsonl", N_SEEDS, seed_tags)
    total_units = sum(r["inputs"] for r in reference.summary["rounds"])
    home, gate, run_dir = tmp_path / "home", tmp_path / "gate", tmp_path / "runs" / "a"
    with fake_server(latency=0.01, gate=gate) as server:
        # Killed while gated requests hang at the server: some units are stored, the run cannot have finished.
        stored = start_and_kill(evolve_args(server.url, "runs/a"), home=home, cwd=tmp_path,
                                db=run_dir / "state.db", at_least=5)
        assert 5 <= stored <= GATED_FROM < total_units
        assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"
        assert not (run_dir / "output" / "evolved.jsonl").exists()
        gate.touch()
        again = run_cli(evolve_args(server.url, "runs/a"), home=home, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert f"round 1: {N_SEEDS} in" in again.stdout
    assert files(run_dir) == reference.files
    assert pq.read_table(run_dir / "output" / "evolved.parquet").equals(reference.parquet)
    assert json.loads((run_dir / "output" / "summary.json").read_text())["rounds"] == reference.summary["rounds"]
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "finished"
    # At most the calls in flight at the kill (the endpoint allows 4) were paid twice.
    assert reference.paid_requests <= server.stats["requests"] <= reference.paid_requests + 4


def test_sigkill_then_autoevol_resume_from_another_directory(tmp_path: Path, reference: Reference) -> None:
    write_seeds(tmp_path / "seeds.jsonl", N_SEEDS, seed_tags)
    home, gate, run_dir = tmp_path / "home", tmp_path / "gate", tmp_path / "runs" / "b"
    with fake_server(latency=0.01, gate=gate) as server:
        stored = start_and_kill(evolve_args(server.url, "runs/b"), home=home, cwd=tmp_path,
                                db=run_dir / "state.db", at_least=3)
        assert 3 <= stored <= GATED_FROM
        gate.touch()
        # The run was started with relative paths; `resume` works from anywhere with just the directory.
        resumed = run_cli(["resume", str(run_dir)], home=home, cwd=REPO)
        assert resumed.returncode == 0, resumed.stderr
        assert f"round 1: {N_SEEDS} in" in resumed.stdout
    assert files(run_dir) == reference.files
