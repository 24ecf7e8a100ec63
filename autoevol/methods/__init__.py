"""Evolving methods: the built-in library, loading from files, parsing and hygiene.

Built-ins are package data (`autoevol/methods/builtin/<name>.txt`). Their ids are content hashes
of the file text with trailing whitespace removed, so editing a built-in changes its id and thus
every cache key and run that depends on it.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from autoevol.errors import MethodError
from autoevol.methods.hygiene import check_method_hygiene, repair_slot
from autoevol.methods.method import SLOT, EvolvingMethod, FrozenMeta, find_final_marker
from autoevol.methods.parse import ParseResult, parse_evolved

__all__ = [
    "BUILTIN_DESCRIPTIONS",
    "CODE_OPS",
    "EVOL_INSTRUCT_OPS",
    "SLOT",
    "EvolvingMethod",
    "FrozenMeta",
    "ParseResult",
    "check_method_hygiene",
    "find_final_marker",
    "list_builtin",
    "load_method",
    "parse_evolved",
    "repair_slot",
]

# WizardLM's five in-depth operations plus in-breadth mutation (SPEC §3.2-3.3).
EVOL_INSTRUCT_OPS: tuple[str, ...] = (
    "evol-constraints",
    "evol-deepen",
    "evol-concretize",
    "evol-reasoning",
    "evol-complicate-input",
    "evol-breadth",
)
# WizardCoder's five heuristics, one method each (SPEC §3.7).
CODE_OPS: tuple[str, ...] = (
    "code-constraints",
    "code-rare-requirement",
    "code-reasoning",
    "code-erroneous-reference",
    "code-complexity",
)

BUILTIN_DESCRIPTIONS: dict[str, str] = {
    "initial": "Auto Evol-Instruct's universal 4-step initial method e0 (methods, plan, rewrite, review)",
    "weak": "Weak initial method: role line plus 'give only the final rewritten instruction'",
    "evol-constraints": "Evol-Instruct in-depth: add one more constraint or requirement",
    "evol-deepen": "Evol-Instruct in-depth: deepen and widen the inquiry",
    "evol-concretize": "Evol-Instruct in-depth: replace general concepts with specific ones",
    "evol-reasoning": "Evol-Instruct in-depth: ask explicitly for multi-step reasoning",
    "evol-complicate-input": "Evol-Instruct in-depth: add structured input data (JSON, table, SQL, code)",
    "evol-breadth": "Evol-Instruct in-breadth: create a new, rarer prompt in the same domain",
    "code-constraints": "WizardCoder: add new constraints and requirements (about 10 words)",
    "code-rare-requirement": "WizardCoder: swap a common requirement for a rarer, more specific one",
    "code-reasoning": "WizardCoder: add reasoning steps to a problem solved in few steps",
    "code-erroneous-reference": "WizardCoder: add faulty code as a misleading reference",
    "code-complexity": "WizardCoder: demand stricter time or space complexity (sparingly)",
}


def _builtin(name: str) -> EvolvingMethod:
    text = resources.files("autoevol.methods").joinpath("builtin", f"{name}.txt").read_text(encoding="utf-8")
    # rstrip: an editor's final newline must not change the id.
    return EvolvingMethod(name, text.rstrip(), metadata={"description": BUILTIN_DESCRIPTIONS[name], "builtin": True})


def list_builtin() -> list[EvolvingMethod]:
    """Every built-in method, each with a one-line metadata["description"]."""
    return [_builtin(name) for name in BUILTIN_DESCRIPTIONS]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MethodError(f"cannot read method file {path}: {e}") from e


def _from_file(path: Path) -> EvolvingMethod:
    if path.suffix == ".json":
        try:
            data = json.loads(_read(path))
        except json.JSONDecodeError as e:
            raise MethodError(f"{path} is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise MethodError(f"{path} must hold one JSON object (a saved method)")
        method = EvolvingMethod.from_dict(data)
    else:
        method = EvolvingMethod(path.stem, _read(path).rstrip(), metadata={"source": str(path)})
    template, reason = repair_slot(method.template, allow_prefix=False)
    if template is None:
        raise MethodError(
            f"{path}: the method has no {SLOT} slot and does not end with an input marker "
            f"such as '#Instruction#:'; add {SLOT} where the instruction goes"
        )
    if reason is None:
        return method
    return EvolvingMethod(
        method.name, template, parent_id=method.parent_id, metadata={**method.metadata, "repaired": reason}
    )


def load_method(name_or_path: str) -> EvolvingMethod:
    """A built-in by name (names win over same-named files), or a `.txt` template / `.json` artifact."""
    if name_or_path in BUILTIN_DESCRIPTIONS:
        return _builtin(name_or_path)
    path = Path(name_or_path)
    if path.suffix in (".txt", ".json"):
        if not path.is_file():
            raise MethodError(f"method file not found: {path}")
        return _from_file(path)
    raise MethodError(
        f"unknown method {name_or_path!r}; built-ins are: {', '.join(BUILTIN_DESCRIPTIONS)} "
        "(or pass a path to a .txt template or a saved .json method)"
    )
