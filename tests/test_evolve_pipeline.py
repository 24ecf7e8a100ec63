"""End-to-end tests of the evolve pipeline (evolve -> respond -> detect, R rounds, mixing, bad input)
through `autoevol.api.evolve_async`, with a scripted backend whose replies depend only on what it
is asked: every accept / reject category and a model error appear, and every row is accounted for.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from autoevol.api import EvolveResult, Roles, evolve_async, resolve_methods
from autoevol.config import EvolveSettings, ExecSettings, evolve_settings
from autoevol.data.source import DataSource
from autoevol.errors import ConfigError, DataError, ResumeMismatchError, ServerError, TooManyErrors
from autoevol.llm.fake import ScriptedBackend
from autoevol.llm.spec import ModelSpec
from autoevol.methods import load_method
from autoevol.methods.method import EvolvingMethod
from autoevol.prompts import respond_messages
from autoevol.store.run import StateDB
from autoevol.types import CompletionRequest, Message

FINAL = "#Finally Rewritten Instruction#"
EVOL = ModelSpec(kind="openai", model="fake", base_url="http://fake.invalid/v1", max_retries=0)
INITIAL = load_method("initial")


class Script:
    """Replies keyed by tags in the text: evolve requests (one user message holding a method) get a
    rewrite in that method's format, answer requests (system prompt first) get an answer, the
    Equal / Not Equal judge gets a judgement. Every request is kept, with the method it used."""

    def __init__(self, methods: tuple[EvolvingMethod, ...] = (INITIAL,)) -> None:
        self.methods = methods
        self.requests: list[CompletionRequest] = []
        self.evolved_with: list[tuple[str, str]] = []  # (instruction, method name)

    def __call__(self, request: CompletionRequest) -> str:
        self.requests.append(request)
        messages = request.messages
        if messages[0].role == "system":
            return self.answer(messages[-1].content, messages)
        prompt = messages[-1].content
        if "Equal or Not Equal" in prompt:
            return "Equal" if "[same]" in prompt else "Not Equal"
        method, instruction = self.unrender(prompt)
        self.evolved_with.append((instruction, method.name))
        return self.evolve(method, instruction)

    def unrender(self, prompt: str) -> tuple[EvolvingMethod, str]:
        for method in self.methods:
            head, tail = method.template.split("{instruction}")
            if prompt.startswith(head) and prompt.endswith(tail):
                return method, prompt[len(head) : len(prompt) - len(tail)]
        raise AssertionError(f"not a rendering of any known method: {prompt[:80]!r}")

    def evolve(self, method: EvolvingMethod, instruction: str) -> str:
        if "[error]" in instruction:
            raise ServerError("upstream 503: model overloaded")
        if "[parse]" in instruction:
            return "Step 1 #Methods List#: I would rather not rewrite this one."
        if "[unchanged]" in instruction:
            return f"Step 4 {FINAL}: {instruction}"
        if "[leak]" in instruction:
            return f"Here is the rewritten prompt: {instruction} with more detail."
        if method.answer_follows_template:  # Evol-Instruct methods: the reply is the instruction
            return f"{instruction} Explain each step."
        plan = "Step 1 #Methods List#: add a step\nStep 2 #Plan#: ask for the steps\n"
        return f"{plan}Step 4 {FINAL}: {instruction} Explain each step."

    def answer(self, instruction: str, messages: tuple[Message, ...]) -> str:
        if "[stagnant]" in instruction:
            return "What would you like me to explain first?"
        if "[sure]" in instruction:
            return "Sure, which numbers should I use?"
        if "[loss]" in instruction:
            return "Please provide the table you mentioned so I can answer."
        if "[empty]" in instruction:
            return ""
        if "[sorry]" in instruction:
            return "Sorry, I cannot help with that."
        if "[stopwords]" in instruction:
            return "It is what it is."
        if "[late]" in instruction and instruction.count("Explain each step.") >= 2:
            return "Sure, what should I do next?"
        return f"Answer to: {instruction}"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def run(
    data: Path,
    out: Path,
    script: Any,
    settings: EvolveSettings | None = None,
    methods: tuple[EvolvingMethod, ...] = (INITIAL,),
    roles: Roles | None = None,
    backends: dict[str, Any] | None = None,
    **source: Any,
) -> EvolveResult:
    backend = script if isinstance(script, ScriptedBackend) else ScriptedBackend(script, identity="scripted")
    return await evolve_async(
        DataSource(data, **source), methods=methods, roles=roles or Roles(evol=EVOL), out=out,
        settings=settings or EvolveSettings(), exec_settings=ExecSettings(quiet=True),
        backends=backends or {"evol": backend},
    )


def outputs(result: EvolveResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    out = result.run_dir / "output"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return read_jsonl(out / "evolved.jsonl"), read_jsonl(out / "rejected.jsonl"), summary


def assert_reconciles(result: EvolveResult) -> None:
    """Per round: inputs = accepted + rejected + failed; files and summary agree with the state."""
    evolved, problems, summary = outputs(result)
    assert summary == result.summary
    state_rows = [p["row"] for p in StateDB(result.run_dir / "state.db").iter_phase("evolve")]
    for item in summary["rounds"]:
        rows = [r for r in state_rows if r["round"] == item["round"]]
        assert item["inputs"] == len(rows) == item["accepted"] + item["rejected"] + item["failed"]
        for status in ("accepted", "rejected", "failed"):
            assert item[status] == sum(r["status"] == status for r in rows)
        assert sum(item["categories"].values()) == item["rejected"] + item["failed"]
        assert len({r["seed_id"] for r in rows}) == len(rows)  # each input exactly once
    assert summary["rejected_or_failed_rows"] == len(problems) == sum(r["status"] != "accepted" for r in state_rows)
    assert summary["training_rows"] == len(evolved)
    assert all(r["status"] != "accepted" for r in problems) and all(r["status"] == "accepted" for r in evolved)
    assert pq.read_table(result.run_dir / "output" / "evolved.parquet").to_pylist() == evolved


SINGLE_TURN = [
    ("s-accept", "Add 2 and 3 [accept]", "accepted", None, None),
    ("s-stagnant", "Name a bird [stagnant]", "rejected", "stagnant_complexity", "starts_what_ends_q"),
    ("s-sure", "Sum the numbers [sure]", "rejected", "insufficient_qualification", "starts_sure_ends_q"),
    ("s-loss", "Summarise the table [loss]", "rejected", "loss_of_key_information", "please_provide_in_prose"),
    ("s-empty", "Say nothing [empty]", "rejected", "empty_answer", "empty_answer"),
    ("s-parse", "Explain tides [parse]", "rejected", "parse_failure", "parse_failure"),
    ("s-unchanged", "Explain rain [unchanged]", "rejected", "unchanged_instruction", "unchanged_instruction"),
    ("s-error", "Explain snow [error]", "failed", "model_error", None),
]


async def test_every_outcome_has_lineage_and_counts_reconcile(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "seeds.jsonl", [{"id": i, "instruction": t} for i, t, *_ in SINGLE_TURN])
    script = Script()
    backend = ScriptedBackend(script)
    result = await run(data, tmp_path / "run", backend)

    evolved, problems, summary = outputs(result)
    rows = {r["seed_id"]: r for r in evolved + problems}
    assert sorted(rows) == sorted(seed for seed, *_ in SINGLE_TURN)
    for seed, text, status, category, rule in SINGLE_TURN:
        row = rows[seed]
        assert (row["status"], row["failure_category"], row["failure_rule"]) == (status, category, rule), seed
        assert row["id"] == f"{seed}#r1" and row["round"] == 1 and row["parent_id"] is None
        assert row["method_id"] == INITIAL.id
        assert row["evol_model"] == row["responder_model"] == "openai:fake"
        assert row["parent_instruction"] == text
    accepted = rows["s-accept"]
    assert accepted["instruction"] == "Add 2 and 3 [accept] Explain each step."
    assert accepted["response"] == "Answer to: Add 2 and 3 [accept] Explain each step."
    assert accepted["messages"] == [{"role": "user", "content": accepted["instruction"]},
                                    {"role": "assistant", "content": accepted["response"]}]
    assert accepted["error"] is None
    # Tokens are the sum over the row's calls (the scripted backend counts words).
    rewrite = script.evolve(INITIAL, "Add 2 and 3 [accept]")
    prompt_words = len(INITIAL.render("Add 2 and 3 [accept]").split()) + sum(
        len(m.content.split()) for m in respond_messages(accepted["instruction"]))
    assert accepted["prompt_tokens"] == prompt_words
    assert accepted["completion_tokens"] == len(rewrite.split()) + len(accepted["response"].split())
    assert rows["s-stagnant"]["response"] == "What would you like me to explain first?"
    # An unusable rewrite is re-asked once (parse_retries=1), then rejected; an unchanged one is not re-asked.
    assert sum("[parse]" in r.messages[-1].content for r in script.requests) == 2
    assert sum("[unchanged]" in r.messages[-1].content for r in script.requests) == 1
    assert rows["s-parse"]["prompt_tokens"] == 2 * len(INITIAL.render("Explain tides [parse]").split())
    # A rejected rewrite keeps what the evol LLM actually wrote, for diagnosis; it never trains anything.
    assert rows["s-parse"]["instruction"] == "Step 1 #Methods List#: I would rather not rewrite this one."
    assert rows["s-parse"]["messages"] == []
    # A model error (no retries on this spec) is a failed row with the error text, not a crash.
    failed = rows["s-error"]
    assert failed["error"] == "ServerError: upstream 503: model overloaded"
    assert (failed["instruction"], failed["response"], failed["messages"]) == ("", "", [])

    assert summary["rounds"] == [{
        "round": 1, "inputs": 8, "accepted": 1, "rejected": 6, "failed": 1,
        "categories": {"empty_answer": 1, "insufficient_qualification": 1, "loss_of_key_information": 1,
                       "model_error": 1, "parse_failure": 1, "stagnant_complexity": 1, "unchanged_instruction": 1},
        "answer_cut": 0, "judge_unparsable": 0,
    }]
    assert [r["seed_id"] for r in evolved] == ["s-accept"]
    assert [r["seed_id"] for r in problems] == [seed for seed, _, status, *_ in SINGLE_TURN if status != "accepted"]
    assert_reconciles(result)
    # Tokens reconcile with the usage meter: every paid token belongs to exactly one row.
    usage = {u["phase"]: u for u in summary["usage"]}["evolve"]
    assert usage["prompt_tokens"] == sum(r["prompt_tokens"] for r in evolved + problems)
    assert usage["completion_tokens"] == sum(r["completion_tokens"] for r in evolved + problems)
    assert usage["errors"] == 1 and backend.calls == usage["calls"] + 1


async def test_paper_rule_set_still_names_unusable_rewrites(tmp_path: Path) -> None:
    """The paper set leaves parse checks out of λ, but as a final filter an unusable rewrite is still
    rejected with its reason (the paper preset's own final pass filters nothing: rule set `none`)."""
    rows = [{"id": "p", "instruction": "Explain tides [parse]"}, {"id": "u", "instruction": "Explain rain [unchanged]"},
            {"id": "ok", "instruction": "Add 2 and 3"}]
    result = await run(write_jsonl(tmp_path / "seeds.jsonl", rows), tmp_path / "run", Script(),
                       evolve_settings("paper", rule_set="paper"))
    _, problems, summary = outputs(result)
    assert [(r["seed_id"], r["failure_category"]) for r in problems] == [
        ("p", "parse_failure"), ("u", "unchanged_instruction")]
    assert summary["rounds"][0]["categories"] == {"parse_failure": 1, "unchanged_instruction": 1}


async def test_separate_responder_model_is_recorded_and_used(tmp_path: Path) -> None:
    evolver, answerer = Script(), Script()
    e_backend, a_backend = ScriptedBackend(evolver, identity="e"), ScriptedBackend(answerer, identity="a")
    responder = EVOL.model_copy(update={"model": "answerer", "base_url": "http://answers.invalid/v1"})
    result = await run(write_jsonl(tmp_path / "seeds.jsonl", [{"instruction": "Add 2 and 3"}]), tmp_path / "run",
                       e_backend, roles=Roles(evol=EVOL, responder=responder),
                       backends={"evol": e_backend, "responder": a_backend})
    (row,), _, _ = outputs(result)
    assert (row["seed_id"], row["evol_model"], row["responder_model"]) == ("seeds:1", "openai:fake", "openai:answerer")
    assert all(r.messages[0].role != "system" for r in evolver.requests) and len(evolver.requests) == 1
    assert [r.messages[0].role for r in answerer.requests] == ["system"]


async def test_multi_turn_user_turns_evolved_and_answers_regenerated_in_order(tmp_path: Path) -> None:
    conversation = [
        {"from": "system", "value": "You are a patient maths tutor."},
        {"from": "human", "value": "What is 12 times 4?"},
        {"from": "gpt", "value": "OLD ANSWER ONE"},
        {"from": "human", "value": "Now divide that by 3."},
        {"from": "gpt", "value": "OLD ANSWER TWO"},
    ]
    data = write_jsonl(tmp_path / "chat.jsonl", [{"id": "c1", "conversations": conversation}])
    script = Script()
    result = await run(data, tmp_path / "run", script)
    (row,), problems, _ = outputs(result)
    assert problems == []

    q1, q2 = "What is 12 times 4? Explain each step.", "Now divide that by 3. Explain each step."
    a1, a2 = f"Answer to: {q1}", f"Answer to: {q2}"
    assert row["messages"] == [
        {"role": "system", "content": "You are a patient maths tutor."},
        {"role": "user", "content": q1}, {"role": "assistant", "content": a1},
        {"role": "user", "content": q2}, {"role": "assistant", "content": a2},
    ]
    assert (row["instruction"], row["response"], row["parent_instruction"]) == (q1, a2, "What is 12 times 4?")
    # Each user turn was evolved on its own; the old answers never reached any model.
    assert script.evolved_with == [("What is 12 times 4?", "initial"), ("Now divide that by 3.", "initial")]
    assert not any("OLD ANSWER" in m.content for r in script.requests for m in r.messages)
    answers = [r for r in script.requests if r.messages[0].role == "system"]
    assert [m.role for m in answers[0].messages] == ["system", "user"]
    # The second answer saw the evolved first turn and the regenerated first answer as history.
    assert answers[1].messages[1:] == (Message("user", q1), Message("assistant", a1), Message("user", q2))
    # The seed's system turn is in the row, so it is also what the answers were written under.
    assert answers[0].messages[0] == answers[1].messages[0] == Message("system", "You are a patient maths tutor.")


async def test_multi_turn_rejection_stops_at_the_failing_turn(tmp_path: Path) -> None:
    conversation = [{"from": "human", "value": "Name a bird [stagnant]"}, {"from": "gpt", "value": "A robin."},
                    {"from": "human", "value": "And a fish?"}]
    script = Script()
    result = await run(write_jsonl(tmp_path / "chat.jsonl", [{"conversations": conversation}]), tmp_path / "run",
                       script)
    _, (row,), _ = outputs(result)
    assert (row["status"], row["failure_category"]) == ("rejected", "stagnant_complexity")
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]  # the row ends at the failing answer
    assert len([r for r in script.requests if r.messages[0].role == "system"]) == 1  # no answer after a failure


