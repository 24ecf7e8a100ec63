"""The bad-input corpus (tests/data/bad_inputs/), through the real CLI against the fake OpenAI server.

Every file is run under both bad-row policies. A failing run prints exactly one line on stderr (no
traceback) naming the file, the line and the field where they apply, and exits with the data error
code 3. A `skip` run that finishes accounts for every row of the file in `output/summary.json`
(accepted + rejected + failed == rows), and each bad row is a `bad_input` row whose error names its
file and line. A `skip` run whose rows are all bad is an error too, after recording what it read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.evolve_server import ServerProcess, fake_server, run_cli

CORPUS = Path(__file__).resolve().parent / "data" / "bad_inputs"
DATA_ERROR = 3


@dataclass(frozen=True)
class Outcome:
    """What one policy must give: the exit code, the stderr line (regex) or the row accounting."""

    rc: int
    message: str | None = None  # regex searched in the single stderr line when rc != 0
    rows: int | None = None  # rows of the file, all accounted for in summary.json
    bad: int = 0  # rows failed as bad_input


@dataclass(frozen=True)
class Case:
    file: str
    fail: Outcome
    skip: Outcome
    args: tuple[str, ...] = ()


def same(outcome: Outcome) -> tuple[Outcome, Outcome]:
    return outcome, outcome


NO_USABLE = r"no usable rows \(all {n} rows are bad; the first, line {line}: "
CASES = {
    "malformed line": Case("malformed.jsonl", Outcome(3, r"malformed\.jsonl:5: malformed JSON \(Expecting"),
                           Outcome(0, rows=7, bad=1)),
    "missing field": Case("missing_field.jsonl",
                          Outcome(3, r"missing_field\.jsonl:3 field 'instruction': missing field "
                                     r"\(row has keys: id, output\)$"),
                          Outcome(0, rows=4, bad=1)),
    "wrong types": Case("wrong_type.jsonl",
                        Outcome(3, r"wrong_type\.jsonl:2 field 'instruction': expected a string, got int$"),
                        Outcome(0, rows=5, bad=2)),
    "wrong field": Case("good.jsonl",
                        Outcome(3, r"good\.jsonl:1 field 'questionz': missing field "
                                   r"\(row has keys: id, instruction, output\)$"),
                        Outcome(3, r"good\.jsonl: " + NO_USABLE.format(n=5, line=1)
                                + r".*\); no row has the field 'questionz': check --field"),
                        ("--field", "questionz")),
    "empty": Case("empty.jsonl", *same(Outcome(3, r"empty\.jsonl: no rows$"))),
    "whitespace only": Case("whitespace.jsonl", *same(Outcome(3, r"whitespace\.jsonl: no rows$"))),
    "binary": Case("binary.jsonl", Outcome(3, r"binary\.jsonl:1: not UTF-8 text \("),
                   Outcome(3, r"binary\.jsonl: " + NO_USABLE.format(n=r"\d+", line=1) + r"not UTF-8 text")),
    "latin-1": Case("latin1.jsonl",
                    Outcome(3, r"latin1\.jsonl:1: not UTF-8 text \(.*\); if the file uses another "
                               r"encoding, pass it with --encoding \(e\.g\. --encoding latin-1\)$"),
                    Outcome(3, r"latin1\.jsonl: " + NO_USABLE.format(n=4, line=1) + r".*--encoding latin-1")),
    "latin-1 with --encoding": Case("latin1.jsonl", *same(Outcome(0, rows=4)), ("--encoding", "latin-1")),
    "UTF-16": Case("utf16.jsonl", *same(Outcome(3, r"utf16\.jsonl: UTF-16 text \(it starts with a UTF-16 "
                                                    r"byte-order mark\); save it as UTF-8, or pass "
                                                    r"--encoding utf-16$"))),
    "UTF-16 with --encoding": Case("utf16.jsonl", *same(Outcome(0, rows=4)), ("--encoding", "utf-16")),
    "pretty-printed object": Case("pretty_object.json", *same(Outcome(
        3, r"pretty_object\.json: one JSON object over 5 lines \(pretty-printed\), not JSON lines or a JSON "
           r"array; put each row on one line \(JSON lines\) or in a top-level array$"))),
    "object wrapping the rows": Case("wrapped.json", *same(Outcome(
        3, r"wrapped\.json: one JSON object over \d+ lines \(pretty-printed\), not JSON lines or a JSON "
           r"array; its key 'data' holds a list: extract it, e\.g\. jq -c '\.data\[\]' wrapped\.json "
           r"> wrapped\.jsonl$"))),
    "duplicate ids": Case("duplicate_ids.jsonl",
                          Outcome(3, r"duplicate_ids\.jsonl:4 field 'id': duplicate seed id 'q2'$"),
                          Outcome(0, rows=5, bad=1)),
    "ShareGPT role order": Case(
        "sharegpt_order.jsonl",
        Outcome(3, r"sharegpt_order\.jsonl:2 field 'conversations\[0\]\.from': a conversation starts with a "
                   r"user turn \(after any system turn\), got 'gpt'$"),
        Outcome(0, rows=6, bad=2)),
    "ragged CSV": Case("ragged.csv", Outcome(3, r"ragged\.csv:3: row has more cells than the header's 3$"),
                       Outcome(0, rows=5, bad=2)),
    "Parquet with the wrong schema": Case(
        "wrong_schema.parquet",
        Outcome(3, r"wrong_schema\.parquet:1 field 'instruction': expected a string, got int$"),
        Outcome(3, r"wrong_schema\.parquet: " + NO_USABLE.format(n=3, line=1) + r"field 'instruction': "
                   r"expected a string, got int\)$")),
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with fake_server() as running:
        yield running


def evolve(data: Path, out: Path, url: str, policy: str, *extra: str, home: Path) -> tuple[int, str]:
    args = ["evolve", str(data), "--model", "openai:fake", "--base-url", url, "--out", str(out),
            "--rounds", "1", "--quiet", "--on-bad-row", policy, *extra]
    done = run_cli(args, home=home, cwd=out.parent)
    assert "Traceback" not in done.stderr + done.stdout
    return done.returncode, done.stderr


def check(outcome: Outcome, rc: int, stderr: str, out: Path, data_name: str) -> None:
    assert rc == outcome.rc, stderr
    summary_path = out / "output" / "summary.json"
    if rc != 0:
        lines = stderr.splitlines()
        assert len(lines) == 1, stderr
        assert lines[0].startswith("error: ")
        assert outcome.message and re.search(outcome.message, lines[0]), lines[0]
    else:
        assert stderr == ""
    if outcome.rows is None:
        return
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    first = summary["rounds"][0]
    assert first["inputs"] == outcome.rows
    assert first["accepted"] + first["rejected"] + first["failed"] == outcome.rows
    assert first["categories"].get("bad_input", 0) == outcome.bad
    bad = [json.loads(line) for line in (out / "output" / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    bad = [row for row in bad if row["failure_category"] == "bad_input"]
    assert len(bad) == outcome.bad
    assert all(re.search(re.escape(data_name) + r":\d+", row["error"]) for row in bad)


@pytest.mark.parametrize("policy", ["fail", "skip"])
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_corpus(name: str, policy: str, server: ServerProcess, tmp_path: Path) -> None:
    case = CASES[name]
    outcome = case.fail if policy == "fail" else case.skip
    out = tmp_path / "run"
    rc, stderr = evolve(CORPUS / case.file, out, server.url, policy, *case.args, home=tmp_path / "home")
    check(outcome, rc, stderr, out, case.file)


def test_skip_with_no_usable_row_still_records_every_row(server: ServerProcess, tmp_path: Path) -> None:
    """Exit 3, and what was read is kept: each bad row is in rejected.jsonl with its own error."""
    out = tmp_path / "run"
    rc, stderr = evolve(CORPUS / "good.jsonl", out, server.url, "skip", "--field", "questionz", home=tmp_path / "h")
    assert rc == DATA_ERROR, stderr
    summary = json.loads((out / "output" / "summary.json").read_text(encoding="utf-8"))
    assert summary["rounds"][0] | {"categories": None} == {"round": 1, "inputs": 5, "accepted": 0, "rejected": 0,
                                                           "failed": 5, "categories": None, "answer_cut": 0,
                                                           "judge_unparsable": 0}
    assert summary["stopped"]["resumable"] is False
    rows = [json.loads(line) for line in (out / "output" / "rejected.jsonl").read_text().splitlines()]
    assert [r["error"].split(" field")[0].rsplit("/", 1)[-1] for r in rows] == [f"good.jsonl:{i}" for i in range(1, 6)]
    assert json.loads((out / "manifest.json").read_text())["status"] == "failed"


def test_a_ten_megabyte_line_is_one_row(server: ServerProcess, tmp_path: Path) -> None:
    """Generated here (not committed): a 10 MB instruction among ordinary rows, under both policies."""
    data = tmp_path / "long.jsonl"
    long = "Count the words in this text: " + "lorem ipsum " * (10 * 2**20 // 12)
    rows = [{"id": "a", "instruction": "Compute 1 plus 7"}, {"id": "big", "instruction": long},
            {"id": "c", "instruction": "Compute 2 plus 14"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert data.stat().st_size > 10 * 2**20
    for policy in ("fail", "skip"):
        out = tmp_path / f"run-{policy}"
        rc, stderr = evolve(data, out, server.url, policy, home=tmp_path / "home")
        check(Outcome(0, rows=3), rc, stderr, out, data.name)
        # Read whole and sent: the server's reply is cut at max_tokens, so the row is a model verdict.
        rejected = [json.loads(line) for line in (out / "output" / "rejected.jsonl").open(encoding="utf-8")]
        assert [(r["seed_id"], r["failure_category"]) for r in rejected] == [("big", "truncated")]


def test_optimize_with_a_wrong_field_names_it(server: ServerProcess, tmp_path: Path) -> None:
    args = ["optimize", str(CORPUS / "good.jsonl"), "--model", "openai:fake", "--base-url", server.url,
            "--out", str(tmp_path / "run"), "--quiet", "--field", "questionz"]
    done = run_cli(args, home=tmp_path / "home", cwd=tmp_path)
    assert done.returncode == DATA_ERROR, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    # optimize stops at the first bad row by default, as evolve does (--on-bad-row skip to go on).
    assert "field 'questionz': missing field (row has keys: id, instruction, output)" in done.stderr
