"""One writer per run directory: a second process is refused with the holder's PID, and a holder
killed with SIGKILL leaves no stale lock behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from autoevol.errors import RunLockedError
from autoevol.store.run import RunDir
from tests.fixtures.evolve_server import REPO
from tests.support.manifests import small_manifest

HOLD = """
import sys, time
from pathlib import Path
from autoevol.store.run import RunDir
from tests.support.manifests import small_manifest
run = RunDir.open(Path(sys.argv[1]), small_manifest(Path(sys.argv[1]).parent / "seeds.jsonl"))
print("HOLDING", flush=True)
time.sleep(120)
"""


def hold(run: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "HOLDING"
    return proc


def test_a_second_process_is_refused_and_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = hold(run)
    try:
        with pytest.raises(RunLockedError, match=f"in use by another autoevol process \\(PID {holder.pid}\\)"):
            RunDir.open(run, small_manifest(tmp_path / "seeds.jsonl"))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    reopened = RunDir.open(run, small_manifest(tmp_path / "seeds.jsonl"))
    reopened.close()


def test_closing_a_run_releases_it_within_one_process(tmp_path: Path) -> None:
    first = RunDir.open(tmp_path / "run", small_manifest(tmp_path / "seeds.jsonl"))
    with pytest.raises(RunLockedError):
        RunDir.open(tmp_path / "run", small_manifest(tmp_path / "seeds.jsonl"))
    first.close()
    RunDir.open(tmp_path / "run", small_manifest(tmp_path / "seeds.jsonl")).close()
