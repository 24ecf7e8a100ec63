"""The `autoevol` command line around the evolve pipeline: `evolve` against a fake OpenAI server in a
real subprocess, one-line errors without tracebacks, `methods list/show` and `cache stats/clear`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoevol.cli import app
from autoevol.methods import load_method
from tests.fixtures.evolve_server import ServerProcess, fake_server, run_cli, write_seeds


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with fake_server() as running:
        yield running


def tags(i: int) -> str:
    return {1: "[reject]", 4: "[parse]"}.get(i, "")


def evolve(url: str, *extra: str) -> list[str]:
    return ["evolve", "seeds.jsonl", "--model", "openai:fake", "--base-url", url, "--out", "runs/x", "--quiet",
            *extra]


def assert_one_line_error(result: object, code: int, starts: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"error: {starts}"), err


def test_evolve_prints_counts_by_status_and_writes_the_files(
    tmp_path: Path, server: ServerProcess, autoevol_home: Path
) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 6, tags)
    result = run_cli(evolve(server.url, "--concurrency", "2", "--request-timeout", "30"), home=autoevol_home,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == ("round 1: 6 in -> accepted 4, rejected 2, failed 0 "
                        "(reasons: parse_failure 1, stagnant_complexity 1)")
    assert "training rows: 4 -> runs/x/output/evolved.jsonl" in lines
    assert "rejected/failed rows: 2 -> runs/x/output/rejected.jsonl" in lines
    out = tmp_path / "runs" / "x" / "output"
    rows = [json.loads(line) for line in (out / "evolved.jsonl").read_text().splitlines()]
    assert [r["seed_id"] for r in rows] == ["q000", "q002", "q003", "q005"]
    assert {(r["evol_model"], r["method_id"]) for r in rows} == {("openai:fake", load_method("initial").id)}
    manifest = json.loads((tmp_path / "runs" / "x" / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["operational"]["models"]["evol"]["concurrency"] == 2

    # Same command again: everything is stored, nothing is asked again, same answer printed.
    again = run_cli(evolve(server.url), home=autoevol_home, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.splitlines()[0] == lines[0]

    # The cache commands see this run's requests (same AUTOEVOL_HOME).
    runner = CliRunner()
    stats = runner.invoke(app, ["cache", "stats", "--json"])
    assert stats.exit_code == 0, stats.output
    entries = json.loads(stats.stdout)["entries"]
    assert entries == 6 + 5 + 1  # a rewrite per seed, an answer per parsed rewrite, one parse retry
    assert "entries" in runner.invoke(app, ["cache", "stats"]).stdout
    cleared = runner.invoke(app, ["cache", "clear", "--yes"])
    assert cleared.exit_code == 0 and cleared.stdout.strip() == f"removed {entries} cached responses"
    assert json.loads(runner.invoke(app, ["cache", "stats", "--json"]).stdout)["entries"] == 0


def test_bad_row_policy_on_the_command_line(tmp_path: Path, server: ServerProcess, autoevol_home: Path) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 3)
    with (tmp_path / "seeds.jsonl").open("a") as handle:
        handle.write('{"id": "broken", "instruction": \n')
    failed = run_cli(evolve(server.url), home=autoevol_home, cwd=tmp_path)
    assert_one_line_error(failed, 3, "seeds.jsonl:4: malformed JSON")

    skipped = run_cli([*evolve(server.url, "--on-bad-row", "skip"), "--out", "runs/skip"], home=autoevol_home,
                      cwd=tmp_path)
    assert skipped.returncode == 0, skipped.stderr
    assert skipped.stdout.splitlines()[0] == "round 1: 4 in -> accepted 3, rejected 0, failed 1 (reasons: bad_input 1)"


def test_bad_model_spec_is_a_one_line_error_without_traceback(tmp_path: Path, autoevol_home: Path) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 2)
    result = run_cli(["evolve", "seeds.jsonl", "--model", "bogus", "--out", "runs/x"], home=autoevol_home,
                     cwd=tmp_path)
    assert_one_line_error(result, 2, "unknown model spec 'bogus': use `local`, `local:PATH.gguf`, `openai:MODEL`")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("extra", "code", "starts"),
    [
        (["--model", "local:/no/such/model.gguf"], 2, "model file not found: /no/such/model.gguf"),
        (["--preset", "nope"], 2, "unknown preset 'nope'"),
        (["--mix", "some"], 2, "invalid evolve settings: mix"),
        (["--method", "nosuch"], 2, "unknown method 'nosuch'"),
        (["--rule-set", "strict"], 2, "invalid evolve settings: rule_set"),
        (["--schema", "tsv"], 3, "seeds.jsonl: unknown schema 'tsv'"),
    ],
)
def test_bad_options_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: ServerProcess, extra: list[str], code: int, starts: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_seeds(tmp_path / "seeds.jsonl", 2)
    args = evolve(server.url)
    if extra[0] == "--model":  # replace the working model spec (with a base URL any name is a served model)
        index = args.index("--model")
        del args[index : index + 4]
    result = CliRunner().invoke(app, [*args, *extra])
    assert isinstance(result.exception, SystemExit) and result.exit_code == code, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {starts}"), result.stderr


def test_a_bad_choice_is_a_usage_error_listing_the_choices(tmp_path: Path, server: ServerProcess) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 2)
    result = CliRunner().invoke(app, [*evolve(server.url), "--on-bad-row", "maybe"])
    assert result.exit_code == 2
    text = " ".join(result.stderr.replace("│", " ").split())
    assert "'maybe' is not one of 'fail', 'skip'" in text


def test_missing_data_file_is_a_one_line_error(tmp_path: Path, server: ServerProcess, autoevol_home: Path) -> None:
    result = run_cli(evolve(server.url), home=autoevol_home, cwd=tmp_path)
    assert_one_line_error(result, 2, "data file not found: seeds.jsonl")
    assert not (tmp_path / "runs").exists()


def test_methods_list_and_show() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["methods", "list"])
    assert listed.exit_code == 0, listed.output
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert {"initial", "weak", "evol-constraints", "evol-breadth", "code-complexity"} <= set(names)
    assert f"initial{' ' * 18}{load_method('initial').id}" in listed.stdout

    shown = runner.invoke(app, ["methods", "show", "initial", "--instruction", "Add 2 and 3."])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith(f"# initial  id={load_method('initial').id}")
    assert "#Finally Rewritten Instruction#" in shown.stdout and shown.stdout.rstrip().endswith("Add 2 and 3.")

    missing = runner.invoke(app, ["methods", "show", "nosuch"])
    assert missing.exit_code == 2 and missing.stderr.startswith("error: unknown method 'nosuch'")


def test_methods_show_a_user_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("Make it harder.\n\n#Instruction#:\n{instruction}\n\n#Final Rewritten Instruction#:\n")
    shown = CliRunner().invoke(app, ["methods", "show", str(path), "--instruction", "Name a bird."])
    assert shown.exit_code == 0, shown.output
    assert "#Instruction#:\nName a bird.\n" in shown.stdout


def test_api_key_never_reaches_disk_or_output(tmp_path: Path, server: ServerProcess, autoevol_home: Path) -> None:
    import subprocess

    from tests.fixtures.evolve_server import CLI, cli_env

    canary = "sk-canary-7f3a9c1e5b2d4f60"
    write_seeds(tmp_path / "seeds.jsonl", 4, tags)
    env = cli_env(autoevol_home) | {"MY_PROVIDER_KEY": canary}
    result = subprocess.run([*CLI, *evolve(server.url, "--api-key-env", "MY_PROVIDER_KEY")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert canary not in result.stdout + result.stderr
    written = [p for root in (tmp_path / "runs", autoevol_home) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "cache.db" for p in written) and any(p.name == "manifest.json" for p in written)
    for path in written:
        assert canary.encode() not in path.read_bytes(), path
    manifest = json.loads((tmp_path / "runs" / "x" / "manifest.json").read_text())
    assert manifest["operational"]["models"]["evol"]["api_key_env"] == "MY_PROVIDER_KEY"
