"""Fault-and-kill suite: `autoevol run` (optimise, then evolve) under a fault mix, SIGKILLed at a seeded
schedule of moments across both phases, must end byte-identical to an uninterrupted run and re-pay at
most the calls that were in flight at the kills.

    python -m bench.killsuite [--kills 20] [--seeds 40] [--seed 1] [--p500 .2 --p429 .2 --pgarbage .05 --phang .03]

Both runs talk to the fake OpenAI server (tests/support/fake_openai_server.py) playing the scripted
optimisation world (tests/support/optimize_script.py), in its seeded random-fault mode: a request meets
the same faults whatever the timing, so the two runs differ only by the kills. Each run has its own
server and its own AUTOEVOL_HOME (response cache).

* The reference runs the command until it is complete: exit 0 and no row failed on a model error (a
  row whose retries all met faults fails, and the same command retries it).
* The killed run is started again and again, and killed with SIGKILL once the server has answered the
  next scheduled number of requests (half of the kill points fall in the reference's optimisation
  calls; half count answers from the start of the killed run's evolve phase); then it is completed
  like the reference.
* Re-paid calls = well-formed answers the killed run got beyond the reference's. A call is re-paid when
  its answer was lost with the process, so it must have been in flight at a kill: open at the server
  when the process died, or answered in the half second before (its client may not have cached it yet).
  Requests held by a hang fault are never answered, so never paid, and are not counted as in flight.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.fixtures.evolve_server import CLI, REPO, cli_env
from tests.support.optimize_script import write_data

COMPARED = ("evolved.jsonl", "rejected.jsonl", "best_method.json")
WINDOW_S = 0.5  # answers this recent at a kill count as in flight: the client may not have cached them


@dataclass(frozen=True)
class Settings:
    kills: int = 20
    seeds: int = 40
    seed: int = 1
    p500: float = 0.2
    p429: float = 0.2
    pgarbage: float = 0.05
    phang: float = 0.03
    latency: float = 0.02
    concurrency: int = 4
    request_timeout: float = 2.0
    steps: int = 2
    max_completions: int = 8  # runs of the command that may be needed to finish (failed rows retried)


@dataclass
class Kill:
    target: int  # server answers at which the process was killed
    phase: str  # optimize | evolve, from the run's state at the kill
    in_flight: int  # requests open at the server when the process died (hangs excluded)
    answered_recently: int  # answers in the WINDOW_S before the kill

    @property
    def bound(self) -> int:
        return self.in_flight + self.answered_recently


@dataclass
class Report:
    settings: Settings
    reference_answers: int = 0
    reference_optimize_answers: int = 0
    reference_runs: int = 0
    killed_answers: int = 0
    completion_runs: int = 0
    kills: list[Kill] = field(default_factory=list)
    identical: dict[str, bool] = field(default_factory=dict)
    invocations: int = 0
    seconds: float = 0.0
    summary_paid_calls: int = 0  # what the killed run's summary.json accounts for, over all invocations

    @property
    def repaid(self) -> int:
        return self.killed_answers - self.reference_answers

    @property
    def in_flight_bound(self) -> int:
        return sum(k.bound for k in self.kills)

    @property
    def ok(self) -> bool:
        return all(self.identical.values()) and 0 <= self.repaid <= self.in_flight_bound

    def lines(self) -> list[str]:
        phases = [k.phase for k in self.kills]
        return [
            f"kills: {len(self.kills)} ({phases.count('optimize')} in optimise, {phases.count('evolve')} in evolve)",
            f"server answers: reference {self.reference_answers} ({self.reference_runs} run(s)), killed "
            f"{self.killed_answers} ({len(self.kills)} killed + {self.completion_runs} completing run(s))",
            f"re-paid calls: {self.repaid} <= in flight at the kills {self.in_flight_bound} "
            f"(open {sum(k.in_flight for k in self.kills)} + answered within {WINDOW_S}s "
            f"{sum(k.answered_recently for k in self.kills)})",
            "identical: " + ", ".join(f"{name} {'yes' if same else 'NO'}" for name, same in self.identical.items()),
            f"summary.json: {self.invocations} invocations, {self.summary_paid_calls} paid calls (server answered "
            f"{self.killed_answers}; a killed process's last 0.25 s is not saved), wall time {self.seconds:.1f}s",
            "OK" if self.ok else "FAILED",
        ]


class Server:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc, self.url = proc, url

    def stats(self, since: float | None = None) -> dict[str, int]:
        query = f"?since={since}" if since is not None else ""
        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/stats" + query, timeout=10) as answer:
            return dict(json.loads(answer.read()))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def fault_server(work: Path, s: Settings, port: int) -> Iterator[Server]:
    """The fake server with the fault mix. Both runs use the same port: the base URL is recorded in
    best_method.json's lineage, so another port would make the files differ."""
    # The server imports its script from a file path; a one-line shim keeps the script a package module.
    shim = work / "server_script.py"
    shim.write_text("from tests.support.optimize_script import server_reply  # noqa: F401\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "tests.support.fake_openai_server", "--port", str(port),
           "--script", f"pyfile:{shim}:server_reply", "--latency", str(s.latency),
           "--p500", str(s.p500), "--p429", str(s.p429), "--pgarbage", str(s.pgarbage), "--phang", str(s.phang),
           "--hang-seconds", str(3 * s.request_timeout), "--fault-seed", str(s.seed)]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield Server(proc, line.split()[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_args(data: Path, url: str, out: Path, s: Settings) -> list[str]:
    return ["run", str(data), "--model", "openai:fake", "--base-url", url, "--out", str(out),
            "--steps", str(s.steps), "--candidates", "2", "--dev-size", "6", "--batch-size", "3", "--pool-size", "20",
            "--rounds", "1", "--concurrency", str(s.concurrency), "--request-timeout", str(s.request_timeout),
            "--quiet"]


def complete(args: list[str], out: Path, home: Path, s: Settings) -> int:
    """Run the command until the run is complete; returns how many runs that took."""
    for attempt in range(1, s.max_completions + 1):
        done = subprocess.run([*CLI, *args], cwd=out.parent, env=cli_env(home), capture_output=True, text=True,
                              timeout=600, check=False)
        # 6: the optimisation's retries ran out, 7: too many rows failed in a row; both resume.
        if done.returncode not in (0, 6, 7):
            raise RuntimeError(f"autoevol exited {done.returncode}: {done.stderr.strip()}")
        if done.returncode == 0 and not failed_on_model_errors(out):
            return attempt
    raise RuntimeError(f"{out} still incomplete after {s.max_completions} runs")


def failed_on_model_errors(out: Path) -> int:
    summary = json.loads((out / "output" / "summary.json").read_text(encoding="utf-8"))
    return sum(r["categories"].get("model_error", 0) for r in summary["rounds"])


def phase_of(out: Path) -> str:
    """The phase a killed process was in: evolve once a round has started (events.jsonl is flushed
    per event), which stored units cannot tell early on: the first units may still be in flight."""
    events = out / "events.jsonl"
    try:
        text = events.read_text(encoding="utf-8")
    except OSError:
        return "optimize"
    return "evolve" if '"event": "round_started"' in text else "optimize"


def schedule(s: Settings, optimize_answers: int, total: int) -> list[tuple[int, str]]:
    """Kill points, seeded: half at a number of server answers among the optimisation's calls, half at a
    number of answers after the killed run's evolve phase has started, within the first quarter of the
    reference's evolve calls. Evolve points count from the phase's start because the reference's count
    includes answers to requests that timed out and were sent again, which a loaded machine makes more
    of: an absolute point could lie past what a killed run still asks for, and it would end unkilled."""
    rng = random.Random(s.seed)
    first = s.kills // 2 + s.kills % 2
    in_optimize = [rng.randint(1, max(1, optimize_answers - 1)) for _ in range(first)]
    in_evolve = [rng.randint(1, max(1, (total - optimize_answers) // 4)) for _ in range(s.kills - first)]
    return [(n, "optimize") for n in sorted(in_optimize)] + [(n, "evolve") for n in sorted(in_evolve)]


def kill_at(args: list[str], out: Path, home: Path, server: Server, target: int,
            phase: str = "optimize") -> Kill | None:
    """Start the command, SIGKILL it once the server has answered `target` requests (for an evolve kill,
    `target` answers after the evolve phase started); None if it ended first."""
    log = (out.parent / "killed.log").open("a")
    proc = subprocess.Popen([*CLI, *args], cwd=out.parent, env=cli_env(home), stdout=log, stderr=log)
    try:
        if phase == "evolve":
            while phase_of(out) != "evolve":
                if proc.poll() is not None:
                    return None
                time.sleep(0.005)
            target += server.stats()["answered"]
        while server.stats()["answered"] < target:
            if proc.poll() is not None:
                return None
            time.sleep(0.005)
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        after = server.stats(since=killed_at - WINDOW_S)
        return Kill(target, phase_of(out), after["in_flight"] - after["hanging"], after["answered_since"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def run_suite(work: Path, s: Settings) -> Report:
    report = Report(s)
    data = write_data(work / "data.jsonl", s.seeds)
    port = free_port()

    reference = work / "reference"
    reference.mkdir()
    with fault_server(reference, s, port) as server:
        out = reference / "run"
        report.reference_runs = complete(run_args(data, server.url, out, s), out, reference / "home", s)
        report.reference_answers = server.stats()["answered"]
    usage = json.loads((out / "output" / "summary.json").read_text(encoding="utf-8"))["usage"]
    # Paid calls by phase; no kill, so every optimisation answer was paid once.
    report.reference_optimize_answers = sum(u["paid_calls"] for u in usage if u["phase"].startswith("optimize"))

    killed = work / "killed"
    killed.mkdir()
    with fault_server(killed, s, port) as server:
        out, home = killed / "run", killed / "home"
        args = run_args(data, server.url, out, s)
        for target, phase in schedule(s, report.reference_optimize_answers, report.reference_answers):
            # A new process first replays its cache: every kill waits for at least one new answer.
            if phase == "optimize":
                target = max(target, server.stats()["answered"] + 1)
            kill = kill_at(args, out, home, server, target, phase)
            if kill is None:
                break
            report.kills.append(kill)
        report.completion_runs = complete(args, out, home, s)
        report.killed_answers = server.stats()["answered"]

    for name in COMPARED:
        report.identical[name] = (out / "output" / name).read_bytes() == (reference / "run/output" / name).read_bytes()
    summary = json.loads((out / "output" / "summary.json").read_text(encoding="utf-8"))
    report.invocations, report.seconds = len(summary["invocations"]), summary["seconds"]
    report.summary_paid_calls = sum(u["paid_calls"] for u in summary["usage"])
    return report


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.killsuite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Settings()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    s = Settings(**vars(parser.parse_args(argv)))
    with tempfile.TemporaryDirectory(prefix="autoevol-killsuite-") as tmp:
        started = time.monotonic()
        report = run_suite(Path(tmp), s)
    for line in report.lines():
        print(line)
    for i, k in enumerate(report.kills, 1):
        print(f"  kill {i:2d}: at {k.target} answers, {k.phase}, in flight {k.in_flight} "
              f"+ {k.answered_recently} answered just before")
    print(f"suite time {time.monotonic() - started:.0f}s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
