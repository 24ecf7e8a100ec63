"""What a user sees while a run works, through the real CLI: plain progress lines in a log (no
terminal), a live display under a pseudo-terminal, counts that survive a resume, retries by cause,
and endpoint mistakes answered with a hint."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.evolve_server import CLI, REPO, cli_env, write_seeds
from tests.fixtures.evolve_server import fake_server as script_server
from tests.support.fake_openai_server import FakeOpenAIServer, Fault
from tests.support.optimize_script import write_data

PLAIN_EVOLVE = re.compile(
    r"^\[\d\d:\d\d:\d\d\] evolve round 1: (\d+)/(\d+) rows \(\d+%\)(?: · [\d.]+ rows/s)? · elapsed [\d:]+ · ETA \S+ · "
    r"accepted (\d+), rejected (\d+), failed (\d+) · calls \d+ · tokens [\d,]+ · cache hits \d+ · retries (\d+)",
    re.MULTILINE,
)


def cli(args: list[str], home: Path, cwd: Path, *, interval: float | None = 0.1,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI with stderr to a pipe: not a terminal, as under nohup, Slurm or CI."""
    env = cli_env(home) | ({"AUTOEVOL_PROGRESS_INTERVAL": str(interval)} if interval else {})
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture
def opt_server(tmp_path: Path) -> Iterator[str]:
    """The scripted optimisation world behind a real HTTP server (a candidate really wins)."""
    shim = tmp_path / "shim.py"
    shim.write_text("from tests.support.optimize_script import server_reply  # noqa: F401\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_openai_server", "--port", "0", "--script",
         f"pyfile:{shim}:server_reply", "--latency", "0.03"],
        cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY "), line
    try:
        yield line.split()[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_evolve_without_a_terminal_prints_plain_progress_lines(tmp_path: Path, autoevol_home: Path) -> None:
    data = write_seeds(tmp_path / "seeds.jsonl", 24, tag_of=lambda i: "[reject]" if i % 4 == 0 else "")
    with script_server(latency=0.05) as server:
        args = ["evolve", str(data), "--out", str(tmp_path / "run"), "--model", "openai:fake", "--base-url",
                server.url, "-j", "2"]
        shown = cli(args, autoevol_home, tmp_path)
        quiet = cli([*args[:3], str(tmp_path / "quiet"), *args[4:], "--quiet"], autoevol_home, tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = PLAIN_EVOLVE.findall(shown.stderr)
    assert len(lines) >= 3, shown.stderr  # ~1.2 s of work at one line per 0.1 s
    done = [int(line[0]) for line in lines]
    assert done == sorted(done) and all(line[1] == "24" for line in lines)
    # Outcomes are shown from the first line on, and add up to the rows done.
    assert all(int(a) + int(r) + int(f) == int(d) for d, _, a, r, f, _ in lines)
    assert int(lines[-1][3]) > 0  # the [reject] rows
    assert "\x1b[" not in shown.stderr  # no terminal escapes in a log
    assert quiet.returncode == 0 and not PLAIN_EVOLVE.search(quiet.stderr) and "ETA" not in quiet.stderr


def test_resumed_evolve_counts_kept_rows_as_done_from_the_start(tmp_path: Path, autoevol_home: Path) -> None:
    data = write_seeds(tmp_path / "seeds.jsonl", 30)
    with script_server(latency=0.05) as server:
        args = ["evolve", str(data), "--out", str(tmp_path / "run"), "--model", "openai:fake", "--base-url",
                server.url, "-j", "2"]
        stopped = cli([*args, "--max-calls", "24"], autoevol_home, tmp_path, interval=None)
        assert stopped.returncode == 5, stopped.stderr
        kept = sum(1 for _ in open(tmp_path / "run" / "output" / "evolved.jsonl", encoding="utf-8"))
        assert 0 < kept < 30
        resumed = cli(args, autoevol_home, tmp_path, interval=0.1)
    assert resumed.returncode == 0, resumed.stderr
    lines = PLAIN_EVOLVE.findall(resumed.stderr)
    assert lines, resumed.stderr
    first_done, first_accepted = int(lines[0][0]), int(lines[0][2])
    assert first_done >= kept and first_accepted >= kept  # the kept rows are done from the first line
    assert int(lines[-1][0]) <= 30


def test_retries_by_cause_in_progress_and_summary(
    tmp_path: Path, autoevol_home: Path, fake_server: FakeOpenAIServer
) -> None:
    data = write_seeds(tmp_path / "seeds.jsonl", 12)
    fake_server.latency_s = 0.05
    fake_server.inject(Fault.server_error(500), times=4)
    fake_server.inject(Fault.rate_limit(0.1), times=2)
    run = cli(["evolve", str(data), "--out", str(tmp_path / "run"), "--model", "openai:fake", "--base-url",
               fake_server.url, "-j", "2"], autoevol_home, tmp_path, interval=0.1)
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "run" / "output" / "summary.json").read_text())
    assert summary["retries"] == {"429": 2, "5xx": 4}
    assert summary["invocations"][-1]["retries"] == {"429": 2, "5xx": 4}
    assert "retries 6 (5xx 4, 429 2)" in run.stderr


