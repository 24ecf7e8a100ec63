"""The optimisation loop end to end through the API, on scripted evol and optimizer LLMs.

The scripted world (tests/support/optimize_script.py) makes a method's dev failure rate a
function of its QUALITY tag: q0 never fails, q10 always fails, and the failing sets are nested,
so a lower q is never worse. The initial method e0 plays q5.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from autoevol.api import Roles, optimize_async, run_async
from autoevol.config import (
    EvolveSettings,
    ExecSettings,
    OptimizeSettings,
    evolve_settings,
    optimize_settings,
)
from autoevol.data.records import Seed
from autoevol.errors import BudgetExhausted
from autoevol.llm.spec import parse_model_spec
from autoevol.methods import load_method
from autoevol.optimization.estimate import estimate
from autoevol.optimization.job import OptimizeOutcome
from autoevol.store.manifest import Manifest
from autoevol.types import user
from tests.support.optimize_script import FAIL_ANSWER, Child, World, scripted_world, tag, write_data

E0 = load_method("initial")
ROLES = Roles(
    evol=parse_model_spec("openai:evol", base_url="http://127.0.0.1:9/v1"),
    optimizer=parse_model_spec("openai:opt", base_url="http://127.0.0.1:9/v1"),
)
SMALL = {"dev_size": 10, "batch_size": 3, "steps": 1, "candidates": 3}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_data(tmp_path / "data.jsonl", 40)


def optimize(
    data: Path, out: Path, world: World, settings: OptimizeSettings, *,
    evolve: EvolveSettings | None = None, max_calls: int | None = None,
) -> OptimizeOutcome:
    from autoevol.data.source import DataSource

    return asyncio.run(optimize_async(
        DataSource(data), roles=ROLES, out=out, settings=settings, evolve_settings=evolve or EvolveSettings(),
        exec_settings=ExecSettings(quiet=True, max_calls=max_calls), backends=world.backends,
    ))


def settings(**overrides: Any) -> OptimizeSettings:
    return OptimizeSettings(**(SMALL | overrides))


def report(out: Path) -> dict[str, Any]:
    return json.loads((out / "output" / "optimization.json").read_text(encoding="utf-8"))


def lambdas(step: Mapping[str, Any]) -> dict[int, float]:
    return {int(k): v["lambda"] for k, v in step["scores"].items()}


def stored(run: Path, name: str) -> Any:
    """A value from the run's state.db, read without reopening the run."""
    with closing(sqlite3.connect(f"file:{run / 'state.db'}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()
    return json.loads(row[0]) if row else None


def verdicts(run: Path, method_id: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(f"file:{run / 'state.db'}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT payload FROM units WHERE key LIKE ?", (f"score|{method_id}|%",)).fetchall()
    return [json.loads(r[0]) for r in rows]


def child_id(parent_template: str, name: str, quality: int, length: int = 40) -> str:
    return E0.derive(f"{tag(name, quality, length)}\n{parent_template}").id


def test_the_lowest_lambda_candidate_is_selected(data: Path, tmp_path: Path) -> None:
    world = scripted_world({"e0": [Child("a", 8), Child("b", 0), Child("c", 3)]})
    outcome = optimize(data, tmp_path / "run", world, settings())
    step = report(tmp_path / "run")["steps"][0]
    scores = lambdas(step)
    assert set(scores) == {0, 1, 2, -1}  # every candidate and the incumbent were scored
    assert scores[1] == 0.0 and scores[0] > scores[-1] > scores[1]
    assert scores[2] <= scores[-1]
    assert step["selected"] == 1 and step["lambda"] == 0.0
    assert outcome.best.id == child_id(E0.template, "b", 0) == step["candidates"][1]["method_id"]
    assert outcome.best.parent_id == E0.id
    assert outcome.best_lambda == 0.0
    # λ comes with a Wilson interval: 0/10 -> [0, 0.2775]
    assert step["scores"]["1"]["ci95"] == [0.0, 0.2775]
    # Everything behind the step is persisted: trajectory, candidates and per-item dev verdicts.
    run = tmp_path / "run"
    assert len(stored(run, "opt/1/trajectory")) == 3
    assert [c["index"] for c in stored(run, "opt/1/candidates")] == [0, 1, 2]
    for index, score in step["scores"].items():
        items = verdicts(run, score["method_id"])
        assert len(items) == 10 and sum(v["failed"] for v in items) == score["failures"], index
        assert all(v["response"] == FAIL_ANSWER for v in items if v["failed"])


def test_the_incumbent_is_kept_when_every_candidate_is_worse(data: Path, tmp_path: Path) -> None:
    world = scripted_world({"e0": [Child("a", 8), Child("b", 9), Child("c", 10)]})
    outcome = optimize(data, tmp_path / "run", world, settings(steps=2))
    result = report(tmp_path / "run")
    for step in result["steps"]:
        scores = lambdas(step)
        assert all(scores[j] > scores[-1] for j in (0, 1, 2))
        assert step["selected"] == "kept incumbent" and step["decided_by"] == "lambda"
        assert [c["outcome"] for c in step["candidates"]] == ["higher_lambda"] * 3
        assert "higher than the incumbent's" in step["candidates"][0]["why"]
        assert step["lambda"] == scores[-1]
    assert outcome.best.id == E0.id
    assert result["parent_chain"] == []


def test_equal_lambda_prefers_the_higher_length_ratio(data: Path, tmp_path: Path) -> None:
    world = scripted_world({"e0": [Child("a", 0, length=40), Child("b", 0, length=120), Child("c", 9)]})
    optimize(data, tmp_path / "run", world, settings(tie_break="length_ratio"))
    step = report(tmp_path / "run")["steps"][0]
    assert step["scores"]["0"]["lambda"] == step["scores"]["1"]["lambda"] == 0.0
    assert step["scores"]["1"]["length_ratio"] > step["scores"]["0"]["length_ratio"]
    assert step["selected"] == 1


def test_tie_break_index_prefers_the_lower_index(data: Path, tmp_path: Path) -> None:
    world = scripted_world({"e0": [Child("a", 9), Child("b", 0, length=40), Child("c", 0, length=120)]})
    optimize(data, tmp_path / "run", world, settings(tie_break="index"))
    step = report(tmp_path / "run")["steps"][0]
    assert step["scores"]["1"]["lambda"] == step["scores"]["2"]["lambda"] == 0.0
    assert step["selected"] == 1


def test_a_full_tie_goes_to_the_lower_index_and_the_incumbent_wins_its_ties(data: Path, tmp_path: Path) -> None:
    # b and c answer identically: same λ, same length ratio -> b (lower index).
    world = scripted_world({"e0": [Child("a", 9), Child("b", 0), Child("c", 0)]})
    optimize(data, tmp_path / "one", world, settings())
    assert report(tmp_path / "one")["steps"][0]["selected"] == 1
    # A candidate that behaves exactly like the incumbent (q5, a name as long as "e0", so the same
    # λ and the same length ratio) does not replace it.
    world = scripted_world({"e0": [Child("zz", 5), Child("b", 9)]})
    optimize(data, tmp_path / "two", world, settings(candidates=2))
    step = report(tmp_path / "two")["steps"][0]
    assert step["scores"]["0"]["lambda"] == step["scores"]["-1"]["lambda"]
    assert step["selected"] == "kept incumbent"
    assert step["candidates"][0]["outcome"] == "lost_tie_break"
    assert "incumbent keeps its place" in step["candidates"][0]["why"]


REGRESSING = {
    "e0": [Child("a", 1), Child("x", 9)],
    "a": [Child("b", 7), Child("y", 10)],  # every proposal from `a` is worse than `a`
}


def test_best_so_far_survives_a_regressing_step(data: Path, tmp_path: Path) -> None:
    world = scripted_world(REGRESSING)
    outcome = optimize(data, tmp_path / "run", world,
                       settings(steps=2, candidates=2, incumbent_competes=False, return_best=True))
    steps = report(tmp_path / "run")["steps"]
    a, b = child_id(E0.template, "a", 1), None
    assert steps[0]["selected"] == 0 and steps[0]["candidates"][0]["method_id"] == a
    assert steps[1]["selected"] == 0  # the incumbent does not compete: the worse b is selected
    b = steps[1]["candidates"][0]["method_id"]
    assert "-1" not in steps[1]["scores"]
    assert steps[1]["lambda"] > steps[0]["lambda"]
    assert outcome.best.id == a != b
    assert outcome.best_lambda == steps[0]["lambda"]
    saved = json.loads((tmp_path / "run" / "output" / "best_method.json").read_text(encoding="utf-8"))
    assert saved["id"] == a


def test_paper_preset_returns_the_last_selected_method(data: Path, tmp_path: Path) -> None:
    world = scripted_world(REGRESSING)
    paper = optimize_settings("paper", **(SMALL | {"steps": 2, "candidates": 2}))
    outcome = optimize(data, tmp_path / "run", world, paper, evolve=evolve_settings("paper"))
    steps = report(tmp_path / "run")["steps"]
    assert steps[1]["selected"] == 0
    assert outcome.best.id == steps[1]["candidates"][0]["method_id"]
    assert outcome.best.parent_id == steps[0]["candidates"][0]["method_id"]
    assert outcome.best_lambda == steps[1]["lambda"]
    manifest = Manifest.load(tmp_path / "run").config()
    # Every resolved setting (a late field at its default is left out, and reads back as that default).
    assert manifest["optimize"] == paper.hashed() and OptimizeSettings(**manifest["optimize"]) == paper
    assert manifest["optimize"]["incumbent_competes"] is False
    assert manifest["optimize"]["return_best"] is False
    assert manifest["evolve"]["rule_set"] == "none"  # the paper keeps every row of its final pass


def test_patience_stops_early(data: Path, tmp_path: Path) -> None:
    world = scripted_world({"e0": [Child("a", 9)]})
    optimize(data, tmp_path / "run", world, settings(steps=5, candidates=1, patience=2))
    steps = report(tmp_path / "run")["steps"]
    # Step 1 keeps e0 (its first score is the best so far); steps 2 and 3 do not improve on it.
    assert [s["step"] for s in steps] == [1, 2, 3]
    events = (tmp_path / "run" / "events.jsonl").read_text(encoding="utf-8")
    assert '"early_stop"' in events


def test_paper_patience_stops_when_lambda_no_longer_decreases(data: Path, tmp_path: Path) -> None:
    # The paper returns the last selected method and stops "when λ no longer decreases": a step
    # counts as progress only when its λ is below the lowest so far. Step 3 improves on step 2 but
    # not on step 1, so with patience 2 the run stops there instead of reaching d.
    plan = {"e0": [Child("a", 2)], "a": [Child("b", 8)], "b": [Child("c", 5)], "c": [Child("d", 0)]}
    paper = optimize_settings("paper", **(SMALL | {"steps": 5, "candidates": 1, "patience": 2}))
    outcome = optimize(data, tmp_path / "run", scripted_world(plan), paper, evolve=evolve_settings("paper"))
    steps = report(tmp_path / "run")["steps"]
    assert [s["step"] for s in steps] == [1, 2, 3]
    first, second, third = (s["lambda"] for s in steps)
    assert first < third < second
    assert outcome.best.id == steps[2]["candidates"][0]["method_id"]  # still the last selected
    assert '"early_stop"' in (tmp_path / "run" / "events.jsonl").read_text(encoding="utf-8")
    # Without patience (the paper preset's is 1) the same run goes on to d.
    longer = optimize_settings("paper", **(SMALL | {"steps": 4, "candidates": 1})).model_copy(update={"patience": None})
    optimize(data, tmp_path / "long", scripted_world(plan), longer, evolve=evolve_settings("paper"))
    assert [s["step"] for s in report(tmp_path / "long")["steps"]] == [1, 2, 3, 4]


def test_the_paper_preset_stops_at_the_first_step_whose_lambda_does_not_decrease(data: Path, tmp_path: Path) -> None:
    # P §3: "stop when the failure rate no longer decreases". Step 1 lowers λ (a: 0.2); step 2's only
    # proposal (b: 0.8) does not, so the paper preset stops there without being told a patience.
    plan = {"e0": [Child("a", 2)], "a": [Child("b", 8)], "b": [Child("c", 5)], "c": [Child("d", 0)]}
    paper = optimize_settings("paper", **(SMALL | {"steps": 4, "candidates": 1}))
    optimize(data, tmp_path / "run", scripted_world(plan), paper, evolve=evolve_settings("paper"))
    steps = report(tmp_path / "run")["steps"]
    assert [s["step"] for s in steps] == [1, 2]
    assert steps[0]["lambda"] < steps[1]["lambda"]
    assert '"early_stop"' in (tmp_path / "run" / "events.jsonl").read_text(encoding="utf-8")
    default = optimize_settings("default", **(SMALL | {"steps": 4, "candidates": 1}))
    optimize(data, tmp_path / "default", scripted_world(plan), default)
    assert len(report(tmp_path / "default")["steps"]) == 4  # `default` has no patience


HYGIENE = {
    "e0": [
        Child("fixed", 1, kind="lost_slot_repairable"),
        Child("noslot", 0, kind="lost_slot"),
        Child("nomarker", 0, kind="no_final_marker"),
        Child(kind="same"),
        Child(kind="no_block"),
    ]
}


def test_hygiene_repairs_or_discards_and_records_why(data: Path, tmp_path: Path) -> None:
    world = scripted_world(HYGIENE)
    outcome = optimize(data, tmp_path / "run", world, settings(candidates=5))
    step = report(tmp_path / "run")["steps"][0]
    verdicts = [(c["index"], c["rejected"], c["repaired"], c["method_id"] is not None) for c in step["candidates"]]
    assert verdicts == [
        (0, None, "repaired_missing_slot", True),
        (1, "no_input_slot", None, False),
        (2, "no_final_marker", None, False),
        (3, "equals_parent", None, False),
        (4, "no_optimized_method_block", None, False),
    ]
    assert set(step["scores"]) == {"0", "-1"}  # discarded candidates cost no dev calls
    assert [c["outcome"] for c in step["candidates"]] == ["selected"] + ["discarded"] * 4
    assert step["candidates"][1]["why"] == "discarded by method hygiene: no_input_slot"
    assert step["selected"] == 0
    assert outcome.best.has_slot and outcome.best.template.endswith("#Instruction#:\n{instruction}")
    # The full record in the run state keeps every candidate's feedback next to its verdict.
    record = stored(tmp_path / "run", "opt/1/record")
    assert all(c["feedback"] for c in record["candidates"])
    assert record["candidates"][1]["method"] is None


def test_without_hygiene_the_paper_appends_the_instruction_and_keeps_the_parent(data: Path, tmp_path: Path) -> None:
    # The paper's code appends the instruction to a method without a slot, and keeps the current
    # method when no Optimized Method block comes back; neither may crash the run.
    world = scripted_world({"e0": [Child("noslot", 3, kind="lost_slot"), Child(kind="no_block")]})
    paper = optimize_settings("paper", **(SMALL | {"candidates": 2}))
    optimize(data, tmp_path / "run", world, paper, evolve=evolve_settings("paper"))
    step = report(tmp_path / "run")["steps"][0]
    assert [(c["rejected"], c["repaired"]) for c in step["candidates"]] == [
        (None, "appended_slot"), (None, "kept_parent:no_optimized_method_block"),
    ]
    assert step["candidates"][1]["method_id"] == E0.id
    assert step["scores"]["1"]["lambda"] == 0.5  # e0 plays q5 on a dev set that happens to split evenly
    assert step["selected"] == 0 and step["scores"]["0"]["lambda"] < 0.5


# 2: inside the trajectory; 5: inside the proposals; 40: inside step 1's dev scoring; 80: in step 2.
@pytest.mark.parametrize("max_calls", [2, 5, 40, 80])
def test_a_budget_stop_is_resumable_without_paying_twice(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_calls: int
) -> None:
    plan = {"e0": [Child("a", 2), Child("b", 4)], "a": [Child("c", 0), Child("d", 6)]}
    opt = settings(steps=2, candidates=2)

    monkeypatch.setenv("AUTOEVOL_HOME", str(tmp_path / "home-reference"))
    reference = scripted_world(plan)
    expected = optimize(data, tmp_path / "reference", reference, opt)
    total = reference.evol.calls + reference.optimizer.calls

    monkeypatch.setenv("AUTOEVOL_HOME", str(tmp_path / "home"))
    first = scripted_world(plan)
    with pytest.raises(BudgetExhausted):
        optimize(data, tmp_path / "run", first, opt, max_calls=max_calls)
    stopped = Manifest.load(tmp_path / "run")
    assert stopped.status == "stopped" and "budget" in (stopped.reason or "")
    paid_first = first.evol.calls + first.optimizer.calls
    assert max_calls <= paid_first < total
    assert not (tmp_path / "run" / "output" / "best_method.json").exists()

    second = scripted_world(plan)
    outcome = optimize(data, tmp_path / "run", second, opt, max_calls=10_000)
    paid_second = second.evol.calls + second.optimizer.calls
    assert paid_first + paid_second == total  # nothing paid twice
    assert Manifest.load(tmp_path / "run").status == "finished"
    assert outcome.best.id == expected.best.id
    assert report(tmp_path / "run")["steps"] == report(tmp_path / "reference")["steps"]


def test_best_method_artifact_loads_and_carries_lineage(data: Path, tmp_path: Path) -> None:
    plan = {"e0": [Child("a", 3), Child("x", 9)], "a": [Child("b", 0), Child("y", 9)]}
    outcome = optimize(data, tmp_path / "run", scripted_world(plan), settings(steps=2, candidates=2))
    path = tmp_path / "run" / "output" / "best_method.json"
    method = load_method(str(path))
    a = child_id(E0.template, "a", 3)
    b_template = f"{tag('b', 0)}\n{E0.template}"
    assert method.id == outcome.best.id == E0.derive(b_template).id
    assert method.template == b_template
    assert method.parent_id == a
    lineage = method.metadata["lineage"]
    assert lineage["parent_chain"] == [a, E0.id]
    assert [(h["step"], h["selected"]) for h in lineage["lambda_history"]] == [(1, 0), (2, 0)]
    history = [h["lambda"] for h in lineage["lambda_history"]]
    assert history[1] == 0.0 < history[0] and lineage["best_lambda"] == 0.0
    assert all(len(h["ci95"]) == 2 for h in lineage["lambda_history"])
    assert lineage["selected_on"]["models"]["evol"]["model"] == "openai:evol"
    assert lineage["selected_on"]["models"]["optimizer"]["model"] == "openai:opt"
    assert lineage["selected_on"]["data"]["path"] == str(data)
    dev_set = lineage["selected_on"]["dev_set"]
    assert dev_set["size"] == 10 and dev_set["hash"].startswith("d-")
    # The feedback that produced it and where it came from travel with the method.
    assert method.metadata["feedback"].startswith("Case 0 failed")
    assert method.metadata["step"] == 2 and method.metadata["candidate"] == 0
    # A saved method is usable for evolving other data.
    assert "Question 1" in method.render("Question 1: what is 2 + 2?")


def test_run_optimises_then_evolves_with_the_best_method(data: Path, tmp_path: Path) -> None:
    from autoevol.data.source import DataSource

    world = scripted_world({"e0": [Child("a", 9), Child("b", 0)]})
    result = asyncio.run(run_async(
        DataSource(data), roles=ROLES, out=tmp_path / "run", settings=settings(candidates=2),
        evolve_settings=EvolveSettings(), exec_settings=ExecSettings(quiet=True), backends=world.backends,
    ))
    assert result.optimization is not None
    best = result.optimization.best
    assert best.id == child_id(E0.template, "b", 0)
    assert result.summary["method"] == {"id": best.id, "lambda": 0.0}
    assert result.summary["training_rows"] == 40  # q0: every evolved row is answered
    rows = (tmp_path / "run" / "output").glob("*.jsonl")
    assert any(best.id in path.read_text(encoding="utf-8") for path in rows)


def _sample(n: int) -> Sequence[Seed]:
    return [Seed(f"s{i}", (user("What is two plus two, and why?"),), "x") for i in range(n)]


def test_cost_estimate_matches_the_spec_formula() -> None:
    method = load_method("initial")
    default = optimize_settings("default")
    got = estimate(default, evolve_settings("default"), 0, _sample(5), method)
    # SPEC §5.19: per step m ETA + m EMO optimizer calls and 10*l + m*50*2 (+50*2 incumbent) evol calls.
    # The incumbent's 50*2 is paid once: after step 1 it is the previous step's winner, already scored.
    per_step_opt, per_step_evol, incumbent = 2 * 5, 10 * 1 + 5 * 50 * 2, 50 * 2
    assert (per_step_opt, per_step_evol) == (10, 510)
    assert got.optimize_calls == 10 * (per_step_opt + per_step_evol) + incumbent == 5300
    assert got.evolve_calls == 0
    paper = estimate(optimize_settings("paper"), evolve_settings("paper"), 7000, _sample(5), method)
    assert paper.optimize_calls == 10 * (10 + 10 + 5 * 50 * 2)  # no incumbent re-score in the paper
    assert paper.evolve_calls == 7000 * 2  # one round, evolve + answer (SPEC §1.8 Table 11: 14,000)
    assert got.optimize_tokens > 0 and paper.evolve_tokens > 0


@pytest.mark.parametrize("steps", [1, 3])
def test_cost_estimate_matches_the_calls_a_run_really_makes(data: Path, tmp_path: Path, steps: int) -> None:
    # Each step's first child wins (no more failures, longer answers), and no candidate repeats an
    # earlier method, so only the incumbent is ever found in the stored verdicts.
    plan = {parent: [Child(child, quality=4 - k, length=80 + 40 * k), Child(f"{child}1", 7), Child(f"{child}2", 8)]
            for k, (parent, child) in enumerate((("e0", "a"), ("a", "b"), ("b", "c")))}
    opt = settings(candidates=3, dev_size=6, steps=steps)
    world = scripted_world(plan)
    optimize(data, tmp_path / "run", world, opt)
    got = estimate(opt, EvolveSettings(), 0, _sample(3), E0)
    assert world.optimizer.calls == steps * 2 * 3
    assert world.evol.calls == steps * (3 + 3 * 6 * 2) + 6 * 2  # the incumbent is scored once
    assert got.optimize_calls == world.evol.calls + world.optimizer.calls


def test_run_stopped_in_its_evolve_phase_resumes_without_paying_twice(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autoevol.api import resume_async
    from autoevol.data.source import DataSource

    plan = {"e0": [Child("a", 9), Child("b", 0)]}

    def run(out: Path, world: World, max_calls: int | None) -> Any:
        return asyncio.run(run_async(
            DataSource(data), roles=ROLES, out=out, settings=settings(candidates=2),
            evolve_settings=EvolveSettings(), exec_settings=ExecSettings(quiet=True, max_calls=max_calls),
            backends=world.backends,
        ))

    monkeypatch.setenv("AUTOEVOL_HOME", str(tmp_path / "home-reference"))
    reference = scripted_world(plan)
    run(tmp_path / "reference", reference, None)
    total = reference.evol.calls + reference.optimizer.calls
    optimisation_calls = total - 2 * 40  # the final pass: a rewrite and an answer per row

    monkeypatch.setenv("AUTOEVOL_HOME", str(tmp_path / "home"))
    first = scripted_world(plan)
    with pytest.raises(BudgetExhausted):
        run(tmp_path / "run", first, optimisation_calls + 30)
    paid_first = first.evol.calls + first.optimizer.calls
    assert optimisation_calls < paid_first < total  # stopped inside the final evolve pass
    assert (tmp_path / "run" / "output" / "best_method.json").exists()

    second = scripted_world(plan)
    result = asyncio.run(resume_async(tmp_path / "run", ExecSettings(quiet=True), backends=second.backends))
    assert first.evol.calls + first.optimizer.calls + second.evol.calls + second.optimizer.calls == total
    assert second.optimizer.calls == 0  # the optimisation was finished: replayed, not re-asked
    for name in ("evolved.jsonl", "rejected.jsonl", "best_method.json", "optimization.json"):
        ours, theirs = (tmp_path / "run" / "output" / name), (tmp_path / "reference" / "output" / name)
        assert ours.read_bytes() == theirs.read_bytes(), name
    assert result.summary["training_rows"] == 40


def test_a_candidate_whose_requests_the_model_rejects_scores_as_failures(data: Path, tmp_path: Path) -> None:
    from autoevol.errors import ContextWindowError
    from autoevol.llm.fake import ScriptedBackend
    from tests.support.optimize_script import evol_reply

    world = scripted_world({"e0": [Child("a", 0), Child("huge", 0)]})

    def evol(request: Any) -> str:
        if "NAME=huge" in request.messages[-1].content:
            raise ContextWindowError("prompt of 9000 tokens exceeds the 4096-token context")
        return evol_reply([m.to_dict() for m in request.messages])

    world.evol = ScriptedBackend(evol, identity="scripted-evol:huge")
    optimize(data, tmp_path / "run", world, settings(candidates=2))
    step = report(tmp_path / "run")["steps"][0]
    assert lambdas(step)[1] == 1.0 and step["selected"] == 0  # the run went on and chose the other one
    huge = verdicts(tmp_path / "run", step["scores"]["1"]["method_id"])
    assert {(v["category"], v["rule"]) for v in huge} == {("model_error", "ContextWindowError")}