ROUND_SEEDS = [
    {"id": "ok", "instruction": "Add 2 and 3", "output": "5"},
    {"id": "late", "instruction": "Add 4 and 5 [late]", "output": "9"},
    {"id": "stag", "instruction": "Name a bird [stagnant]", "output": "A robin."},
]


@pytest.mark.parametrize(
    ("mix", "expected"),
    [
        ("last", ["ok#r2"]),
        ("all", ["ok#r1", "late#r1", "ok#r2"]),
        ("last+seed", ["ok#r0", "late#r0", "stag#r0", "ok#r2"]),
        ("all+seed", ["ok#r0", "late#r0", "stag#r0", "ok#r1", "late#r1", "ok#r2"]),
    ],
)
async def test_round_two_evolves_round_one_accepted_outputs(tmp_path: Path, mix: str, expected: list[str]) -> None:
    result = await run(write_jsonl(tmp_path / "seeds.jsonl", ROUND_SEEDS), tmp_path / "run", Script(),
                       EvolveSettings(rounds=2, mix=mix))
    evolved, problems, summary = outputs(result)
    assert [r["id"] for r in evolved] == expected
    assert [(r["id"], r["failure_category"]) for r in problems] == [
        ("stag#r1", "stagnant_complexity"), ("late#r2", "insufficient_qualification")]
    assert [(s["inputs"], s["accepted"], s["rejected"], s["failed"]) for s in summary["rounds"]] == [
        (3, 2, 1, 0), (2, 1, 1, 0)]
    assert_reconciles(result)

    rows = {r["id"]: r for r in evolved + problems}
    if "ok#r1" in rows:  # the parent chain: seed -> r1 -> r2, each round rewriting the last one's output
        assert rows["ok#r2"]["parent_id"] == "ok#r1" and rows["ok#r1"]["parent_id"] is None
        assert rows["ok#r2"]["parent_instruction"] == rows["ok#r1"]["instruction"]
    assert rows["ok#r2"]["instruction"] == "Add 2 and 3 Explain each step. Explain each step."
    assert rows["late#r2"]["parent_id"] == "late#r1" and rows["late#r2"]["round"] == 2
    if "ok#r0" in rows:  # seeds come back as they were, with their reference answers
        assert rows["stag#r0"]["messages"] == [{"role": "user", "content": "Name a bird [stagnant]"},
                                               {"role": "assistant", "content": "A robin."}]
        assert (rows["ok#r0"]["round"], rows["ok#r0"]["method_id"]) == (0, None)


