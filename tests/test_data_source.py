"""DataSource: content identity (a touched or copied file resumes, an edited one refuses, through the real
CLI against the fake server), one way to apply --limit, and one counting pass shared with the hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoevol.data import source as source_module
from autoevol.data.formats import count_rows
from autoevol.data.records import BadRow, Seed
from autoevol.data.source import DataSource
from autoevol.errors import DataError
from tests.fixtures.evolve_server import reply, run_cli, write_seeds
from tests.support.fake_openai_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply) as running:
        yield running


def evolve_args(data: Path, out: Path, url: str) -> list[str]:
    return ["evolve", str(data), "--out", str(out), "--model", "openai:fake", "--base-url", url, "--quiet"]


# -- content identity through the CLI --------------------------------------------------------------------


def test_touched_or_copied_data_resumes_without_paying_again(tmp_path: Path, server: FakeOpenAIServer) -> None:
    data = write_seeds(tmp_path / "seeds.jsonl", 5)
    run_dir = tmp_path / "run"
    first = run_cli(evolve_args(data, run_dir, server.url), home=tmp_path / "home-1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    paid = server.requests
    assert paid == 2 * 5
    evolved = (run_dir / "output" / "evolved.jsonl").read_bytes()

    # touch, then a copy put in its place (new inode, new mtime): same bytes, same data.
    stat = data.stat()
    os.utime(data, ns=(stat.st_atime_ns + 10**9, stat.st_mtime_ns + 10**9))
    shutil.copy(data, tmp_path / "copy.jsonl")
    os.replace(tmp_path / "copy.jsonl", data)
    # A fresh request cache: only the run's state can spare the calls.
    resumed = run_cli(["resume", str(run_dir)], home=tmp_path / "home-2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert server.requests == paid
    assert (run_dir / "output" / "evolved.jsonl").read_bytes() == evolved

    # The same bytes at another path (another node, another checkout) resume too.
    moved = tmp_path / "elsewhere" / "seeds.jsonl"
    moved.parent.mkdir()
    shutil.copy(data, moved)
    again = run_cli(evolve_args(moved, run_dir, server.url), home=tmp_path / "home-3", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert server.requests == paid
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["operational"]["data"]["path"] == str(moved.resolve())
    assert "path" not in manifest["config"]["data"] and "mtime_ns" not in manifest["config"]["data"]


def test_an_edited_data_file_refuses_to_resume_with_a_clear_message(tmp_path: Path, server: FakeOpenAIServer) -> None:
    data = write_seeds(tmp_path / "seeds.jsonl", 3)
    run_dir = tmp_path / "run"
    assert run_cli(evolve_args(data, run_dir, server.url), home=tmp_path / "home", cwd=tmp_path).returncode == 0
    paid = server.requests

    text = data.read_bytes()
    data.write_bytes(text.replace(b"Compute 1", b"Compute 9", 1))  # one byte, same size
    assert data.stat().st_size == len(text)
    refused = run_cli(["resume", str(run_dir)], home=tmp_path / "home", cwd=tmp_path)
    assert refused.returncode == 4
    assert refused.stderr.startswith(f"error: {run_dir} cannot resume: the content of {data} changed since the run "
                                     "started (sha256 "), refused.stderr
    assert "restore the original data to resume, or use a new --out directory" in refused.stderr
    assert "Traceback" not in refused.stderr and server.requests == paid


# -- reading ---------------------------------------------------------------------------------------------


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_limit_is_applied_one_way_and_counts_bad_rows(tmp_path: Path) -> None:
    data = write_lines(tmp_path / "d.jsonl", [
        json.dumps({"key": "a", "instruction": "one"}), "{not json", json.dumps({"key": "b", "instruction": "two"}),
        json.dumps({"key": "c", "instruction": "three"}),
    ])
    skip = DataSource(data, id_field="key", on_bad_row="skip", limit=3)
    rows = list(skip.rows())
    assert [type(r) for r in rows] == [Seed, BadRow, Seed]
    assert [s.seed_id for s in skip.seeds()] == ["a", "b"]  # id_field is honoured everywhere
    assert skip.count() == 3
    assert DataSource(data, on_bad_row="skip").count() == 4
    first = DataSource(data, limit=1)
    assert first.count() == 1 and [s.instruction for s in first.seeds()] == ["one"]
    with pytest.raises(DataError, match=r"d\.jsonl:2: malformed JSON"):
        list(DataSource(data).seeds())


def test_jsonl_rows_are_counted_in_the_hashing_pass_like_the_reader_counts_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blank and whitespace-only lines, CRLF, no final newline; tiny chunks put every boundary mid-line.
    body = b'{"q": 1}\r\n\n   \n{"q": 2}\n \t \n{"q": "long line ' + b"x" * 50 + b'"}\n\n{"q": 3}'
    data = tmp_path / "d.jsonl"
    data.write_bytes(body)
    monkeypatch.setattr(source_module, "_CHUNK", 7)
    monkeypatch.setattr(source_module, "count_rows", lambda *a, **k: pytest.fail("counted in a second pass"))
    source = DataSource(data)
    assert source.count() == count_rows(data) == 4
    assert source.fingerprint().sha256 == hashlib.sha256(body).hexdigest()


def test_describe_names_the_content_not_the_timestamps(tmp_path: Path) -> None:
    data = write_lines(tmp_path / "d.jsonl", [json.dumps({"instruction": "one"})])
    before = DataSource(data).describe()
    assert set(before) == {"path", "schema", "field", "id_field", "on_bad_row", "limit", "size", "sha256"}
    os.utime(data, ns=(1, 1))
    assert DataSource(data).describe() == before
    write_lines(data, [json.dumps({"instruction": "two"})])
    after = DataSource(data).describe()
    assert after["size"] == before["size"] and after["sha256"] != before["sha256"]


def test_a_directory_is_identified_by_its_files_names_and_bytes(tmp_path: Path) -> None:
    root = tmp_path / "saved"
    (root / "train").mkdir(parents=True)
    (root / "train" / "data-00000.arrow").write_bytes(b"abc")
    (root / "dataset_dict.json").write_text('{"splits": ["train"]}')
    first = DataSource(root).fingerprint()
    os.utime(root / "train" / "data-00000.arrow", ns=(5, 5))
    assert DataSource(root).fingerprint() == first
    (root / "train" / "data-00000.arrow").rename(root / "train" / "data-00001.arrow")
    renamed = DataSource(root).fingerprint()
    assert renamed.sha256 != first.sha256 and renamed.size == first.size == 3 + len('{"splits": ["train"]}')


class _Opens:
    """Counts opens of one file through the interpreter's audit hook (hooks cannot be removed: it idles)."""

    target: str | None = None
    count = 0

    @classmethod
    def hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if event == "open" and cls.target is not None and str(args[0]) == cls.target:
            cls.count += 1


sys.addaudithook(_Opens.hook)


def test_an_evolve_run_reads_the_data_file_twice_estimate_included(tmp_path: Path) -> None:
    import asyncio

    from autoevol.api import Roles, evolve_async
    from autoevol.config import EvolveSettings, ExecSettings
    from autoevol.llm.fake import ScriptedBackend
    from autoevol.methods import load_method
    from autoevol.plan import estimate_for
    from tests.test_evolve_pipeline import EVOL, Script

    data = write_seeds(tmp_path / "seeds.jsonl", 4)
    source = DataSource(data)
    _Opens.target, _Opens.count = str(data), 0
    try:
        estimate_for(source, None, EvolveSettings(), with_evolve=True)  # count (the hashing pass) + a 50-row sample
        asyncio.run(evolve_async(source, methods=(load_method("initial"),), roles=Roles(evol=EVOL),
                                 out=tmp_path / "run", settings=EvolveSettings(),
                                 exec_settings=ExecSettings(quiet=True), backends={"evol": ScriptedBackend(Script())}))
    finally:
        _Opens.target = None
    # The hash (which counts the rows), the estimate's sample, the seeds: once each; and the first
    # row alone for the detected schema recorded in the manifest.
    assert _Opens.count == 4
