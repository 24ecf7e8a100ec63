import hashlib
import json
import pickle
from pathlib import Path

import pytest

from autoevol.errors import MethodError
from autoevol.methods import (
    BUILTIN_DESCRIPTIONS,
    CODE_OPS,
    EVOL_INSTRUCT_OPS,
    SLOT,
    EvolvingMethod,
    check_method_hygiene,
    list_builtin,
    load_method,
    repair_slot,
)

# Pinned on purpose: a built-in's id feeds every cache key and run manifest, so an accidental edit
# of a built-in file must fail here. Update the pin only when the text change is intended.
PINNED_IDS = {
    "initial": "m-94f29672aa02",
    "weak": "m-6bfa3fc4bed9",
    "evol-constraints": "m-c4eba5486a7d",
    "evol-deepen": "m-ddf615520a1c",
    "evol-concretize": "m-2ba93589b931",
    "evol-reasoning": "m-2eb70257e0a0",
    "evol-complicate-input": "m-fa2ae5fe68df",
    "evol-breadth": "m-8aa4670bb5ae",
    "code-constraints": "m-ee9e4a20eb63",
    "code-rare-requirement": "m-c9f5aca3316f",
    "code-reasoning": "m-e13dbfab6793",
    "code-erroneous-reference": "m-07ff96ebb50a",
    "code-complexity": "m-ee68efe60e9f",
}


# --- built-ins -------------------------------------------------------------------------------


def test_builtin_names_cover_all_families() -> None:
    names = [m.name for m in list_builtin()]
    assert names == list(BUILTIN_DESCRIPTIONS)
    assert set(names) == {"initial", "weak", *EVOL_INSTRUCT_OPS, *CODE_OPS}
    assert len(EVOL_INSTRUCT_OPS) == 6 and len(CODE_OPS) == 5


@pytest.mark.parametrize("name", list(PINNED_IDS))
def test_every_builtin_loads_renders_and_has_a_stable_id(name: str) -> None:
    method = load_method(name)
    assert method.id == PINNED_IDS[name] == load_method(name).id
    assert method.metadata["description"] and method.metadata["builtin"] is True
    assert method.template.count(SLOT) == 1
    rendered = method.render('Parse {"a": 1} and $x')
    assert SLOT not in rendered and 'Parse {"a": 1} and $x' in rendered
    assert method.final_marker is not None


def test_initial_method_structure() -> None:
    e0 = load_method("initial")
    t = e0.template
    assert "Instruction Rewriter" in t.splitlines()[0]
    order = ["#Methods List#:", "#Plan#:", "#Rewritten Instruction#:", "#Finally Rewritten Instruction#:"]
    block = t[t.index("Please reply strictly in the following format:") :]
    positions = [block.index(m) for m in order]
    assert positions == sorted(positions)
    assert "only add 10 to 20 words" in t
    assert t.endswith("#Instruction#:\n{instruction}")
    assert e0.final_marker == "#Finally Rewritten Instruction#"
    assert not e0.answer_follows_template


def test_weak_method_asks_only_for_the_final_instruction() -> None:
    weak = load_method("weak")
    assert "Instruction Rewriter" in weak.template
    assert "#Methods List#" not in weak.template and "#Plan#" not in weak.template
    assert weak.template.endswith("#Instruction#:\n{instruction}")
    assert weak.final_marker == "#Finally Rewritten Instruction#"


@pytest.mark.parametrize("name", [op for op in EVOL_INSTRUCT_OPS if op != "evol-breadth"] + list(CODE_OPS))
def test_in_depth_and_code_methods_end_with_given_and_rewritten_prompt(name: str) -> None:
    method = load_method(name)
    assert method.template.endswith("#The Given Prompt#:\n{instruction}\n\n#Rewritten Prompt#:")
    assert method.final_marker == "#Rewritten Prompt#"
    assert method.answer_follows_template


def test_breadth_method_uses_given_and_created_prompt() -> None:
    method = load_method("evol-breadth")
    assert method.template.endswith("#Given Prompt#:\n{instruction}\n\n#Created Prompt#:")
    assert method.final_marker == "#Created Prompt#"


def test_complicate_input_has_structured_demonstrations() -> None:
    t = load_method("evol-complicate-input").template
    assert t.count("Original:") >= 3 and t.count("Rewritten:") >= 3
    assert '{"name": "Ana"' in t and "CREATE TABLE" in t and "|-------|" in t
    assert "```" not in t  # fences would clash with the optimizer's ```Method wrapping