async def test_above_the_metrics_cap_every_kth_row_is_measured_in_output_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import autoevol.evolution.outputs as outputs_module
    from autoevol.quality.figures import set_stats

    monkeypatch.setattr(outputs_module, "METRICS_MAX_ROWS", 2)
    seeds = [dict(row, id=f"{row['id']}{k}") for k in range(4) for row in ROUND_SEEDS]  # 12 seeds
    result = await run(write_jsonl(tmp_path / "seeds.jsonl", seeds), tmp_path / "run", Script(),
                       EvolveSettings(rounds=2, mix="all+seed"))
    evolved, problems, summary = outputs(result)
    assert_reconciles(result)
    metrics = summary["metrics"]
    assert metrics["sampled"]["max_rows_per_set"] == 2
    # Seeds: every 6th of 12, in input order.
    assert metrics["seeds"] == set_stats([{"instruction": seeds[i]["instruction"]} for i in (0, 6)])
    # Each round: every k-th of its accepted rows (8 in round 1, 4 in round 2), in output order.
    for entry, every in zip(summary["per_round"], (4, 2), strict=True):
        accepted = [r for r in evolved if r["round"] == entry["round"]]
        assert entry["metrics"] == set_stats(accepted[::every])
    # The training set (12 seeds, 8 + 4 accepted rows) is read back from evolved.jsonl.
    assert [r["round"] for r in evolved] == [0] * 12 + [1] * 8 + [2] * 4
    assert metrics["training"] == set_stats(evolved[::12])
    assert len(problems) == 8


