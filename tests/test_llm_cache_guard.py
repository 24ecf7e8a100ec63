"""The request cache touches only its own file, a bad `cache.db` or a failed write is one line with
what to do (never a traceback), and a model error whose retries ran out says where and that the run
resumes. Through the CLI in a subprocess, as a user meets them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoevol.errors import StorageError
from autoevol.files import atomic_write_text
from autoevol.llm.cache import APPLICATION_ID, ResponseCache, request_key
from autoevol.types import Completion, CompletionRequest, Usage, user
from tests.fixtures.evolve_server import CLI, cli_env, reply, write_seeds
from tests.support.fake_openai_server import FakeOpenAIServer, Fault


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply) as running:
        yield running


def run(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(home), capture_output=True, text=True, timeout=120,
                          check=False)


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    for word in words:
        assert word in result.stderr, result.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def foreign_db(path: Path, table: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, payload TEXT)")
    db.execute(f"INSERT INTO {table} VALUES (1, 'precious')")
    db.commit()
    db.close()


@pytest.mark.parametrize("table", ["responses", "photos"])
def test_a_foreign_sqlite_cache_db_is_refused_and_left_as_it_was(
    tmp_path: Path, autoevol_home: Path, server: FakeOpenAIServer, table: str
) -> None:
    cache = autoevol_home / "cache.db"
    foreign_db(cache, table)
    before = digest(cache)
    write_seeds(tmp_path / "seeds.jsonl", 2)
    commands = [["cache", "stats"], ["cache", "clear", "--yes"],
                ["evolve", "seeds.jsonl", "--model", "openai:fake", "--base-url", server.url, "--out", "runs/x"]]
    for args in commands:
        assert_one_line(run(args, tmp_path, autoevol_home), 2, str(cache), "another program's SQLite database",
                        table, "AUTOEVOL_HOME")
    assert digest(cache) == before
    assert sorted(p.name for p in autoevol_home.iterdir()) == ["cache.db"]  # no WAL switch, nothing added
    assert server.requests == 0


@pytest.mark.parametrize("content", [b"name,value\nthis is,my file\n", b"\x00" * 4096], ids=["text", "zeros"])
def test_a_cache_db_that_is_not_sqlite_is_one_line(tmp_path: Path, autoevol_home: Path, content: bytes) -> None:
    autoevol_home.mkdir()
    (autoevol_home / "cache.db").write_bytes(content)
    for args in (["cache", "stats"], ["cache", "clear", "-y"]):
        assert_one_line(run(args, tmp_path, autoevol_home), 2, "not a SQLite database", "move it away")
    assert (autoevol_home / "cache.db").read_bytes() == content


def _fill(path: Path, n: int) -> None:
    cache = ResponseCache(path)
    for i in range(n):
        request = CompletionRequest(messages=(user(f"question {i}"),), model="m")
        cache.put(request_key("openai:http://x/v1", request), "openai:http://x/v1",
                  Completion(text=f"answer {i} " + "x" * 1000, finish_reason="stop", usage=Usage(3, 4)))
    cache.close()


def test_a_damaged_cache_is_one_line(tmp_path: Path, autoevol_home: Path) -> None:
    path = autoevol_home / "cache.db"
    _fill(path, 400)
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 3)
    assert_one_line(run(["cache", "stats"], tmp_path, autoevol_home), 2, "damaged", "delete it")


def test_a_cache_from_before_the_stamp_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    _fill(path, 3)
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id = 0")
    db.close()
    cache = ResponseCache(path)
    assert cache.stats().entries == 3
    cache.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    db.close()


def test_cache_stats_counts_only_its_own_files(tmp_path: Path, autoevol_home: Path) -> None:
    _fill(autoevol_home / "cache.db", 5)
    (autoevol_home / "cache.db.bak").write_bytes(b"x" * 300_000)
    (autoevol_home / "cache.db-old").write_bytes(b"x" * 300_000)
    result = run(["cache", "stats", "--json"], tmp_path, autoevol_home)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    # The database with its WAL and shared-memory files, measured while open: tens of KB, not the 600 KB beside it.
    assert stats["entries"] == 5 and 0 < stats["size_bytes"] < 300_000, stats


def test_concurrent_atomic_writes_of_one_file_never_fail(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    texts = [json.dumps({"writer": w, "pad": "y" * 2000}) for w in range(6)]
    errors: list[BaseException] = []

    def write(text: str) -> None:
        try:
            for _ in range(150):
                atomic_write_text(target, text)
        except BaseException as error:  # collected: a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=write, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert target.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temporary file left behind


def test_a_failed_write_is_a_storage_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "summary.json").mkdir()
    with pytest.raises(StorageError, match=r"cannot write .*summary\.json: .*run the same command again"):
        atomic_write_text(tmp_path / "summary.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_failed_write_during_a_run_is_one_line(tmp_path: Path, autoevol_home: Path, server: FakeOpenAIServer) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 2)
    args = ["evolve", "seeds.jsonl", "--model", "openai:fake", "--base-url", server.url, "--out", "runs/x", "--quiet"]
    assert run(args, tmp_path, autoevol_home).returncode == 0
    summary = tmp_path / "runs" / "x" / "output" / "summary.json"
    summary.unlink()
    summary.mkdir()  # something in the way of the file, as a full disk or a read-only mount would be
    assert_one_line(run(args, tmp_path, autoevol_home), 1, "cannot write", "summary.json")


def test_exhausted_retries_name_the_url_and_say_the_run_resumes(
    tmp_path: Path, autoevol_home: Path, server: FakeOpenAIServer
) -> None:
    server.inject(Fault.server_error(500), times=None)
    spec = tmp_path / "model.json"
    spec.write_text(json.dumps({"kind": "openai", "model": "fake", "base_url": server.url, "max_retries": 1}))
    write_seeds(tmp_path / "seeds.jsonl", 12)
    result = run(["optimize", "seeds.jsonl", "--model", str(spec), "--out", "runs/o", "--preset", "demo", "--quiet"],
                 tmp_path, autoevol_home)
    assert_one_line(result, 6, "HTTP 500", f"gave up after 2 attempts at {server.url}",
                    "run the same command again to resume")
    ping = run(["ping", "--model", str(spec)], tmp_path, autoevol_home)
    assert_one_line(ping, 6, f"gave up after 2 attempts at {server.url}")
    assert "resume" not in ping.stderr