def test_code_family_heuristics_differ() -> None:
    texts = {load_method(n).template for n in CODE_OPS}
    assert len(texts) == len(CODE_OPS)


# --- the value type ----------------------------------------------------------------------------


def test_id_is_a_content_hash_of_the_template_only() -> None:
    a = EvolvingMethod("a", "Do {instruction}", metadata={"x": 1})
    b = EvolvingMethod("b", "Do {instruction}", parent_id="m-000000000000")
    assert a.id == b.id == "m-" + hashlib.sha256(b"Do {instruction}").hexdigest()[:12]
    assert EvolvingMethod("a", "Do {instruction}!").id != a.id


def test_render_uses_replace_not_format() -> None:
    m = EvolvingMethod("j", 'JSON {"k": [1, 2]} then\n#Instruction#:\n{instruction}')
    assert m.render("{0} {name}") == 'JSON {"k": [1, 2]} then\n#Instruction#:\n{0} {name}'


def test_render_without_slot_raises() -> None:
    with pytest.raises(MethodError, match="slot"):
        EvolvingMethod("x", "no slot here").render("hi")


def test_invalid_construction_raises() -> None:
    with pytest.raises(ValueError):
        EvolvingMethod("", "{instruction}")
    with pytest.raises(ValueError, match="JSON"):
        EvolvingMethod("x", "{instruction}", metadata={"bad": object()})


def test_derive_links_to_parent() -> None:
    parent = load_method("initial")
    child = parent.derive(parent.template + "\nBe careful.", step=1, source="optimizer")
    assert child.parent_id == parent.id and child.id != parent.id
    assert dict(child.metadata) == {"step": 1, "source": "optimizer"}
    assert child.name == parent.name


def test_metadata_is_frozen_hashable_and_picklable() -> None:
    source = {"scores": [0.1, 0.2]}
    m = EvolvingMethod("x", "{instruction}", metadata=source)
    source["scores"].append(0.3)
    assert m.metadata["scores"] == [0.1, 0.2]
    with pytest.raises(TypeError):
        m.metadata["new"] = 1  # type: ignore[index]
    assert hash(m) == hash(EvolvingMethod("x", "{instruction}", metadata={"scores": [0.1, 0.2]}))
    assert pickle.loads(pickle.dumps(m)) == m


def test_json_round_trip_keeps_extra_lineage_keys() -> None:
    m = load_method("initial").derive(load_method("initial").template + "\nMore.", step=3)
    data = m.to_dict()
    assert set(data) == {"id", "name", "parent_id", "template", "metadata"}
    assert EvolvingMethod.from_dict(json.loads(json.dumps(data))) == m
    data["dev_failure_rate"] = 0.12
    restored = EvolvingMethod.from_dict(data)
    assert restored.metadata["dev_failure_rate"] == 0.12 and restored.id == m.id


def test_from_dict_rejects_bad_artifacts() -> None:
    with pytest.raises(MethodError, match="template"):
        EvolvingMethod.from_dict({"name": "x"})
    with pytest.raises(MethodError, match="does not match"):
        EvolvingMethod.from_dict({"name": "x", "template": "{instruction}", "id": "m-000000000000"})


# --- loading from files ------------------------------------------------------------------------


def test_unknown_name_lists_builtins() -> None:
    with pytest.raises(MethodError, match=r"initial.*evol-breadth"):
        load_method("no-such-method")


def test_load_txt_and_json(tmp_path: Path) -> None:
    txt = tmp_path / "mine.txt"
    txt.write_text("Rewrite it.\n#Finally Rewritten Instruction#:\n\n#Instruction#:\n{instruction}\n")
    m = load_method(str(txt))
    assert m.name == "mine" and m.template.endswith("{instruction}") and "repaired" not in m.metadata
    saved = tmp_path / "best.json"
    saved.write_text(json.dumps({**m.to_dict(), "parents": ["m-1"], "dev_failure_rate": 0.0}))
    loaded = load_method(str(saved))
    assert loaded.id == m.id and loaded.metadata["parents"] == ["m-1"]


def test_load_repairs_trailing_input_marker(tmp_path: Path) -> None:
    path = tmp_path / "noslot.txt"
    path.write_text("Rewrite the instruction.\n#Finally Rewritten Instruction#:\n\n#Instruction#:\n")
    m = load_method(str(path))
    assert m.template.endswith("#Instruction#:\n{instruction}")
    assert m.metadata["repaired"] == "repaired_missing_slot"


