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
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from autoevol.api import Roles
from autoevol.config import EvolveSettings, ExecSettings, config_hash
from autoevol.errors import BudgetExhausted, ResumeMismatchError
from autoevol.llm.fake import ScriptedBackend
from autoevol.methods import load_method
from autoevol.store.run import SCHEMA_VERSION, RunDir, StateDB
from tests.fixtures.evolve_server import CLI, REPO, cli_env, fake_server, run_cli, write_seeds
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
    config = {"evolve": {"rounds": 1}}
    RunDir.open(tmp_path / "run", command="evolve", config=config).close()
    with pytest.raises(ResumeMismatchError, match="holds an `autoevol evolve` run, not `optimize`"):
        RunDir.open(tmp_path / "run", command="optimize", config=config)
    manifest_path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert (manifest["config_hash"], manifest["schema_version"]) == (config_hash(config), SCHEMA_VERSION)
    manifest_path.write_text(json.dumps(manifest | {"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ResumeMismatchError, match="run schema 2"):
        RunDir.open(tmp_path / "run", command="evolve", config=config)
    with pytest.raises(ResumeMismatchError, match="not an autoevol run directory"):
        RunDir.load_manifest(tmp_path)


# -- same configuration ------------------------------------------------------------------------------


async def test_same_configuration_resumes_and_skips_finished_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_jsonl(tmp_path / "seeds.jsonl", SEEDS)
    settings = EvolveSettings(rounds=2, mix="all")
    reference = await run(data, tmp_path / "reference", Script(), settings)

    # A budget stops the first attempt part-way (cleanly, like any systemic error would).
    monkeypatch.setenv("AUTOEVOL_HOME", str(tmp_path / "home-1"))
    out = tmp_path / "run"
    first = ScriptedBackend(Script())
    from autoevol.api import evolve_async
    from autoevol.evolve.pipeline import DataSource

    with pytest.raises(BudgetExhausted):
        await evolve_async(DataSource(data), methods=(load_method("initial"),), roles=Roles(evol=EVOL), out=out,
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

N_SEEDS = 40
GATED_FROM = 16  # seeds from here on wait at the server until the gate file exists


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


def test_sigkill_mid_run_then_rerun_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    write_seeds(tmp_path / "seeds.jsonl", N_SEEDS, seed_tags)

    # The uninterrupted reference, with its own cache and server (so nothing is replayed from it).
    with fake_server(latency=0.02) as server:
        done = run_cli(evolve_args(server.url, "runs/full"), home=tmp_path / "home-full", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    paid_uninterrupted = server.stats["requests"]
    reference = files(tmp_path / "runs" / "full")
    summary = json.loads((tmp_path / "runs/full/output/summary.json").read_text())
    assert summary["rounds"][0]["inputs"] == N_SEEDS and summary["rounds"][0]["rejected"] > 0
    total_units = sum(r["inputs"] for r in summary["rounds"])

    # Killed while gated requests hang at the server: some units are stored, the run cannot have finished.
    home, gate = tmp_path / "home-a", tmp_path / "gate-a"
    with fake_server(latency=0.02, gate=gate) as server:
        db = tmp_path / "runs" / "a" / "state.db"
        stored = start_and_kill(evolve_args(server.url, "runs/a"), home=home, cwd=tmp_path, db=db, at_least=5)
        assert 5 <= stored <= GATED_FROM < total_units
        assert json.loads((tmp_path / "runs/a/manifest.json").read_text())["status"] == "running"
        assert not (tmp_path / "runs/a/output/evolved.jsonl").exists()
        gate.touch()
        again = run_cli(evolve_args(server.url, "runs/a"), home=home, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert f"round 1: {N_SEEDS} in" in again.stdout
    assert files(tmp_path / "runs" / "a") == reference
    assert json.loads((tmp_path / "runs/a/output/summary.json").read_text())["rounds"] == summary["rounds"]
    assert json.loads((tmp_path / "runs/a/manifest.json").read_text())["status"] == "finished"
    # At most the calls in flight at the kill (the endpoint allows 4) were paid twice.
    assert paid_uninterrupted <= server.stats["requests"] <= paid_uninterrupted + 4
    table = pq.read_table(tmp_path / "runs/a/output/evolved.parquet")
    assert table.equals(pq.read_table(tmp_path / "runs/full/output/evolved.parquet"))


def test_sigkill_then_autoevol_resume_from_another_directory(tmp_path: Path) -> None:
    write_seeds(tmp_path / "seeds.jsonl", N_SEEDS, seed_tags)
    with fake_server() as server:
        done = run_cli(evolve_args(server.url, "runs/full"), home=tmp_path / "home-full", cwd=tmp_path)
        assert done.returncode == 0, done.stderr

    home, gate = tmp_path / "home-b", tmp_path / "gate-b"
    with fake_server(latency=0.02, gate=gate) as server:
        db = tmp_path / "runs" / "b" / "state.db"
        stored = start_and_kill(evolve_args(server.url, "runs/b"), home=home, cwd=tmp_path, db=db, at_least=3)
        assert 3 <= stored <= GATED_FROM
        gate.touch()
        # The run was started with relative paths; `resume` works from anywhere with just the directory.
        resumed = run_cli(["resume", str(tmp_path / "runs" / "b")], home=home, cwd=REPO)
        assert resumed.returncode == 0, resumed.stderr
        assert f"round 1: {N_SEEDS} in" in resumed.stdout
    assert files(tmp_path / "runs" / "b") == files(tmp_path / "runs" / "full")
