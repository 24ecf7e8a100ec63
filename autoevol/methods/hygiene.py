"""Method hygiene: keep an optimiser's rewrite of a method usable (SPEC §5.9, §7.2).

The optimiser LLM rewrites the whole method text, and two failures are silent if nobody checks:
the rewrite loses the place where the instruction goes, or it drops the final-output marker the
parser looks for. A rewrite identical to its parent wastes a dev-set evaluation. Each of these is
repaired when a safe repair exists and rejected otherwise, with a short reason for the run log.
"""

from __future__ import annotations

import re
from typing import Literal

from autoevol.methods.method import (
    EVOL_WORDS,
    FINAL_WORDS,
    INPUT_MARKER_RE,
    SLOT,
    EvolvingMethod,
    find_final_marker,
    same_text,
)

RepairReason = Literal["repaired_placeholder", "repaired_missing_slot"]
RejectReason = Literal["empty", "no_input_slot", "no_final_marker", "equals_parent"]

# "{Instruction}", "{ instruction }", "{{instruction}}": the slot spelt the way a model might retype it.
_PLACEHOLDER_RE = re.compile(r"\{\{?[ \t]*instruction[ \t]*\}\}?", re.IGNORECASE)
# An output marker closing the template ("#Rewritten Prompt#:"); the slot goes before it, not after.
_TRAILING_OUTPUT_RE = re.compile(rf"#[ \t]*(?:{FINAL_WORDS}|{EVOL_WORDS})[ \t]*#[ \t]*:?\s*\Z", re.IGNORECASE)


def repair_slot(template: str, *, allow_prefix: bool) -> tuple[str | None, str | None]:
    """Give a template without `{instruction}` its slot back, if that can be done safely.

    Returns (template, reason). reason is None when nothing was needed, "repaired_placeholder" for a
    `{Instruction}`-style spelling, "repaired_missing_slot" when the slot was added after a trailing
    input marker such as `#Instruction#:` or, with `allow_prefix`, after a new `#Instruction#:` line
    (the reference code appends the instruction to the method text, so a method with no input
    marker at all is a prefix). (None, "no_input_slot") when neither applies.
    """
    if SLOT in template:
        return template, None
    if _PLACEHOLDER_RE.search(template):
        return _PLACEHOLDER_RE.sub(SLOT, template), "repaired_placeholder"
    body = template.rstrip()
    trailing = _TRAILING_OUTPUT_RE.search(body)
    head, tail = (body[: trailing.start()].rstrip(), body[trailing.start() :]) if trailing else (body, "")
    inputs = list(INPUT_MARKER_RE.finditer(head))
    if inputs and not head[inputs[-1].end() :].strip():
        return f"{head}\n{SLOT}" + (f"\n\n{tail}" if tail else ""), "repaired_missing_slot"
    if allow_prefix and not inputs:
        return f"{body}\n\n#Instruction#:\n{SLOT}", "repaired_missing_slot"
    return None, "no_input_slot"


def check_method_hygiene(candidate_template: str, parent: EvolvingMethod) -> tuple[str | None, str | None]:
    """Vet an optimiser's candidate method text against its parent.

    Returns (template, reason): a usable template with reason None or a repair reason
    ("repaired_placeholder", "repaired_missing_slot"), or (None, reject reason) with one of
    "empty", "no_input_slot", "no_final_marker", "equals_parent". Checks run in that order; the
    parent comparison uses the repaired text, so a copy of the parent that only lost its slot is
    still recognised as a copy.
    """
    if not candidate_template.strip():
        return None, "empty"
    repaired, reason = repair_slot(candidate_template.strip(), allow_prefix=True)
    if repaired is None:
        return None, reason
    if find_final_marker(repaired) is None:
        return None, "no_final_marker"
    if same_text(repaired, parent.template):
        return None, "equals_parent"
    return repaired, reason
