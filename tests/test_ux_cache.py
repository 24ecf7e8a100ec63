"""`cache stats` agrees with itself in both forms; `cache clear` never deletes without a yes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.evolve_server import CLI, cli_env, run_cli, write_seeds
from tests.support.fake_openai_server import FakeOpenAIServer


def _entries(home: Path, cwd: Path) -> int:
    stats = run_cli(["cache", "stats", "--json"], home=home, cwd=cwd)
    return int(json.loads(stats.stdout)["entries"])


@pytest.fixture
def filled(tmp_path: Path, autoevol_home: Path, fake_server: FakeOpenAIServer) -> int:
    data = write_seeds(tmp_path / "seeds.jsonl", 4)
    run = run_cli(["evolve", str(data), "--out", str(tmp_path / "run"), "--model", "openai:fake", "--base-url",
                   fake_server.url, "-q"], home=autoevol_home, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    entries = _entries(autoevol_home, tmp_path)
    assert entries >= 8
    return entries


def test_stats_human_and_json_forms_agree(tmp_path: Path, autoevol_home: Path, filled: int) -> None:
    human = run_cli(["cache", "stats"], home=autoevol_home, cwd=tmp_path)
    as_json = json.loads(run_cli(["cache", "stats", "--json"], home=autoevol_home, cwd=tmp_path).stdout)
    parsed = {}
    for line in human.stdout.splitlines():
        name, _, value = line.strip().partition(": ")
        parsed[name] = int(value.replace(",", "")) if value.replace(",", "").isdigit() else value
    assert parsed == as_json


def test_clear_without_a_terminal_needs_yes(tmp_path: Path, autoevol_home: Path, filled: int) -> None:
    piped = subprocess.run([*CLI, "cache", "clear"], input="y\n", cwd=tmp_path, env=cli_env(autoevol_home),
                           capture_output=True, text=True, timeout=60, check=False)
    assert piped.returncode == 2 and "--yes" in piped.stderr and "nothing removed" in piped.stderr
    assert _entries(autoevol_home, tmp_path) == filled
    forced = run_cli(["cache", "clear", "--yes"], home=autoevol_home, cwd=tmp_path)
    assert forced.returncode == 0 and f"removed {filled:,} cached responses" in forced.stdout
    assert _entries(autoevol_home, tmp_path) == 0


def test_clear_on_a_terminal_asks_first(tmp_path: Path, autoevol_home: Path, filled: int) -> None:
    pexpect = pytest.importorskip("pexpect")

    def clear(answer: str) -> tuple[int, str]:
        child = pexpect.spawn(CLI[0], [*CLI[1:], "cache", "clear"], cwd=str(tmp_path), env=cli_env(autoevol_home),
                              encoding="utf-8", timeout=60)
        child.expect(r"clear every cached response in .*\?")
        child.sendline(answer)
        child.expect(pexpect.EOF)
        child.close()
        return child.exitstatus, child.before

    status, said = clear("n")
    assert status == 1 and "nothing removed" in said
    assert _entries(autoevol_home, tmp_path) == filled
    status, said = clear("y")
    assert status == 0 and f"removed {filled:,} cached responses" in said
    assert _entries(autoevol_home, tmp_path) == 0
