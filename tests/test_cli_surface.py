"""The command line's surface: --dry-run sends nothing, one option set for evolve/optimize/run,
--config files, --version, `presets`, help that keeps option names whole at 80 columns, and the
detected schema printed and recorded on every run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoevol.cli import app
from autoevol.data import sample_path
from tests.fixtures.evolve_server import fake_server, run_cli, write_seeds

GSM8K = sample_path("gsm8k_train_sample.jsonl")


def test_dry_run_validates_prints_schema_split_and_priced_estimate_and_sends_nothing(
    tmp_path: Path, autoevol_home: Path
) -> None:
    with fake_server() as server:
        # No --model: a real run would ask the server for its model list; a dry run asks nothing.
        result = run_cli(["run", str(GSM8K), "--field", "question", "--out", "runs/x", "--base-url", server.url,
                          "--dry-run", "--price-in", "0.15", "--price-out", "0.60"], home=autoevol_home, cwd=tmp_path)
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"question": "one?"}\n{"question": \n', encoding="utf-8")
        refused = run_cli(["optimize", str(bad), "--out", "runs/y", "--base-url", server.url, "--dry-run"],
                          home=autoevol_home, cwd=tmp_path)
    assert server.stats["requests"] == 0
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f'data: {GSM8K} · schema instruction, field "question" (given) · 200 rows'
    assert lines[1] == "optimisation split: dev 50, train 150"
    assert lines[2].startswith("estimate: optimisation: ~5,300 calls, up to ~") and "$" in lines[2]
    assert lines[3].startswith("estimate: final evolution: ~400 calls") and lines[3].endswith(tuple("0123456789"))
    assert lines[-1] == "dry run: no request was made"
    assert not (tmp_path / "runs").exists()
    # Validation comes first: a bad row under the default --on-bad-row fail stops before any estimate.
    assert refused.returncode == 3 and "estimate" not in refused.stdout, refused
    assert refused.stderr.startswith(f"error: {bad}:2") and "malformed JSON" in refused.stderr


def test_config_file_run_records_detected_schema_and_command_line_wins(tmp_path: Path, autoevol_home: Path) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 4)
    with fake_server() as server:
        (tmp_path / "run.toml").write_text(
            f'model = "openai:fake"\nbase-url = "{server.url}"\nlimit = 2\non_bad_row = "skip"\n'
            'export = ["alpaca", "sharegpt"]\n', encoding="utf-8")
        done = run_cli(["evolve", "seeds.jsonl", "--out", "runs/x", "--config", "run.toml", "--limit", "3"],
                       home=autoevol_home, cwd=tmp_path)
        (tmp_path / "typo.toml").write_text('limt = 2\n', encoding="utf-8")
        typo = run_cli(["evolve", "seeds.jsonl", "--out", "runs/y", "--config", "typo.toml"], home=autoevol_home,
                       cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("data: ") and "schema instruction" in done.stdout
    run = tmp_path / "runs" / "x"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["data"]["limit"] == 3 and manifest["config"]["data"]["on_bad_row"] == "skip"
    assert manifest["operational"]["data"]["detected"] == {"schema": "instruction", "field": "instruction",
                                                           "how": "detected"}
    evolved = [json.loads(line) for line in (run / "output" / "evolved.jsonl").read_text().splitlines()]
    alpaca = [json.loads(line) for line in (run / "output" / "evolved.alpaca.jsonl").read_text().splitlines()]
    sharegpt = [json.loads(line) for line in (run / "output" / "evolved.sharegpt.jsonl").read_text().splitlines()]
    assert len(evolved) == len(alpaca) == len(sharegpt) == 3
    assert alpaca[0] == {"instruction": evolved[0]["instruction"], "input": "", "output": evolved[0]["response"],
                         "id": evolved[0]["id"]}
    assert [t["from"] for t in sharegpt[0]["conversations"]] == ["human", "gpt"]
    assert typo.returncode == 2 and "unknown key 'limt'" in typo.stderr


def test_version_presets_and_one_option_set() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).stdout.startswith("autoevol 0.")
    table = runner.invoke(app, ["presets"]).stdout.splitlines()
    steps = next(line for line in table if line.split()[:1] == ["steps"])
    assert steps.split() == ["steps", "10", "10", "2", "10"]  # paper, default, demo, evol-instruct
    shared = ("--limit", "--on-bad-row", "--id-field", "--rule-set", "--encoding", "--split", "--overwrite",
              "--dry-run", "--config", "--schema", "--field")
    for command in ("evolve", "optimize", "run"):
        text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"}, terminal_width=80).stdout
        missing = [name for name in shared if name not in text]
        assert not missing, (command, missing)
        # Whole option names at 80 columns (Rich's tables cut them to `--request-time…`).
        assert "--request-timeout" in text and "--no-math-answers" in text and "…" not in text
        assert all(len(line) <= 80 for line in text.splitlines())


@pytest.mark.parametrize("command", ["evolve", "optimize"])
def test_initial_method_or_method_is_checked_in_a_dry_run(command: str, tmp_path: Path, autoevol_home: Path) -> None:
    flag = "--method" if command == "evolve" else "--initial-method"
    result = CliRunner().invoke(app, [command, str(GSM8K), "--field", "question", "--out", str(tmp_path / "r"),
                                      "--dry-run", flag, "no-such-method"])
    assert result.exit_code == 2, result.output
