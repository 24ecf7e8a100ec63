"""The report of a finished run: what it shows, that it escapes, and summary.json's figures."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_openai_server import FakeOpenAIServer
from tests.support.report_run import IMG, SCRIPT, make_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOEVOL_HOME", str(tmp / "home"))
        yield make_run(tmp)


def html(run_dir: Path) -> str:
    return (run_dir / "output" / "report.html").read_text(encoding="utf-8")


def test_run_writes_the_report_and_it_is_self_contained(run_dir: Path) -> None:
    page = html(run_dir)
    assert page.startswith("<!DOCTYPE html>")
    assert "default-src 'none'" in page  # no script, font or remote load can run even if escaping failed
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page.replace("&lt;script&gt;", "")
    # λ, failures per step and per round, lengths, diversity: all five drawn by report/charts.py, with marks
    assert page.count("<svg") == 5 and page.count('role="img"') == 5 and page.count("<title>") == 6  # + the page's
    assert page.count('data-mark="err"') >= 4 and page.count('data-mark="ring"') == 2  # λ: 2 steps, 2 selected
    assert page.count('data-mark="bar"') >= 2 + 2 * 4  # the failure bars and the length/diversity bars
    assert 'id="lambda-chart"' in page


def test_injection_strings_are_escaped(run_dir: Path) -> None:
    page = html(run_dir)
    assert SCRIPT not in page and IMG not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img" not in page


def test_report_shows_every_step_every_candidate_and_why(run_dir: Path) -> None:
    page = html(run_dir)
    opt = json.loads((run_dir / "output" / "optimization.json").read_text(encoding="utf-8"))
    for step in opt["steps"]:
        assert f"Step {step['step']}: selected {step['selected']}" in page
        for candidate in step["candidates"]:
            why = candidate["why"] or candidate["rejected"]
            assert why.replace("'", "&#39;") in page, why
    assert "discarded by method hygiene: no_optimized_method_block" in page
    assert 'class="add">+ [NAME=a QUALITY=q3 LEN=040]' in page  # the selected method's diff vs its parent
    assert "Sample lineages" in page and "round 2" in page


def test_summary_records_per_round_usage_time_metrics_and_relative_paths(run_dir: Path) -> None:
    summary = json.loads((run_dir / "output" / "summary.json").read_text(encoding="utf-8"))
    assert summary["files"] == {"evolved": "output/evolved.jsonl", "parquet": "output/evolved.parquet",
                                "rejected": "output/rejected.jsonl", "report": "output/report.html"}
    for counts, entry in zip(summary["rounds"], summary["per_round"], strict=True):
        assert entry["round"] == counts["round"]
        assert entry["usage"]["calls"] > 0 and entry["seconds"] >= 0
        assert entry["metrics"]["n"] == counts["accepted"]
    r1, r2 = summary["per_round"]
    # The scripted evol LLM appends a sentence each round: instructions grow round over round.
    assert summary["metrics"]["seeds"]["words_mean"] < r1["metrics"]["words_mean"] < r2["metrics"]["words_mean"]
    assert r1["metrics"]["length_ratio"] > 1
    assert {(c["benchmark"], c["n"]) for c in summary["metrics"]["contamination"]} == {
        ("gsm8k_test", 13), ("gsm8k_test", 8), ("humaneval", 13), ("humaneval", 8)}
    total = sum(u["calls"] for u in summary["usage"] if u["phase"] == "evolve")
    assert sum(r["usage"]["calls"] for r in summary["per_round"]) == total


def test_report_command_rewrites_the_report_with_tags_and_a_user_benchmark(
    run_dir: Path, tmp_path: Path, fake_server: FakeOpenAIServer
) -> None:
    from typer.testing import CliRunner

    from autoevol.cli import app

    fake_server.reply = lambda body: '[{"tag": "Arithmetic"}, {"tag": "apples"}]'
    evolved = [json.loads(line) for line in (run_dir / "output" / "evolved.jsonl").read_text().splitlines()]
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"question": evolved[0]["instruction"]}) + "\n", encoding="utf-8")
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(out), "--decontaminate", str(bench),
                                      "--tagger-model", "openai:tagger", "--base-url", fake_server.url,
                                      "--tag-sample", "5"])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "bench.jsonl" in page and "arithmetic (5)" in page
    assert re.search(r"<td>training set</td><td class=\"n\">5</td><td class=\"n\">2.00</td>", page)


def test_a_discarded_candidates_raw_replies_are_shown_beside_why(run_dir: Path) -> None:
    page = html(run_dir)
    # Candidate 2 of step 1 replied without an Optimized Method block: its reply is the evidence.
    discarded = re.search(r"<summary>candidate 2: the optimizer's raw replies \(discarded: discarded by method "
                          r"hygiene: no_optimized_method_block\)</summary>(.*?)</details>", page, re.DOTALL)
    assert discarded is not None
    assert "Case 0 failed to evolve: the rewrite only restated the question." in discarded.group(1)
    assert "The method looks fine to me; I would not change it." in discarded.group(1)
    selected = page.count("the optimizer's raw replies (selected")
    assert selected == 2  # kept for every candidate, not only the discarded ones