def test_load_without_any_marker_fails(tmp_path: Path) -> None:
    path = tmp_path / "bare.txt"
    path.write_text("Make the instruction harder.")
    with pytest.raises(MethodError, match="slot"):
        load_method(str(path))


def test_load_file_errors(tmp_path: Path) -> None:
    with pytest.raises(MethodError, match="not found"):
        load_method(str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MethodError, match="JSON"):
        load_method(str(bad))
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(MethodError, match="object"):
        load_method(str(listed))


# --- slot repair and hygiene -------------------------------------------------------------------


def test_repair_slot_cases() -> None:
    assert repair_slot("a {instruction}", allow_prefix=False) == ("a {instruction}", None)
    assert repair_slot("#Instruction#:\n{Instruction}", allow_prefix=False) == (
        "#Instruction#:\n{instruction}",
        "repaired_placeholder",
    )
    assert repair_slot("Go.\n#Instruction#:  \n", allow_prefix=False) == (
        "Go.\n#Instruction#:\n{instruction}",
        "repaired_missing_slot",
    )
    # The slot goes before a trailing output marker, not after it.
    assert repair_slot("Go.\n#The Given Prompt#:\n\n#Rewritten Prompt#:", allow_prefix=False) == (
        "Go.\n#The Given Prompt#:\n{instruction}\n\n#Rewritten Prompt#:",
        "repaired_missing_slot",
    )
    assert repair_slot("Go. #Final Rewritten Instruction#:", allow_prefix=False) == (None, "no_input_slot")
    # An input marker followed by other text is not a safe place to append to.
    assert repair_slot("#Instruction#: see below\nStep 1", allow_prefix=True) == (None, "no_input_slot")


def test_hygiene_repairs_a_lost_slot() -> None:
    e0 = load_method("initial")
    lost = e0.template.replace("{instruction}", "") + "\nAlso keep numbers consistent."
    template, reason = check_method_hygiene(lost.replace("#Instruction#:\n", ""), e0)
    assert reason == "repaired_missing_slot" and template is not None
    assert template.endswith("\n#Instruction#:\n{instruction}")
    changed = e0.template.replace("Step 4:", "Step 4: Keep numbers consistent.")
    template, reason = check_method_hygiene(changed.replace("{instruction}", ""), e0)
    assert reason == "repaired_missing_slot" and template == changed


def test_hygiene_rejections() -> None:
    e0 = load_method("initial")
    assert check_method_hygiene("   \n", e0) == (None, "empty")
    assert check_method_hygiene("Make it harder, no format.", e0) == (None, "no_final_marker")
    assert check_method_hygiene("  " + e0.template.replace("\n", "\n\n") + "\n", e0) == (None, "equals_parent")
    # A copy that only lost its slot is still a copy of the parent.
    assert check_method_hygiene(e0.template.replace("{instruction}", ""), e0) == (None, "equals_parent")
    assert check_method_hygiene("#Instruction#: x\nStep 1 #Plan#:", e0) == (None, "no_input_slot")


def test_hygiene_accepts_renamed_final_marker() -> None:
    e0 = load_method("initial")
    renamed = e0.template.replace("Finally Rewritten Instruction", "Final Rewritten Instruction")
    assert check_method_hygiene(renamed, e0) == (renamed, None)
    own = e0.template.replace("Finally Rewritten Instruction", "Result")
    assert check_method_hygiene(own, e0) == (own, None)
    assert EvolvingMethod("own", own).final_marker == "#Result#"


def test_declares_format_separates_e0_from_the_weak_method() -> None:
    assert load_method("initial").declares_format
    assert not load_method("weak").declares_format
    custom = EvolvingMethod("c", "Rewrite it.\nOutput format:\n#Draft#:\n#Result#:\n\n#Instruction#:\n{instruction}")
    assert custom.declares_format and custom.final_marker == "#Result#"


def test_declared_steps_counts_the_format_blocks_sections() -> None:
    from autoevol.methods import load_method
    from autoevol.methods.method import EvolvingMethod

    assert load_method("initial").declared_steps == 4
    assert load_method("weak").declared_steps == 1
    seven = load_method("initial").template.replace(
        "Step 4 #Finally Rewritten Instruction#:",
        "Step 4 #Revision#:\nStep 5 #Consistency Check#:\nStep 6 #Review#:\nStep 7 #Finally Rewritten Instruction#:")
    assert EvolvingMethod("seven", seven).declared_steps == 7