EI_SEEDS = [f"Question {i}" for i in range(8)] + [
    "Describe owls [sorry]", "List colours [stopwords]", "Define rain [same]", "Define snow [leak]", "Count [error]"]


async def test_evol_instruct_preset(tmp_path: Path) -> None:
    settings = evolve_settings("evol-instruct", rounds=2)
    methods = resolve_methods(None, settings)
    assert len(methods) == 6
    data = write_jsonl(tmp_path / "seeds.jsonl",
                       [{"id": f"e{i}", "instruction": t, "output": "ref"} for i, t in enumerate(EI_SEEDS)])
    script = Script(methods)
    result = await run(data, tmp_path / "run", script, settings, methods)
    evolved, problems, summary = outputs(result)
    assert_reconciles(result)
    rows = {r["id"]: r for r in evolved + problems}

    reasons = {rows[f"e{i}#r1"]["failure_category"] for i in range(8, 12)}
    assert reasons == {"hard_to_answer", "empty_answer", "no_information_gain", "prompt_leakage"}
    assert rows["e12#r1"]["status"] == "failed"
    # One method per row and round, seeded: recorded on the row and the one the model actually saw.
    by_id = {m.id: m for m in methods}
    seen = dict(script.evolved_with)
    for i in range(8):
        r1 = rows[f"e{i}#r1"]
        assert seen[EI_SEEDS[i]] == by_id[r1["method_id"]].name
    picks = {r["method_id"] for r in evolved + problems if r["round"] >= 1 and r["method_id"]}
    assert len(picks) >= 3
    # Rejected rows' parents go back to the pool: round 2 re-evolves those seeds from their original text.
    assert summary["rounds"][1]["inputs"] == 12  # 8 accepted + 4 rejected; the failed row does not come back
    for i in range(8, 12):
        r2 = rows[f"e{i}#r2"]
        assert r2["parent_id"] is None and r2["parent_instruction"] == EI_SEEDS[i]
    assert "e12#r2" not in rows
    for i in range(8):
        assert rows[f"e{i}#r2"]["parent_id"] == f"e{i}#r1"
    # all+seed: the seeds, then every accepted row of every round.
    assert [r["round"] for r in evolved] == sorted(r["round"] for r in evolved)
    assert sum(r["round"] == 0 for r in evolved) == len(EI_SEEDS)

    # Deterministic: a second run elsewhere picks the same methods and writes the same files.
    again = await run(data, tmp_path / "run2", Script(methods), settings, methods)
    for name in ("evolved.jsonl", "rejected.jsonl"):
        assert (again.run_dir / "output" / name).read_bytes() == (result.run_dir / "output" / name).read_bytes()


