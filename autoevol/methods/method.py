"""Evolving methods: prompt templates that tell the evol LLM how to rewrite one instruction.

A method is a value: its template text, a name, the id of the method it was derived from and free
JSON metadata. Its `id` is a content hash of the template text alone, so two runs that arrive at
the same text share cached work, and renaming a method or changing its metadata never invalidates
anything. Changing even one character of the template gives a new id (and new cache keys).

The instruction goes into the literal slot `{instruction}`. Rendering uses `str.replace`, never
`str.format`, because method texts may contain JSON braces (see `evol-complicate-input`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from autoevol.errors import MethodError

SLOT = "{instruction}"

# "#Final Rewritten Instruction#", "#Finally Rewritten Instruction#:", "**Final Evolved Instruction:**",
# "Final Prompt:" ... Optimised methods rename their last section (SPEC §2.6), so the words vary.
FINAL_WORDS = r"final(?:ly)?(?:[ \t]+(?:rewritten|evolved|refined|revised))?[ \t]+(?:instruction|prompt)"
EVOL_WORDS = r"(?:rewritten|created)[ \t]+prompt"
_BOLD = r"(?:\*\*|__)?"
# A hashed marker needs a colon or the end of its line: "...write the #Final Rewritten Instruction#
# with no explanation." is the method being echoed back, not an answer section.
MARKER_END = r"(?:[ \t]*+(?:\*\*|__)?[ \t]*+:|(?=[ \t]*+(?:\*\*|__)?[ \t]*+(?:\r?\n|\Z)))"
# Without hashes the words are ordinary prose ("a story whose final instruction: go home"), so a bare
# marker counts only at the start of a line, after optional heading hashes, bold and a "Step 4" or
# "4." prefix, and only if a colon or the end of the line follows ("### Finally Rewritten Instruction").
# The possessive `*+` keep a long run of spaces from being split between the optional parts, which
# would backtrack polynomially on a line of blanks.
_BARE_PREFIX = (
    r"^[ \t]*+(?:\#{1,6}[ \t]*+)?(?:\*\*|__)?[ \t]*+(?:(?:step[ \t]*+)?\d++[ \t]*+[.:)-]?[ \t]*+)?"
    r"(?:\*\*|__)?[ \t]*+"
)
_BARE_END = r"[ \t]*+(?:\*\*|__)?[ \t]*+(?::[ \t]*+(?:\*\*|__)?|(?=[ \t]*+\r?$))"
_FLAGS = re.IGNORECASE | re.MULTILINE
FINAL_HASHED_RE = re.compile(rf"#[ \t]*{FINAL_WORDS}[ \t]*#{MARKER_END}{_BOLD}", _FLAGS)
FINAL_BARE_RE = re.compile(rf"{_BARE_PREFIX}{FINAL_WORDS}{_BARE_END}", _FLAGS)
FINAL_MARKER_RE = re.compile(rf"{FINAL_HASHED_RE.pattern}|{FINAL_BARE_RE.pattern}", _FLAGS)
# Evol-Instruct output markers ("#Rewritten Prompt#:", "#Created Prompt#:"), hashed or bare by the
# same rules.
EVOL_HASHED_RE = re.compile(rf"#[ \t]*{EVOL_WORDS}[ \t]*#(?:[ \t]*:)?{_BOLD}", _FLAGS)
EVOL_BARE_RE = re.compile(rf"{_BARE_PREFIX}{EVOL_WORDS}{_BARE_END}", _FLAGS)
EVOL_OUTPUT_MARKER_RE = re.compile(rf"{EVOL_HASHED_RE.pattern}|{EVOL_BARE_RE.pattern}", _FLAGS)
# Where the instruction is fed in: "#Instruction#:", "#The Given Prompt#:", "#Given Prompt#:" ...
INPUT_MARKER_RE = re.compile(
    r"^[ \t]*#[ \t]*(?:the[ \t]+)?(?:given[ \t]+|original[ \t]+|input[ \t]+)?(?:instruction|prompt|question)"
    r"[ \t]*#[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)
STEP_MARKER_RE = re.compile(r"#[A-Za-z][A-Za-z ]{0,40}[A-Za-z]#")
_FORMAT_BLOCK_RE = re.compile(r"following format|format below|in this format|\bformat[ \t]*:", re.IGNORECASE)
_INPUT_NAME_RE = re.compile(
    r"#\s*(?:the\s+)?(?:given\s+|original\s+|input\s+)?(?:instruction|prompt|question)\s*#", re.IGNORECASE
)


class FrozenMeta(Mapping[str, Any]):
    """A read-only, hashable, picklable mapping of JSON-able metadata."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        plain = dict(data or {})
        try:
            json.dumps(plain)
        except (TypeError, ValueError) as e:
            raise ValueError(f"method metadata must be JSON-serialisable: {e}") from e
        # Deep copy so a caller mutating its dict (or a nested list) cannot change a frozen method.
        self._data: dict[str, Any] = copy.deepcopy(plain)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(json.dumps(self._data, sort_keys=True))

    def __repr__(self) -> str:
        return f"FrozenMeta({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)


