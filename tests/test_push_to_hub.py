"""`--push-to-hub` and `autoevol push` against a local fake Hub (`tests/support/fake_hub.py`): the
parquet arrives byte for byte with a card, the token travels only in the Authorization header, and
a refusal is one line that leaves the run finished and pushable again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.evolve_server import ServerProcess, fake_server, run_cli, write_seeds
from tests.support.fake_hub import FakeHub, fake_hub

TOKEN = "hf_fakeTOKEN0123456789secret"
REPO = "org/evolved"
PARQUET = "data/train-00000-of-00001.parquet"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with fake_server() as running:
        yield running


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    with fake_hub() as running:
        # run_cli passes the environment on: the CLI's huggingface_hub talks to the fake, with the token,
        # and keeps its own cache files out of the user's home.
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        yield running


def evolve(url: str, *extra: str) -> list[str]:
    return ["evolve", "seeds.jsonl", "--model", "openai:fake", "--base-url", url, "--out", "runs/x", "--quiet",
            *extra]


def no_token_anywhere(outputs: list[str], run_dir: Path) -> None:
    for text in outputs:
        assert TOKEN not in text
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_evolve_pushes_the_parquet_and_a_card_with_the_token_only_in_the_header(
    tmp_path: Path, server: ServerProcess, hub: FakeHub, autoevol_home: Path
) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 5)
    result = run_cli(evolve(server.url, "--push-to-hub", REPO, "--hub-private"), home=autoevol_home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"pushed to the Hub: {hub.url}/datasets/{REPO}"
    run_dir = tmp_path / "runs" / "x"

    assert hub.repos[REPO]["type"] == "dataset" and hub.repos[REPO]["visibility"] == "private"
    assert set(hub.files[REPO]) == {PARQUET, "README.md"}
    assert hub.files[REPO][PARQUET] == (run_dir / "output" / "evolved.parquet").read_bytes()
    card = hub.files[REPO]["README.md"].decode()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    method_id = manifest["config"]["methods"][0]["id"]
    summary = json.loads((run_dir / "output" / "summary.json").read_text())
    assert method_id in card and "`openai:fake`" in card
    assert f"Training rows: **{summary['training_rows']}**" in card
    assert "| 1 | 5 |" in card and "path: data/train-*" in card
    assert str(tmp_path) not in card and "127.0.0.1" not in card  # no local paths, no private hosts

    authed = [r for r in hub.requests if r.path != "/api/agent-harnesses"]
    assert [f"{r.method} {r.path}" for r in authed] == [
        "POST /api/repos/create", "POST /api/validate-yaml", f"POST /api/datasets/{REPO}/preupload/main",
        f"POST /api/datasets/{REPO}/commit/main"]
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in authed)
    no_token_anywhere([result.stdout, result.stderr], run_dir)


def test_a_refused_push_is_one_line_and_the_run_can_be_pushed_later(
    tmp_path: Path, server: ServerProcess, hub: FakeHub, autoevol_home: Path
) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 3)
    hub.status = 401
    refused = run_cli(evolve(server.url, "--push-to-hub", REPO), home=autoevol_home, cwd=tmp_path)
    assert refused.returncode == 8, (refused.stdout, refused.stderr)
    assert "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith(f"error: push to {REPO} failed: HTTP 401"), refused.stderr
    assert "autoevol push runs/x org/evolved" in refused.stderr
    run_dir = tmp_path / "runs" / "x"
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "finished"
    assert "training rows: 3" in refused.stdout  # the outputs were written before the push

    hub.status = 200
    pushed = run_cli(["push", "runs/x", REPO], home=autoevol_home, cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    assert hub.files[REPO][PARQUET] == (run_dir / "output" / "evolved.parquet").read_bytes()
    assert "visibility" not in hub.repos[REPO]  # no --hub-private: the namespace's default applies
    no_token_anywhere([refused.stdout, refused.stderr, pushed.stdout, pushed.stderr], run_dir)


def test_push_checks_token_and_repo_before_the_run_spends_anything(
    tmp_path: Path, server: ServerProcess, hub: FakeHub, autoevol_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 3)
    bad_repo = run_cli(evolve(server.url, "--push-to-hub", "no-slash"), home=autoevol_home, cwd=tmp_path)
    unfinished = run_cli(["push", "nowhere", REPO], home=autoevol_home, cwd=tmp_path)
    assert unfinished.returncode == 2 and "not a finished run" in unfinished.stderr, unfinished.stderr
    monkeypatch.delenv("HF_TOKEN")
    no_token = run_cli(evolve(server.url, "--push-to-hub", REPO), home=autoevol_home, cwd=tmp_path)
    for result, words in ((bad_repo, "wants ORG/NAME"), (no_token, "HF_TOKEN")):
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists() and hub.requests == []