async def test_judge_role_gets_the_information_gain_question(tmp_path: Path) -> None:
    settings = EvolveSettings(judge_information_gain=True)
    data = write_jsonl(tmp_path / "seeds.jsonl", [{"instruction": "Add 2 and 3"}, {"instruction": "Add 4 [same]"}])
    evol, judge = Script(), Script()
    judge_spec = ModelSpec(kind="openai", model="judge", base_url="http://judge.invalid/v1", max_retries=0)
    result = await run(
        data, tmp_path / "run", evol, settings, roles=Roles(evol=EVOL, judge=judge_spec),
        backends={"evol": ScriptedBackend(evol, identity="evol"), "judge": ScriptedBackend(judge, identity="judge")},
    )
    _, problems, _ = outputs(result)
    assert [p["failure_category"] for p in problems] == ["no_information_gain"]
    asked = [r.messages[-1].content for r in judge.requests]
    assert len(asked) == 2 and all("Equal or Not Equal" in text for text in asked)
    assert not any("Equal or Not Equal" in r.messages[-1].content for r in evol.requests)


# -- bad input --------------------------------------------------------------------------------------

GOOD = [{"id": f"g{i}", "instruction": f"Add {i} and {i + 1}"} for i in range(6)]


def write_with_bad_line(path: Path, bad_line: int, bad: str = '{"id": "broken", "instruction": ') -> Path:
    lines = [json.dumps(r) for r in GOOD]
    lines.insert(bad_line - 1, bad)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_bad_row_fails_the_run_naming_file_and_line_and_keeps_finished_units(tmp_path: Path) -> None:
    data = write_with_bad_line(tmp_path / "seeds.jsonl", 4)
    backend = ScriptedBackend(Script(), delay_s=0.02)  # the first rows are in flight when line 4 is read
    with pytest.raises(DataError) as caught:
        await run(data, tmp_path / "run", backend)
    assert (caught.value.path, caught.value.line) == (str(data), 4)
    assert str(caught.value).startswith(f"{data}:4: malformed JSON")
    # The rows before the bad line were in flight: they finished and are stored, nothing was thrown away.
    stored = [p["row"]["seed_id"] for p in StateDB(tmp_path / "run" / "state.db").iter_phase("evolve")]
    assert stored == ["g0", "g1", "g2"]
    assert backend.calls == 6
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "failed" and manifest["reason"].startswith(f"{data}:4: malformed JSON")

    # Fixing the file changes the data, so the run directory refuses it...
    write_jsonl(data, GOOD)
    with pytest.raises(ResumeMismatchError, match=r"the content of .*seeds\.jsonl changed since the run started"):
        await run(data, tmp_path / "run", backend)
    # ...but a new one pays only for the rows not computed before (the response cache has the rest).
    again = ScriptedBackend(Script())
    result = await run(data, tmp_path / "run-fixed", again)
    assert again.calls == 2 * 3
    assert result.summary["rounds"][0]["accepted"] == 6