def test_optimise_without_a_terminal_shows_steps_and_phases(
    tmp_path: Path, autoevol_home: Path, opt_server: str
) -> None:
    data = write_data(tmp_path / "opt.jsonl", 40)
    run = cli(["optimize", str(data), "--out", str(tmp_path / "run"), "--model", "openai:fake", "--base-url",
               opt_server, "--preset", "demo", "-j", "2"], autoevol_home, tmp_path, interval=0.1)
    assert run.returncode == 0, run.stderr
    phases = set(re.findall(r"optimise step (\d)/2 · (trajectory|optimizer proposing|scoring)", run.stderr))
    assert {p for _, p in phases} >= {"trajectory", "scoring"}, run.stderr
    assert {s for s, _ in phases} == {"1", "2"}
    assert re.search(r"scoring \d of 2 candidates \+ the incumbent on the dev set: \d+/\d+ dev verdicts", run.stderr)


def test_live_display_under_a_pseudo_terminal(tmp_path: Path, autoevol_home: Path, opt_server: str) -> None:
    pexpect = pytest.importorskip("pexpect")
    data = write_data(tmp_path / "opt.jsonl", 40)
    child = pexpect.spawn(CLI[0], [*CLI[1:], "run", str(data), "--out", str(tmp_path / "run"), "--model",
                                   "openai:fake", "--base-url", opt_server, "--preset", "demo", "-j", "2"],
                          cwd=str(tmp_path), env=cli_env(autoevol_home) | {"AUTOEVOL_PROGRESS_INTERVAL": "0.1"},
                          encoding="utf-8", timeout=90, dimensions=(50, 200))
    child.logfile_read = seen = io.StringIO()
    child.expect(r"optimise step 1/2")
    child.expect(r"evolve round 1.*━.*\d+/40")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    screen = seen.getvalue()
    assert "rows/s" in screen, screen[-1500:]
    assert re.search(r"accepted \d+, rejected \d+, failed \d+ · calls", screen), screen[-1500:]
    # A terminal gets the live display, never the plain log lines.
    assert not re.search(r"^\[\d\d:\d\d:\d\d\] ", screen, re.MULTILINE)


def test_base_url_without_v1_gets_a_hint_and_the_model_list(
    tmp_path: Path, autoevol_home: Path, fake_server: FakeOpenAIServer
) -> None:
    fake_server.v1_only = True
    bare = fake_server.url.removesuffix("/v1")
    run = cli(["ping", "--model", "openai:fake-model", "--base-url", bare], autoevol_home, tmp_path)
    assert run.returncode == 6
    assert f"did you mean --base-url {bare}/v1? it serves: fake-model" in run.stderr
    assert run.stderr.count("\n") == 1


def test_ping_to_a_closed_port_fails_within_the_request_timeout(tmp_path: Path, autoevol_home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    run = cli(["ping", "--model", "openai:fake", "--base-url", f"http://127.0.0.1:{port}/v1",
               "--request-timeout", "2"], autoevol_home, tmp_path)
    assert run.returncode == 6 and "connection" in run.stderr
    assert time.monotonic() - started < 8  # interpreter start-up included; the retry ramp alone took 23 s