def _normalise_space(text: str) -> str:
    return " ".join(text.split())


def same_text(a: str, b: str) -> bool:
    """Equal after collapsing all runs of whitespace."""
    return _normalise_space(a) == _normalise_space(b)


def _declared_markers(template: str) -> list[str]:
    """The non-input `#...#` markers after the template's last "reply in the following format"."""
    blocks = list(_FORMAT_BLOCK_RE.finditer(template))
    if not blocks:
        return []
    found = STEP_MARKER_RE.finditer(template, blocks[-1].end())
    return [m.group(0) for m in found if not _INPUT_NAME_RE.fullmatch(m.group(0))]


def find_final_marker(template: str) -> str | None:
    """The marker whose content is the evolved instruction, e.g. "#Finally Rewritten Instruction#".

    Preference: a `Final...` marker, then an Evol-Instruct output marker, then the last `#...#`
    marker declared in the method's own format block. Input markers never count.
    """
    markers = [m.group(0) for m in STEP_MARKER_RE.finditer(template)]
    markers = [m for m in markers if not _INPUT_NAME_RE.fullmatch(m)]
    for pattern in (FINAL_MARKER_RE, EVOL_OUTPUT_MARKER_RE):
        hits = [m for m in markers if pattern.match(m)]
        if hits:
            return hits[-1]
    declared = _declared_markers(template)
    return declared[-1] if declared else None


@dataclass(frozen=True, slots=True)
class EvolvingMethod:
    """One evolving method. Equality covers every field; `id` covers the template text only."""

    name: str
    template: str
    parent_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=FrozenMeta)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a method needs a non-empty name, got {self.name!r}")
        if not isinstance(self.template, str):
            raise ValueError(f"a method template must be a string, got {type(self.template).__name__}")
        if not isinstance(self.metadata, FrozenMeta):
            object.__setattr__(self, "metadata", FrozenMeta(self.metadata))

    @property
    def id(self) -> str:
        return "m-" + hashlib.sha256(self.template.encode("utf-8")).hexdigest()[:12]

    @property
    def final_marker(self) -> str | None:
        return find_final_marker(self.template)

    @property
    def has_slot(self) -> bool:
        return SLOT in self.template

    @property
    def answer_follows_template(self) -> bool:
        """True when the template ends with its output marker, so the reply *is* the instruction.

        Evol-Instruct prompts end with "#Rewritten Prompt#:" and models often continue from there
        without repeating the marker.
        """
        marker = self.final_marker
        return marker is not None and bool(re.search(re.escape(marker) + r"[ \t]*:?\s*\Z", self.template))

    @property
    def declares_format(self) -> bool:
        """True when the template has a reply-format block listing step markers (e₀ does, weak does not)."""
        return bool(_declared_markers(self.template))

    @property
    def declared_steps(self) -> int:
        """Sections the reply must write (4 for e₀, 7 for the paper's step-12 method); 1 for a method
        that asks for the instruction alone. A reply's length grows with this, not with its input."""
        return max(1, len(_declared_markers(self.template)))

    def render(self, instruction: str) -> str:
        if SLOT not in self.template:
            raise MethodError(f"method {self.name!r} ({self.id}) has no {SLOT} slot for the instruction")
        return self.template.replace(SLOT, instruction)

    def derive(self, new_template: str, **metadata: Any) -> EvolvingMethod:
        """A child method (e.g. an optimiser rewrite); lineage goes through `parent_id`."""
        return EvolvingMethod(self.name, new_template, parent_id=self.id, metadata=metadata)

    def to_dict(self) -> dict[str, Any]:
        meta = self.metadata.to_dict() if isinstance(self.metadata, FrozenMeta) else dict(self.metadata)
        return {
            "id": self.id,
            "name": self.name,
            "parent_id": self.parent_id,
            "template": self.template,
            "metadata": meta,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvolvingMethod:
        """Inverse of `to_dict`. Unknown top-level keys (lineage, scores) are kept in metadata."""
        template = data.get("template")
        if not isinstance(template, str):
            raise MethodError("a saved method needs a string 'template' field")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise MethodError("a saved method's 'metadata' must be an object")
        known = {"id", "name", "parent_id", "template", "metadata"}
        extra = {k: v for k, v in data.items() if k not in known}
        parent = data.get("parent_id")
        try:
            method = cls(
                str(data.get("name") or "method"),
                template,
                parent_id=None if parent is None else str(parent),
                metadata={**extra, **metadata},
            )
        except ValueError as e:
            raise MethodError(str(e)) from e
        saved_id = data.get("id")
        if saved_id is not None and saved_id != method.id:
            raise MethodError(
                f"saved method id {saved_id} does not match its template ({method.id}); "
                "the template was edited — remove the 'id' field to accept the new text"
            )
        return method