async def test_bad_rows_are_skipped_as_failed_with_their_reason(tmp_path: Path) -> None:
    data = write_with_bad_line(tmp_path / "seeds.jsonl", 3)
    with data.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "typed", "instruction": 42}) + "\n")
    result = await run(data, tmp_path / "run", Script(), on_bad_row="skip")
    evolved, problems, summary = outputs(result)
    assert summary["rounds"][0] == {"round": 1, "inputs": 8, "accepted": 6, "rejected": 0, "failed": 2,
                                    "categories": {"bad_input": 2}, "answer_cut": 0, "judge_unparsable": 0}
    assert_reconciles(result)
    malformed, typed = problems
    assert (malformed["seed_id"], malformed["id"], malformed["status"]) == (f"{data}:3", f"{data}:3#r1", "failed")
    assert malformed["failure_category"] == "bad_input" and malformed["method_id"] is None
    assert malformed["error"].startswith(f"{data}:3: malformed JSON")
    assert (typed["seed_id"], typed["failure_rule"]) == (f"{data}:8", "instruction")
    assert typed["error"] == f"{data}:8 field 'instruction': expected a string, got int"
    assert [r["seed_id"] for r in evolved] == [r["id"] for r in GOOD]


@pytest.mark.parametrize("content", ["", "\n\n"])
async def test_empty_dataset_is_a_clear_error(tmp_path: Path, content: str) -> None:
    data = tmp_path / "empty.jsonl"
    data.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{re.escape(str(data))}: no rows$"):
        await run(data, tmp_path / "run", Script())


