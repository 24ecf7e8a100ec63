"""Resume after SIGKILL: a real `autoevol optimize` subprocess, killed mid-step against a real HTTP
server (the fake OpenAI server running the scripted world), finishes with exactly the result of an
uninterrupted run and does not pay again for calls that had finished."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.optimize_script import REQUEST_LOG_ENV, write_data

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 2


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, request log): the scripted world behind a real HTTP server in a subprocess."""
    # The server imports its script from a file path; a one-line shim keeps the script a package module.
    shim = tmp_path / "server_script.py"
    shim.write_text("from tests.support.optimize_script import server_reply  # noqa: F401\n", encoding="utf-8")
    log = tmp_path / "requests.log"
    env = os.environ | {REQUEST_LOG_ENV: str(log), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_openai_server", "--port", "0",
         "--script", f"pyfile:{shim}:server_reply", "--latency", "0.02"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            proc.kill()
            raise RuntimeError(f"fake server did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        yield line.split()[1], log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def requests_made(log: Path) -> int:
    return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0


def optimize_cmd(data: Path, url: str, out: Path) -> list[str]:
    return [
        sys.executable, "-c", "from autoevol.cli import app; app()", "optimize", str(data),
        "--model", "openai:fake", "--base-url", url, "--out", str(out), "--preset", "default",
        "--steps", "3", "--candidates", "3", "--dev-size", "8", "--batch-size", "3",
        "--concurrency", str(CONCURRENCY), "--quiet",
    ]


def env_for(home: Path) -> dict[str, str]:
    return os.environ | {"AUTOEVOL_HOME": str(home), "PYTHONPATH": str(ROOT)}


def step_progress(run: Path) -> tuple[int, bool]:
    """(dev verdicts stored, whether step 1 is finished), read while the run is writing."""
    db_path = run / "state.db"
    if not db_path.exists():
        return 0, False
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            units = db.execute("SELECT COUNT(*) FROM units WHERE phase = 'score'").fetchone()[0]
            done = db.execute("SELECT 1 FROM kv WHERE name = 'opt/1/record'").fetchone() is not None
        finally:
            db.close()
    except sqlite3.OperationalError:  # tables not created yet
        return 0, False
    return int(units), done


def outputs(run: Path) -> tuple[dict[str, object], dict[str, object]]:
    out = run / "output"
    return (json.loads((out / "optimization.json").read_text(encoding="utf-8")),
            json.loads((out / "best_method.json").read_text(encoding="utf-8")))


def test_a_run_killed_mid_step_resumes_to_the_same_result_without_repaying(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    url, log = server
    data = write_data(tmp_path / "data.jsonl", 30)
    run, home = tmp_path / "run", tmp_path / "home"

    # 1. Start, and SIGKILL once step 1 has some dev verdicts stored but is not finished.
    proc = subprocess.Popen(optimize_cmd(data, url, run), env=env_for(home), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    units, done = 0, False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            units, done = step_progress(run)
            if units >= 4 or done:
                break
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert units >= 4 and not done, f"not killed mid step 1 (units={units}, step 1 done={done})"
    killed_units, _ = step_progress(run)
    paid_before_kill = requests_made(log)
    assert not (run / "output" / "best_method.json").exists()

    # 2. The same command again resumes and finishes.
    resumed = subprocess.run(optimize_cmd(data, url, run), env=env_for(home), cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    paid_interrupted = requests_made(log)
    assert json.loads((run / "manifest.json").read_text(encoding="utf-8"))["status"] == "finished"

    # 3. An uninterrupted run with a fresh home (empty response cache) and a new run directory.
    fresh = subprocess.run(optimize_cmd(data, url, tmp_path / "fresh"), env=env_for(tmp_path / "home2"),
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert fresh.returncode == 0, fresh.stderr
    paid_fresh = requests_made(log) - paid_interrupted

    # Same result, byte for byte once parsed.
    assert outputs(run) == outputs(tmp_path / "fresh")
    report, best = outputs(run)
    assert [s["selected"] for s in report["steps"]] == [0, 0, "kept incumbent"]  # type: ignore[index]
    assert best["lineage"]["best_lambda"] == 0.0  # type: ignore[index]

    # Finished calls were not paid again: at most the requests in flight at the kill are repeated.
    assert killed_units >= 4 and paid_before_kill > 0
    assert paid_interrupted <= paid_fresh + CONCURRENCY
    assert paid_interrupted >= paid_fresh
    print(f"requests: before kill {paid_before_kill}, killed+resumed {paid_interrupted}, uninterrupted {paid_fresh}")
