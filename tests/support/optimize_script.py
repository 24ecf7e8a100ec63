"""A scripted world for optimisation-loop tests: fake evol and optimizer LLMs whose behaviour is
decided by tags, so a test can make specific candidate methods better or worse.

Data: seed `i` reads "Question i: ...". A method carries a tag line such as
`[NAME=a QUALITY=q3 LEN=040]`; the initial method has none and behaves like `DEFAULT_QUALITY`.

* Evol LLM, asked to rewrite (one user turn holding a rendered method): replies in the initial
  method's format and appends the method's `[NAME=n QUALITY=qK LEN=NNN]` to the rewritten
  instruction (so methods with equal-length names write equal-length instructions).
* Evol LLM, asked to answer (system prompt + instruction): fails ("What would you like me to
  do?") when `i % 10 < K`, so q0 never fails, q10 always fails and the failure sets are nested;
  otherwise answers with exactly NNN characters (which moves the length-ratio tie-break).
  Nested sets make every prefix of the dev set rank methods alike, which hides any screening
  shortcut that is not exact; a world built with `failing={name: {question numbers}}` instead fails
  exactly those questions for the named methods ("e0" is the initial method), so a test can make
  a method look good on the screening slice and bad on the whole dev set, or the reverse.
* Optimizer LLM: the analysis turn returns short feedback; the rewrite turn looks up the parent
  method's NAME ("e0" for the initial method) and the request's sample index in a plan and
  returns the planned child (a good method, or one of the hygiene failures) in a fenced
  ```Optimized Method block.

Everything is a pure function of the request, so runs are deterministic and resumable. The same
functions drive `ScriptedBackend`s in-process and the fake OpenAI server in a subprocess
(`server_reply`, which cannot see sample indexes and so plays candidate 0 for every sample). The
server loads it through a one-line shim file (`from tests.support.optimize_script import
server_reply`): its `pyfile:` loader does not register the module, which breaks dataclasses.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoevol.llm.fake import ScriptedBackend
from autoevol.methods import load_method
from autoevol.prompts import load_template
from autoevol.types import CompletionRequest

DEFAULT_QUALITY = 5
DEFAULT_LENGTH = 40
FAIL_ANSWER = "What would you like me to do?"
INITIAL = load_method("initial").template
FINAL = "#Finally Rewritten Instruction#:"

_METHOD_TAG_RE = re.compile(r"\[NAME=(?P<name>[\w-]+) QUALITY=q(?P<q>\d+) LEN=(?P<len>\d+)\]")
_INSTR_TAG_RE = re.compile(r"\s*\[NAME=(?P<name>[\w-]+) QUALITY=q(?P<q>\d+) LEN=(?P<len>\d+)\]")
_QUESTION_RE = re.compile(r"Question (\d+):")
# The paper's prompts and the evaluator-feedback ones (the default): the script answers both alike.
_ANALYZE_HEAD = (load_template("analyze")[:60], load_template("analyze_feedback")[:60])
_OPTIMIZE_HEAD = (load_template("optimize")[:60], load_template("optimize_feedback")[:60])
_METHOD_BLOCK_RE = re.compile(r"```Method\n(?P<body>[\s\S]*?)\n?```\s*\Z")


# -- data ---------------------------------------------------------------------------------------
def write_data(path: Path, n: int) -> Path:
    """n instruction rows, "Question i: ..." for i in 0..n-1."""
    rows = [{"instruction": f"Question {i}: Tom has {i + 3} apples and eats 2. How many are left?"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- methods ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Child:
    """What the optimizer returns for one (parent, sample index).

    kind: ok | lost_slot_repairable | lost_slot | no_final_marker | same | no_block | no_feedback
    """

    name: str = "x"
    quality: int = DEFAULT_QUALITY
    length: int = DEFAULT_LENGTH
    kind: str = "ok"


def tag(name: str, quality: int, length: int = DEFAULT_LENGTH) -> str:
    return f"[NAME={name} QUALITY=q{quality} LEN={length:03d}]"


def _untagged(template: str) -> str:
    return _METHOD_TAG_RE.sub("", template).lstrip("\n")


def child_template(parent: str, child: Child) -> str | None:
    """The method text the optimizer proposes; None for a reply without an Optimized Method block."""
    body = _untagged(parent)
    head = tag(child.name, child.quality, child.length)
    if child.kind == "ok":
        return f"{head}\n{body}"
    if child.kind == "lost_slot_repairable":
        # Ends with the input marker but lost the slot: hygiene adds `{instruction}` back.
        return f"{head}\n{body}".replace("{instruction}", "").rstrip()
    if child.kind == "lost_slot":
        return f"{head}\n{body}".replace("{instruction}", "(the instruction goes here)")
    if child.kind == "no_final_marker":
        return f"{head}\nMake the instruction below a little harder.\n\n#Instruction#:\n{{instruction}}"
    if child.kind == "same":
        return parent
    if child.kind == "no_block":
        return None
    raise ValueError(f"unknown child kind {child.kind!r}")


def method_name(template: str) -> str:
    found = _METHOD_TAG_RE.search(template)
    return found.group("name") if found else "e0"


def method_behaviour(text: str, default_quality: int = DEFAULT_QUALITY) -> tuple[int, int]:
    found = _METHOD_TAG_RE.search(text)
    if found is None:
        return default_quality, DEFAULT_LENGTH
    return int(found.group("q")), int(found.group("len"))


# -- the two LLMs as pure functions of plain messages --------------------------------------------
Messages = Sequence[Mapping[str, Any]]
Plan = Callable[[str, int], Child]
# Method name -> the question numbers its answers fail (None: the QUALITY rule), as a table or a function.
Failing = Mapping[str, Collection[int]] | Callable[[str], Collection[int] | None]


def evol_reply(messages: Messages, default_quality: int = DEFAULT_QUALITY, failing: Failing | None = None) -> str:
    if messages[0]["role"] == "system":
        return answer_reply(str(messages[-1]["content"]), failing)
    prompt = str(messages[-1]["content"])
    method_part, _, instruction = prompt.rpartition("#Instruction#:")
    quality, length = method_behaviour(method_part, default_quality)
    original = _INSTR_TAG_RE.sub("", instruction).strip()
    # The method's name goes in too: two different methods never write the very same instruction.
    name = method_name(method_part)
    rewritten = f"{original} Show each step of the calculation. [NAME={name} QUALITY=q{quality} LEN={length:03d}]"
    return (
        "Step 1 #Methods List#: ask for the working\n"
        "Step 2 #Plan#: add a request to show each step\n"
        f"Step 3 #Rewritten Instruction#: {rewritten}\n"
        f"Step 4 {FINAL} {rewritten}"
    )


def answer_reply(instruction: str, failing: Failing | None = None) -> str:
    tags = list(_INSTR_TAG_RE.finditer(instruction))
    quality, length = (int(tags[-1].group("q")), int(tags[-1].group("len"))) if tags else (0, DEFAULT_LENGTH)
    number = _QUESTION_RE.search(instruction)
    index = int(number.group(1)) if number else 0
    explicit = None
    if failing is not None and tags:
        name = tags[-1].group("name")
        explicit = failing(name) if callable(failing) else failing.get(name)
    fails = index in explicit if explicit is not None else index % 10 < quality
    if fails:
        return FAIL_ANSWER
    return ("Answer: " + "x" * length)[:length]


def optimizer_reply(messages: Messages, sample_index: int, plan: Plan) -> str:
    last = str(messages[-1]["content"])
    if last.startswith(_ANALYZE_HEAD):
        return "Case 0 failed to evolve: the rewrite only restated the question."
    if not last.startswith(_OPTIMIZE_HEAD):
        raise AssertionError(f"optimizer got an unexpected request: {last[:80]!r}")
    block = _METHOD_BLOCK_RE.search(last)
    if block is None:
        raise AssertionError("rewrite request without a ```Method block")
    parent = block.group("body")
    template = child_template(parent, plan(method_name(parent), sample_index))
    if template is None:
        return "The method looks fine to me; I would not change it."
    return f"Here is the improved method.\n```Optimized Method\n{template}\n```\n"


def table_plan(table: Mapping[str, Sequence[Child]]) -> Plan:
    """A plan from {parent name: [child for sample 0, 1, ...]}; unknown parents get copies (rejected)."""

    def plan(parent: str, index: int) -> Child:
        children = table.get(parent, ())
        return children[index] if index < len(children) else Child(kind="same")

    return plan


# -- in-process backends ------------------------------------------------------------------------
def _plain(request: CompletionRequest) -> list[dict[str, str]]:
    return [m.to_dict() for m in request.messages]


@dataclass(slots=True)
class World:
    evol: ScriptedBackend
    optimizer: ScriptedBackend

    @property
    def backends(self) -> dict[str, ScriptedBackend]:
        return {"evol": self.evol, "optimizer": self.optimizer}


def scripted_world(
    plan: Plan | Mapping[str, Sequence[Child]], default_quality: int = DEFAULT_QUALITY, failing: Failing | None = None
) -> World:
    """Fresh backends; a different plan is a different optimizer "model", so it gets its own
    backend identity and never reads another plan's answers from the shared response cache (the
    same holds for the evol LLM and its failing sets)."""
    if callable(plan):
        chosen, label = plan, getattr(plan, "__name__", "plan")
    else:
        chosen = table_plan(plan)
        label = hashlib.sha256(repr(sorted(plan.items())).encode()).hexdigest()[:12]
    sets: Failing | None
    if callable(failing):
        sets, evol_label = failing, getattr(failing, "__name__", "failing")
    elif failing:
        sets = {name: frozenset(items) for name, items in failing.items()}
        evol_label = hashlib.sha256(repr(sorted((k, sorted(v)) for k, v in sets.items())).encode()).hexdigest()[:12]
    else:
        sets, evol_label = None, "nested"
    evol = ScriptedBackend(lambda r: evol_reply(_plain(r), default_quality, sets),
                           identity=f"scripted-evol:q{default_quality}:{evol_label}")
    opt = ScriptedBackend(lambda r: optimizer_reply(_plain(r), r.sample_index, chosen),
                          identity=f"scripted-opt:{label}")
    return World(evol, opt)


# -- the fake OpenAI server's script (one model plays both roles) --------------------------------
SERVER_PLAN: dict[str, list[Child]] = {
    "e0": [Child("a", quality=2)],
    "a": [Child("b", quality=0)],
    "b": [Child("c", quality=9)],
}
REQUEST_LOG_ENV = "AUTOEVOL_TEST_REQUEST_LOG"


def server_reply(body: dict[str, Any]) -> str:
    """The fake server's reply function; appends one line per request to $AUTOEVOL_TEST_REQUEST_LOG."""
    log = os.environ.get(REQUEST_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write("r\n")
    messages = body["messages"]
    last = str(messages[-1]["content"])
    if last.startswith((*_ANALYZE_HEAD, *_OPTIMIZE_HEAD)):
        return optimizer_reply(messages, 0, table_plan(SERVER_PLAN))
    return evol_reply(messages)