async def test_missing_data_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data file not found: .*nope\.jsonl"):
        await run(tmp_path / "nope.jsonl", tmp_path / "run", Script())
    assert not (tmp_path / "run").exists()


def test_data_source_rejects_unknown_bad_row_policy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="on_bad_row must be 'fail' or 'skip', got 'maybe'"):
        DataSource(tmp_path / "x.jsonl", on_bad_row="maybe")
    with pytest.raises(ConfigError, match="limit must be >= 1"):
        DataSource(tmp_path / "x.jsonl", limit=0)


async def test_error_budget_stops_a_run_whose_server_is_down_and_rerun_resumes(tmp_path: Path) -> None:
    rows = [{"instruction": f"Question {i} [error]" if i >= 2 else f"Question {i}"} for i in range(12)]
    data = write_jsonl(tmp_path / "seeds.jsonl", rows)
    out = tmp_path / "run"

    def evolve(limit: int, script: Any) -> Any:
        return evolve_async(
            DataSource(data), methods=(INITIAL,), roles=Roles(evol=EVOL), out=out, settings=EvolveSettings(),
            exec_settings=ExecSettings(quiet=True, workers=1, max_consecutive_errors=limit),
            backends={"evol": ScriptedBackend(script, identity="scripted")},
        )

    with pytest.raises(TooManyErrors, match="3 rows in a row failed on model errors"):
        await evolve(3, Script())
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "stopped"
    assert StateDB(out / "state.db").count("evolve") == 5  # 2 good rows + the 3 failures, all stored

    healed = Script()
    result = await evolve(3, lambda request: healed(_without_error_tag(request)))
    assert_reconciles(result)
    assert result.summary["rounds"][0]["accepted"] == 12


def _without_error_tag(request: CompletionRequest) -> CompletionRequest:
    from dataclasses import replace

    messages = tuple(Message(m.role, m.content.replace(" [error]", "")) for m in request.messages)
    return replace(request, messages=messages)
