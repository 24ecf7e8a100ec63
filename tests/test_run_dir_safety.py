"""`--out` never destroys a user's files, and damaged run state is one clear line, not a traceback:
the CLI in a fresh interpreter against the fake server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.evolve_server import ServerProcess, fake_server, run_cli, write_seeds
from tests.test_evolve_cli import assert_one_line_error, evolve


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with fake_server() as running:
        yield running


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    return write_seeds(tmp_path / "seeds.jsonl", 3)


def test_out_on_a_file_is_a_clear_error(tmp_path: Path, seeds: Path, server: ServerProcess,
                                        autoevol_home: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "x").write_text("my notes\n")
    result = run_cli(evolve(server.url), home=autoevol_home, cwd=tmp_path)
    assert_one_line_error(result, 2, "--out runs/x is a file")
    assert (tmp_path / "runs" / "x").read_text() == "my notes\n"


def test_a_users_directory_is_refused_and_its_files_survive(tmp_path: Path, seeds: Path, server: ServerProcess,
                                                            autoevol_home: Path) -> None:
    user_dir = tmp_path / "runs" / "x"
    (user_dir / "output").mkdir(parents=True)
    (user_dir / "output" / "summary.json").write_text('{"mine": true}\n')
    (user_dir / "notes.txt").write_text("keep me\n")
    for extra in ((), ("--overwrite",)):
        result = run_cli(evolve(server.url, *extra), home=autoevol_home, cwd=tmp_path)
        assert_one_line_error(result, 2, "--out runs/x is not an autoevol run directory but holds output/summary.json")
    assert (user_dir / "output" / "summary.json").read_text() == '{"mine": true}\n'
    (user_dir / "output" / "summary.json").unlink()
    refused = run_cli(evolve(server.url), home=autoevol_home, cwd=tmp_path)
    assert_one_line_error(refused, 2, "--out runs/x is a non-empty directory that is not an autoevol run")
    beside = run_cli(evolve(server.url, "--overwrite"), home=autoevol_home, cwd=tmp_path)
    assert beside.returncode == 0, beside.stderr
    assert (user_dir / "notes.txt").read_text() == "keep me\n"
    assert (user_dir / "output" / "evolved.jsonl").exists()


def test_overwrite_starts_a_run_afresh(tmp_path: Path, seeds: Path, server: ServerProcess,
                                       autoevol_home: Path) -> None:
    assert run_cli(evolve(server.url), home=autoevol_home, cwd=tmp_path).returncode == 0
    changed = run_cli(evolve(server.url, "--rounds", "2"), home=autoevol_home, cwd=tmp_path)
    assert changed.returncode == 4
    fresh = run_cli(evolve(server.url, "--rounds", "2", "--overwrite"), home=autoevol_home, cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr


@pytest.mark.parametrize("damage", ["manifest", "state"])
def test_damaged_run_state_is_one_line(tmp_path: Path, seeds: Path, server: ServerProcess, autoevol_home: Path,
                                       damage: str) -> None:
    assert run_cli(evolve(server.url), home=autoevol_home, cwd=tmp_path).returncode == 0
    run = tmp_path / "runs" / "x"
    if damage == "manifest":
        (run / "manifest.json").write_text('{"schema_version": 2, "comm')
        expected = f"{Path('runs/x/manifest.json')} is damaged"
    else:
        for name in ("state.db-wal", "state.db-shm"):
            (run / name).unlink(missing_ok=True)
        (run / "state.db").write_bytes(b"this is not a database" * 100)
        expected = "runs/x/state.db is not a readable autoevol state database"
    result = run_cli(evolve(server.url), home=autoevol_home, cwd=tmp_path)
    assert_one_line_error(result, 4, expected)
    assert run_cli(evolve(server.url, "--overwrite"), home=autoevol_home, cwd=tmp_path).returncode == 0


def test_autoevol_home_on_a_file_is_one_line(tmp_path: Path, seeds: Path, server: ServerProcess) -> None:
    home = tmp_path / "home-file"
    home.write_text("not a directory\n")
    result = run_cli(evolve(server.url), home=home, cwd=tmp_path)
    assert_one_line_error(result, 2, f"AUTOEVOL_HOME {home} cannot be used as a directory")
