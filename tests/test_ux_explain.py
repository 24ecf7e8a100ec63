"""The end-of-optimisation table through the CLI: what the winner beat, why each candidate lost, and
the diff of the selected method against its parent."""

from __future__ import annotations

import re
from pathlib import Path

from tests.fixtures.evolve_server import fake_server, run_cli, write_seeds
from tests.support.optimize_script import write_data
from tests.test_ux_progress import opt_server  # noqa: F401 (fixture)


def test_run_prints_the_step_table_and_the_winners_diff(
    tmp_path: Path, autoevol_home: Path, opt_server: str  # noqa: F811
) -> None:
    data = write_data(tmp_path / "opt.jsonl", 60)  # a split where both steps improve
    run = run_cli(["run", str(data), "--out", str(tmp_path / "run"), "--model", "openai:fake", "--base-url",
                   opt_server, "--preset", "demo", "-j", "2"], home=autoevol_home, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "incumbent λ" in out and "candidates (λ, or why discarded)" in out
    # The scripted world: e0 (q5) -> a (q2) -> b (q0), candidates 0 and 1 alike; ties go to the lower index.
    row = re.compile(r"│ (\d) +│ (\d\.\d{3}) +│ c0 (\d\.\d{3}) ✓; c1 (\d\.\d{3}) lost tie-break +│ candidate 0 "
                     r"\(λ (\d\.\d{3})\) +│ index")
    steps = [m.groups() for m in map(row.match, out.splitlines()) if m]
    assert [s[0] for s in steps] == ["1", "2"], out
    for _, incumbent, c0, c1, chosen in steps:
        assert float(c0) == float(c1) == float(chosen) < float(incumbent)
    assert steps[1][1] == steps[0][4]  # step 2's incumbent is step 1's winner, at the same λ
    selected = re.search(rf"selected: (m-\w+) \(dev λ {steps[1][4]}\), derived from (m-\w+)", out)
    assert selected is not None
    assert "-[NAME=a QUALITY=q2 LEN=040]" in out and "+[NAME=b QUALITY=q0 LEN=040]" in out
    # The table comes before the evolve summary, and --quiet leaves it out.
    assert out.index("incumbent λ") < out.index("training rows:")
    quiet = run_cli(["run", str(data), "--out", str(tmp_path / "quiet"), "--model", "openai:fake", "--base-url",
                     opt_server, "--preset", "demo", "-j", "2", "--quiet"], home=autoevol_home, cwd=tmp_path)
    assert quiet.returncode == 0 and "incumbent λ" not in quiet.stdout


def test_optimize_says_why_every_candidate_was_discarded(tmp_path: Path, autoevol_home: Path) -> None:
    data = write_seeds(tmp_path / "seeds.jsonl", 40)
    with fake_server() as server:  # its optimizer replies carry no method block
        run = run_cli(["optimize", str(data), "--out", str(tmp_path / "run"), "--model", "openai:fake",
                       "--base-url", server.url, "--preset", "demo"], home=autoevol_home, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if re.match(r"│ [12] ", line)]
    assert len(rows) == 2
    assert all("c0 discarded: no_optimized_method_block" in row for row in rows)
    assert "the starting method (initial); no candidate beat it" in run.stdout
